public import Logging
import Metrics
public import NIOCore
import NIOPosix
public import WalleEnvironment
import WalleWire

/// The `Network` interface on TCP (docs/architecture.md, "Production adapters").
///
/// Every connection starts with a hello from each side, then carries frames both ways. A
/// message goes to its target over this node's own connection to that peer when the address
/// book knows the peer (servers), else over the connection the target opened to us (clients).
/// The address book starts from the configured list and follows the topology (`learn`); host
/// names are resolved at each dial.
/// Nothing waits: a message that cannot be sent now (peer down, connection still opening past
/// its queue bound, send buffer full) is dropped and counted, which the protocol treats as loss.
///
/// Threading: confined to `eventLoop`. `send` and every callback run there; a connection's
/// handlers live on the same loop, so no state is shared across threads.
public final class Transport: Network, @unchecked Sendable {
    public let eventLoop: any EventLoop
    public let localID: NodeID
    /// Called on the event loop for every message that arrives, with its sender.
    public var onMessage: ((Message, NodeID) -> Void)?
    let logger: Logger
    let configuration: TransportConfiguration
    private var links: [NodeID: PeerLink] = [:]
    private var accepted: [NodeID: FrameHandler] = [:]
    private var needsFlush: [ObjectIdentifier: FrameHandler] = [:]
    /// Accepted connections open now, identified or not (at most `acceptedConnectionsMax`).
    private var openAccepted = 0
    private var listener: (any Channel)?
    private var isClosed = false
    let counters = TransportCounters()

    public init(
        eventLoop: any EventLoop, localID: NodeID, peers: [NodeID: ServerAddress],
        configuration: TransportConfiguration = TransportConfiguration(), logger: Logger
    ) {
        self.eventLoop = eventLoop
        self.localID = localID
        self.configuration = configuration
        self.logger = logger
        for (id, address) in peers where id != localID {
            links[id] = PeerLink(id: id, address: address)
        }
    }

    /// The topology's server table: a server at a new address is dialed there from now on (its
    /// old connection closes); servers it does not list keep the address they had.
    public func learn(_ servers: [NodeID: ServerAddress]) {
        eventLoop.preconditionInEventLoop()
        for (id, address) in servers where id != localID && links[id]?.address != address {
            if let old = links[id] {
                old.handler?.channel?.close(promise: nil)
                dropQueue(old)
            }
            logger.info("server \(id.rawValue) is at \(address)")
            links[id] = PeerLink(id: id, address: address)
        }
    }

