import Foundation
public import Logging
public import NIOCore
import NIOPosix
import WalleCore
public import WalleEnvironment
import WalleNode
import WalleStorage
import WalleTransport

/// Everything a production node is configured with (docs/operating.md, "walle-node").
public struct NodeOptions: Sendable {
    public var id: NodeID
    public var listen: SocketAddress
    public var dataDirectory: String
    /// The root stream's members, id and address: where the node looks for the topology first.
    /// The topology's server table then says where every server is ([MEM-1]).
    public var peers: [NodeID: ServerAddress]
    /// Where peers and clients reach this node; it registers this in the topology.
    public var advertise: ServerAddress
    /// On a new (empty) data directory, create the root stream with every peer as a member.
    public var bootstrap: Bool
    public var cacheMegabytes = 256

    public init(
        id: NodeID, listen: SocketAddress, advertise: ServerAddress, dataDirectory: String,
        peers: [NodeID: ServerAddress], bootstrap: Bool
    ) {
        self.id = id
        self.listen = listen
        self.advertise = advertise
        self.dataDirectory = dataDirectory
        self.peers = peers
        self.bootstrap = bootstrap
    }
}

/// The stream whose entry N is topology version N (docs/protocol.md, "The topology stream"):
/// the same name on every cluster.
public let rootStream = try! StreamURI("/cluster/root")

typealias ProductionNode = ServerNode<SystemClock, Transport, WiredTigerDisk>

/// One server process: the same `ServerNode` the simulator runs, on WiredTiger, TCP and the
/// system clock, all driven by one event loop thread. WiredTiger's sync thread hands its
/// completions to that loop.
public final class NodeRuntime: @unchecked Sendable {
    public let options: NodeOptions
    public let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    let eventLoop: any EventLoop
    private var disk: WiredTigerDisk?
    private var transport: Transport?
    private var clock: SystemClock?
    private var node: ProductionNode?
    /// This node's topology manager, when it is a root member (standing by or active).
    var manager: ProductionManager?
    private let metrics = NodeMetrics()
    public private(set) var boundAddress: SocketAddress?

    /// The file that ties a data directory to its server id: wiping the directory makes a new
    /// server, and starting an old directory under another id is refused.
    static let idFileName = "walle-node-id"

    private init(options: NodeOptions, logger: Logger) {
        self.options = options
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.eventLoop = group.next()
    }

    /// Opens the data directory, recovers, and starts serving. Throws a typed error (and
    /// leaves nothing running) when the directory or the address cannot be used.
    public static func start(_ options: NodeOptions, logger: Logger) async throws -> NodeRuntime {
        let runtime = NodeRuntime(options: options, logger: logger)
        do {
            try await runtime.open()
            runtime.boundAddress = try await runtime.transport!.listen(on: options.listen)
        } catch {
            await runtime.stop()
            throw error
        }
        logger.info(
            "serving", metadata: [
                "id": "\(options.id)", "address": "\(runtime.boundAddress!)", "data": "\(options.dataDirectory)"])
        return runtime
    }

    private func open() async throws {
        let isNew = try checkDirectory()
        let loop = eventLoop
        let logger = logger
        let disk = try WiredTigerDisk(
            directory: options.dataDirectory, cacheMegabytes: options.cacheMegabytes,
            deliver: { [weak self] completion in
                guard let self else { return }
                loop.execute { self.node?.diskCompleted(completion) }
            },
            fatal: { error in
                // Nothing after a failed write or sync may be acknowledged: stop at once.
                logger.critical("storage failed, stopping: \(error)")
                exit(70)
            },
            compacted: { report in Self.log(report, logger) })
        self.disk = disk
        if isNew {
            try "\(options.id.rawValue)\n".write(
                toFile: options.dataDirectory + "/" + Self.idFileName, atomically: true, encoding: .utf8)
        }
        try await eventLoop.submit { [self] in try startNode(disk: disk, isNew: isNew) }.get()
    }

