public import Logging
import NIOCore
import NIOPosix
import Synchronization
public import WalleCore
public import WalleEnvironment
import WalleTransport

/// A connection to a Walle cluster (docs/operating.md, "Client library").
///
/// Starts from a list of servers (the root stream's members, say) and learns every other
/// server's address from the topology's server table ([MEM-1]). Reads and status calls go to
/// one server and move on to the next when it fails with a retryable error; writes go through
/// `StreamWriter`, which runs the same `WriterClient` state machine the simulator checks.
///
/// All state lives on one event loop thread; the async methods hop onto it.
public final class ClusterClient: @unchecked Sendable {
    /// Where the client looks first: the topology is read from these.
    public let servers: [NodeID: ServerAddress]
    /// `servers` and every address the topology lists, the topology's winning.
    private let known: Mutex<[NodeID: ServerAddress]>
    public let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let eventLoop: any EventLoop
    private let transport: Transport
    private var pending: [RequestID: EventLoopPromise<Reply>] = [:]
    private var nextRequestID: RequestID = 0
    /// Calls in flight at once; more wait for none but fail at once (a bound, not a queue).
    static let callsInFlightMax = 65_536
    /// The stream whose entry N is topology version N.
    public static let rootStream = try! StreamURI("/cluster/root")

    public init(servers: [NodeID: ServerAddress], logger: Logger = Logger(label: "walle-client")) {
        precondition(!servers.isEmpty, "a client needs at least one server")
        self.servers = servers
        self.known = Mutex(servers)
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.eventLoop = group.next()
        self.transport = Transport(eventLoop: eventLoop, localID: Self.makeClientID(), peers: servers, logger: logger)
        transport.onMessage = { [weak self] message, _ in
            guard let self, case .response(let requestID, let reply) = message else { return }
            pending.removeValue(forKey: requestID)?.succeed(reply)
        }
    }

    /// A client for the servers in `serverList` (`1=127.0.0.1:7001,2=...`).
    public convenience init(serverList: String, logger: Logger = Logger(label: "walle-client")) throws(WalleError) {
        self.init(servers: try ServerList.parse(serverList), logger: logger)
    }

    /// Servers use small ids; a client picks a random one with the top bit set, so two client
    /// processes never share the request-id space of one id.
    static func makeClientID() -> NodeID { NodeID(UInt64.random(in: 1...UInt64.max >> 1) | 1 << 63) }

    public var serverIDs: [NodeID] { servers.keys.sorted() }

    /// Every server whose address the client knows: the first list and the topology's table.
    public var addresses: [NodeID: ServerAddress] { known.withLock { $0 } }

    /// Takes the topology's server table: calls to a server listed there go to its address.
    private func learn(_ table: [NodeID: ServerAddress]) {
        guard !table.isEmpty else { return }
        known.withLock { $0.merge(table) { _, new in new } }
        eventLoop.execute { [transport] in transport.learn(table) }
    }

    /// Closes every connection and stops the client's thread.
    public func close() async {
        await transport.close()
        try? await group.shutdownGracefully()
    }

    // MARK: Calls