    /// Accepts connections on `address`; returns the bound address (port 0 picks one).
    public func listen(on address: SocketAddress) async throws -> SocketAddress {
        let channel = try await ServerBootstrap(group: eventLoop)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: configuration.waterMark)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.admit(channel)
                }
            }
            .bind(to: address).get()
        eventLoop.execute { self.listener = channel }
        return channel.localAddress!
    }

    /// Closes the listener and every connection. Messages sent afterwards are dropped.
    public func close() async {
        let channels: [any Channel] = try! await eventLoop.submit { [self] in
            isClosed = true
            var channels = links.values.compactMap { $0.handler?.channel } + accepted.values.compactMap(\.channel)
            if let listener { channels.append(listener) }
            return channels
        }.get()
        for channel in channels { try? await channel.close() }
    }

    func addHandlers(_ channel: any Channel, role: FrameHandler.Role) throws {
        let limit = FrameLimit()
        let handler = FrameHandler(transport: self, role: role, limit: limit)
        try channel.pipeline.syncOperations.addHandlers(
            ByteToMessageHandler(FrameDecoder(limit: limit)), handler)
    }

    /// Admits an accepted connection, or refuses it when `acceptedConnectionsMax` are open.
    private func admit(_ channel: any Channel) throws {
        guard openAccepted < configuration.acceptedConnectionsMax else {
            counters.connectionsRefused.increment()
            logger.warning(
                "refusing connection: \(openAccepted) connections open, limit \(configuration.acceptedConnectionsMax)",
                metadata: ["remote": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
            throw WireError(.badHello, "too many connections")
        }
        openAccepted += 1
        channel.closeFuture.whenComplete { [self] _ in openAccepted -= 1 }
        try addHandlers(channel, role: .accepted)
    }

    // MARK: Network

    public func send(_ message: Message, from source: NodeID, to target: NodeID) {
        eventLoop.preconditionInEventLoop()
        precondition(source == localID, "a transport sends for its own node only")
        guard !isClosed else { return }
        if target == localID {
            // Never synchronously: the core may be in the middle of an event.
            eventLoop.execute { [self] in onMessage?(message, localID) }
            return
        }
        let frame = Wire.encode(.message(message))
        if let link = links[target] {
            sendOnLink(link, frame)
        } else if let handler = accepted[target] {
            write(frame, to: handler)
        } else {
            counters.dropped.increment()
            logger.debug("dropped: no route to \(target)", metadata: ["message": "\(message)"])
        }
    }

    private func sendOnLink(_ link: PeerLink, _ frame: [UInt8]) {
        if let handler = link.handler {
            write(frame, to: handler)
            return
        }
        guard link.queuedBytes + frame.count <= configuration.connectQueueBytesMax else {
            counters.dropped.increment()
            return
        }
        link.queue.append(frame)
        link.queuedBytes += frame.count
        connectIfDue(link)
    }

    /// A connection to a peer opens on demand; after a failure the next attempt waits out a
    /// back-off that doubles up to `reconnectDelayMax`, and what is sent meanwhile is lost.
    private func connectIfDue(_ link: PeerLink) {
        guard !link.isConnecting, NIODeadline.now() >= link.nextAttemptAt else {
            if !link.isConnecting { dropQueue(link) }
            return
        }
        link.isConnecting = true
        let id = link.id
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(configuration.connectTimeout.milliseconds)))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.writeBufferWaterMark, value: configuration.waterMark)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.addHandlers(channel, role: .outbound(id)) }
            }
            .connect(host: link.address.host, port: link.address.port)
            .whenFailure { [self, link] error in
                // A link replaced meanwhile (`learn`) has its own attempts.
                guard links[id] === link else { return }
                link.isConnecting = false
                connectFailed(link, reason: "\(error)")
            }
    }

    private func connectFailed(_ link: PeerLink, reason: String) {
        link.backoff = min(
            link.backoff == .zero ? configuration.reconnectDelayMin : link.backoff * 2,
            configuration.reconnectDelayMax)
        link.nextAttemptAt = NIODeadline.now() + .nanoseconds(link.backoff.nanoseconds)
        logger.debug("peer \(link.id) at \(link.address) unreachable: \(reason); next try in \(link.backoff)")
        dropQueue(link)
    }

    private func dropQueue(_ link: PeerLink) {
        counters.dropped.increment(by: Int64(link.queue.count))
        link.queue.removeAll()
        link.queuedBytes = 0
    }

    // MARK: Connection events (from FrameHandler, on the loop)

    /// The other side said who it is.
    func identified(_ handler: FrameHandler, as peer: NodeID) -> Bool {
        switch handler.role {
        case .accepted:
            // One connection per peer id: a newer one replaces the older, which closes (it
            // would otherwise stay open, unreachable, for as long as the other side keeps it).
            if let older = accepted[peer], older !== handler { older.channel?.close(promise: nil) }
            accepted[peer] = handler
            return true
        case .outbound(let expected):
            // A connection of a link `learn` replaced is not this peer's any more.
            guard let link = links[expected], link.handler == nil, link.isConnecting else { return false }
            guard peer == expected else {
                // A replaced server reusing the address: not the node we meant to reach.
                link.isConnecting = false
                connectFailed(link, reason: "\(link.address) answered as \(peer), expected \(expected)")
                return false
            }
            link.isConnecting = false
            link.handler = handler
            link.backoff = .zero
            for frame in link.queue { write(frame, to: handler) }
            link.queue.removeAll()
            link.queuedBytes = 0
            return true
        }
    }

    func received(_ message: Message, from peer: NodeID) {
        counters.received.increment()
        onMessage?(message, peer)
    }

    func closed(_ handler: FrameHandler) {
        needsFlush[ObjectIdentifier(handler)] = nil
        switch handler.role {
        case .accepted:
            if let peer = handler.peer, accepted[peer] === handler { accepted[peer] = nil }
        case .outbound(let id):
            guard let link = links[id] else { return }
            if link.handler === handler {
                link.handler = nil
            } else if link.isConnecting && handler.peer == nil {
                // The attempt under way closed before its hello (a connection of a link that
                // `learn` replaced had said hello, and is not this attempt).
                link.isConnecting = false
                connectFailed(link, reason: "closed before hello")
            }
        }
    }

    func refusedRole(_ handler: FrameHandler, _ reason: String) {
        counters.refused.increment()
        logger.warning("closing connection: \(reason)", metadata: ["remote": "\(handler.remoteDescription)"])
    }

    func badFrame(_ handler: FrameHandler, _ reason: String) {
        counters.badFrames.increment()
        logger.warning("closing connection: \(reason)", metadata: ["remote": "\(handler.remoteDescription)"])
    }

    /// Writes are flushed once per loop tick: everything the core emitted for one event, and
    /// everything other events added meanwhile, leaves in one system call per connection.
    func write(_ frame: [UInt8], to handler: FrameHandler) {
        guard handler.isWritable else {
            counters.dropped.increment()
            return
        }
        counters.sent.increment()
        handler.write(frame)
        if needsFlush.isEmpty {
            eventLoop.execute { [self] in
                let pending = needsFlush.values
                needsFlush.removeAll()
                for handler in pending { handler.flush() }
            }
        }
        needsFlush[ObjectIdentifier(handler)] = handler
    }
}