    /// A trimmed table's space coming back, or WiredTiger refusing to give it back yet.
    private static func log(_ report: CompactionReport, _ logger: Logger) {
        let sizes = "\(report.bytesBefore) -> \(report.bytesAfter) bytes"
        if let failure = report.failure {
            let next = report.willRetry ? "will try again" : "given up until the next trim"
            logger.warning(
                "compaction of \(report.table) attempt \(report.attempt) failed (\(sizes)): \(failure); \(next)")
        } else {
            logger.info("compacted \(report.table): \(sizes)")
        }
    }

    /// True when the directory is new. Refuses one that belongs to another server.
    private func checkDirectory() throws(WalleError) -> Bool {
        let directory = options.dataDirectory
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        if contents.isEmpty { return true }
        let path = directory + "/" + Self.idFileName
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            if contents.contains("WiredTiger.turtle") {
                throw WalleError(
                    .dataLoss, "data directory \(directory) has no \(Self.idFileName): it is not a Walle node's")
            }
            return false  // WiredTigerDisk names what is wrong with it
        }
        guard let stored = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw WalleError(.dataLoss, "\(path) does not hold a server id")
        }
        guard stored == options.id.rawValue else {
            throw WalleError(
                .failedPrecondition,
                "data directory \(directory) belongs to server \(stored), not \(options.id.rawValue)")
        }
        return false
    }

    private func startNode(disk: WiredTigerDisk, isNew: Bool) throws {
        let transport = Transport(eventLoop: eventLoop, localID: options.id, peers: options.peers, logger: logger)
        let clock = SystemClock(eventLoop: eventLoop)
        var configuration = ServerConfiguration()
        let rootMembers = options.peers.keys.sorted()
        configuration.topologySource = TopologySource(rootStream: rootStream, rootMembers: rootMembers)
        configuration.advertisedAddress = options.advertise
        let node = try ProductionNode(
            id: options.id, configuration: configuration, clock: clock, network: transport, disk: disk,
            random: SystemRandomNumberGenerator())
        let isRootMember = rootMembers.contains(options.id)
        let manager = isRootMember ? makeManager(transport: transport, rootMembers: rootMembers) : nil
        transport.onMessage = { [unowned node] message, source in
            if let manager, Self.isManagerMessage(message) {
                _ = manager.receive(message, from: source)
            } else {
                node.receive(message, from: source)
            }
        }
        clock.onWake = { [unowned node] in node.wake() }
        node.serversSink = { [unowned transport] servers in transport.learn(servers) }
        // The core's notes (trims, backfills, fast-forwards): `--log-level debug` shows them.
        node.noteSink = { [logger] text in logger.debug("\(text)") }
        metrics.attach(to: node, on: eventLoop)
        if isNew && options.bootstrap {
            logger.info("bootstrap: creating \(rootStream) with members \(rootMembers.map(\.rawValue))")
            node.createStream(rootStream, topology: StreamTopology(version: 1, members: rootMembers))
        }
        self.transport = transport
        self.clock = clock
        self.node = node
        self.manager = manager
        manager?.start()
    }

    /// What `/health` says while the node runs: serving, with its last sampled gauges.
    public var health: (serving: Bool, body: String) {
        let sample = metrics.lastSample
        let body = "{\"serving\":true,\"id\":\(options.id.rawValue),\"streams\":\(sample.streams),"
            + "\"streamsWithGap\":\(sample.streamsWithGap),\"gapEntries\":\(sample.gapEntries)}\n"
        return (true, body)
    }

    /// Stops serving and closes WiredTiger cleanly. Safe to call more than once.
    public func stop() async {
        if let transport { await transport.close() }
        try? await eventLoop.submit { [self] in
            metrics.stop()
            clock?.cancel()
            clock?.onWake = nil
            transport?.onMessage = nil
            manager?.writer.clock.cancel()
            manager = nil
        }.get()
        // The loop thread must not be inside the disk while it closes: shut the loop first.
        try? await group.shutdownGracefully()
        disk?.close()
        disk = nil
        logger.info("stopped", metadata: ["id": "\(options.id)"])
    }
}