    /// Sends one request to `server` and waits for its answer, or `.failed(deadlineExceeded)`.
    public func call(
        _ server: NodeID, timeout: Duration = .seconds(10), _ make: @escaping @Sendable (RequestID) -> Message
    ) async -> Reply {
        let promise = eventLoop.makePromise(of: Reply.self)
        eventLoop.execute { [self] in
            guard pending.count < Self.callsInFlightMax else {
                promise.succeed(.failed(WalleError(.resourceExhausted, "\(pending.count) calls in flight")))
                return
            }
            nextRequestID += 1
            let requestID = nextRequestID
            pending[requestID] = promise
            transport.send(make(requestID), from: transport.localID, to: server)
            let timer = eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { [self] in
                pending.removeValue(forKey: requestID)?.succeed(
                    .failed(WalleError(.deadlineExceeded, "server \(server.rawValue) did not answer in \(timeout)")))
            }
            // An answered call's timer goes at once instead of waiting out its timeout.
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        return try! await promise.futureResult.get()
    }

    /// Tries `candidates` in turn until one answers with something other than a retryable
    /// error; returns the last failure when none does.
    public func callAny(
        _ candidates: [NodeID]? = nil, timeout: Duration = .seconds(10),
        _ make: @escaping @Sendable (RequestID) -> Message
    ) async throws(WalleError) -> Reply {
        var lastError = WalleError(.unavailable, "no server to ask")
        for server in candidates ?? serverIDs {
            let reply = await call(server, timeout: timeout, make)
            guard case .failed(let error) = reply else { return reply }
            if error.isFinal { throw error }
            lastError = WalleError(error.code, "server \(server.rawValue): \(error.message)")
        }
        throw lastError
    }

    // MARK: Reads and status

    /// The committed entries `[start, end)` of `uri`, as many as one answer holds (at least one):
    /// from whichever member answers, or from `server`'s copy only.
    public func read(
        _ uri: StreamURI, start: EntryID, end: EntryID, server: NodeID? = nil
    ) async throws(WalleError) -> [Entry] {
        let members = try await members(of: uri)
        let asked = server.map { [$0] } ?? members
        let reply = try await callAny(asked) { .streamEntries($0, uri, start: start, end: end) }
        guard case .entries(let entries) = reply else { throw unexpected(reply) }
        return entries
    }

    /// The newest committed entry once its id reaches `entryID` (long poll; OutOfRange when
    /// nothing reached it within the server's poll timeout).
    public func poll(
        _ uri: StreamURI, from entryID: EntryID, members: [NodeID]? = nil
    ) async throws(WalleError) -> Entry {
        let candidates: [NodeID]
        if let members { candidates = members } else { candidates = try await self.members(of: uri) }
        let reply = try await callAny(candidates) { .pollStream($0, uri, pollEntryID: entryID) }
        guard case .entry(let entry) = reply else { throw unexpected(reply) }
        return entry
    }

    /// The writer a majority of the stream's members know, and the lease it holds.
    public func writerStatus(_ uri: StreamURI) async throws(WalleError) -> WriterInfo {
        let reply = try await callAny(try await members(of: uri)) { .writerStatus($0, uri) }
        guard case .writerInfo(let info) = reply else { throw unexpected(reply) }
        return info
    }

    /// Every member's view of the stream: version, committed id, tail, gap.
    public func streamStatus(_ uri: StreamURI) async throws(WalleError) -> [WriterInfo] {
        let reply = try await callAny(try await members(of: uri)) { .streamStatus($0, uri) }
        guard case .streamStatus(let infos) = reply else { throw unexpected(reply) }
        return infos
    }

    /// The newest topology a root member has committed. A member whose newest root entry does
    /// not decode (servers skip such an entry too) is passed over for the next one.
    public func topology() async throws(WalleError) -> Topology {
        var lastError = WalleError(.unavailable, "no server to ask")
        for server in serverIDs {
            do {
                let entry = try await poll(Self.rootStream, from: 0, members: [server])
                let topology = try Topology.decode(entry.data, entryID: entry.id)
                learn(topology.servers)
                return topology
            } catch {
                logger.debug("topology from server \(server.rawValue): \(error)")
                lastError = error
            }
        }
        throw lastError
    }

    /// The members of `uri` in the current topology.
    public func members(of uri: StreamURI) async throws(WalleError) -> [NodeID] {
        if uri == Self.rootStream { return serverIDs }
        guard let stream = try await topology().streams[uri] else {
            throw WalleError(.notFound, "stream \(uri) does not exist in the cluster's topology")
        }
        return stream.members
    }

    func unexpected(_ reply: Reply) -> WalleError {
        if case .failed(let error) = reply { return error }
        return WalleError(.internal, "unexpected answer: \(reply)")
    }
}