/// Limits and timings of a transport.
public struct TransportConfiguration: Sendable {
    public var connectTimeout: Duration = .seconds(1)
    /// A connection whose other side has not said hello by then is closed (both directions).
    public var helloTimeout: Duration = .seconds(5)
    /// Connections other nodes opened to this one, open at once. Each holds at most one frame
    /// being read and `sendBufferBytesHigh` being written; peers need one each, clients one
    /// per process. Past it a new connection is closed at once and counted.
    public var acceptedConnectionsMax = 1024
    public var reconnectDelayMin: Duration = .milliseconds(50)
    public var reconnectDelayMax: Duration = .seconds(2)
    /// Frames held for a peer while its connection opens.
    public var connectQueueBytesMax = 16 << 20
    /// Above `high` buffered bytes a connection takes no more frames until it drains to `low`.
    public var sendBufferBytesLow = 1 << 20
    public var sendBufferBytesHigh = 32 << 20

    public init() {}

    var waterMark: ChannelOptions.Types.WriteBufferWaterMark {
        .init(low: sendBufferBytesLow, high: sendBufferBytesHigh)
    }
}

/// This node's side of one peer in the address book.
final class PeerLink {
    let id: NodeID
    let address: ServerAddress
    var handler: FrameHandler?
    var isConnecting = false
    var queue: [[UInt8]] = []
    var queuedBytes = 0
    var backoff: Duration = .zero
    var nextAttemptAt = NIODeadline.uptimeNanoseconds(0)

    init(id: NodeID, address: ServerAddress) {
        self.id = id
        self.address = address
    }
}

/// Counters every transport keeps (exported through swift-metrics).
final class TransportCounters: Sendable {
    let sent = Counter(label: "walle_frames_sent_total")
    let received = Counter(label: "walle_frames_received_total")
    let dropped = Counter(label: "walle_frames_dropped_total")
    let badFrames = Counter(label: "walle_bad_frames_total")
    /// Messages refused for the sender's role (a client sending a server-to-server message).
    let refused = Counter(label: "walle_refused_messages_total")
    /// Connections closed at accept because `acceptedConnectionsMax` were open.
    let connectionsRefused = Counter(label: "walle_connections_refused_total")
}
