public import WalleCore
public import WalleEnvironment

/// Runs one `ServerCore` against a clock, a network and a disk. The simulator instantiates it
/// with its simulated environment and a production node with the real one: the protocol code
/// between them is the same.
///
/// Single-threaded: the host calls it from one thread (one event loop) only.
public final class ServerNode<NodeClock: Clock, NodeNetwork: Network, NodeDisk: Disk> {
    public let id: NodeID
    public private(set) var core: ServerCore
    public let clock: NodeClock
    public let network: NodeNetwork
    public let disk: NodeDisk
    /// Receives the core's notes (decisions worth a trace line), when notes are enabled.
    public var noteSink: ((String) -> Void)?
    /// Receives the core's quorum records, when they are enabled (oracles, metrics).
    public var quorumSink: ((QuorumRecord) -> Void)?
    /// Receives every refusal for load or time, by the bound that refused (counters).
    public var refusalSink: ((Refusal) -> Void)?
    /// Receives how long each coordinated put took and whether it was acknowledged.
    public var putSink: ((Duration, Bool) -> Void)?
    /// Receives the topology's server table when it changes (a production node dials by it).
    public var serversSink: (([NodeID: ServerAddress]) -> Void)?

    /// Queue depths and catch-up progress right now (O(streams): for sampling).
    public var gauges: CoreGauges { core.gauges }
    private var scheduledWakeup: Instant?

    /// Recovers the node's state from `disk`. Throws when the disk cannot be read.
    public init(
        id: NodeID, configuration: ServerConfiguration, clock: NodeClock, network: NodeNetwork,
        disk: NodeDisk, random: any RandomNumberGenerator
    ) throws(WalleError) {
        self.id = id
        self.clock = clock
        self.network = network
        self.disk = disk
        let recovered = try disk.recover()
        self.core = ServerCore(
            id: id, configuration: configuration, recovered: recovered, random: random, time: Self.read(clock))
        carryOut()
    }

    /// The stream's metadata, read in place (the core is a large value; copying it is not free).
    /// Reached through an exclusive access: reading a method's result off `core` directly
    /// would copy the whole core first.
    package func metadata(of uri: StreamURI) -> StreamMetadata? {
        withUnsafeMutablePointer(to: &core) { $0.pointee.metadata(of: uri) }
    }

    /// The stream's live window `[C..T]`, read in place like `metadata(of:)`.
    package func window(of uri: StreamURI) -> [Entry]? {
        withUnsafeMutablePointer(to: &core) { $0.pointee.window(of: uri) }
    }

    public func createStream(_ uri: StreamURI, topology: StreamTopology) {
        core.createStream(uri, topology: topology)
        carryOut()
    }

    public func receive(_ message: Message, from source: NodeID) {
        core.receive(message, from: source, at: Self.read(clock))
        carryOut()
    }

    public func diskCompleted(_ completion: DiskCompletion) {
        core.diskCompleted(completion, at: Self.read(clock))
        carryOut()
    }

    /// The clock called back: run whatever timers are due.
    public func wake() {
        scheduledWakeup = nil
        core.wake(at: Self.read(clock))
        carryOut()
    }

    private static func read(_ clock: NodeClock) -> NodeTime {
        NodeTime(monotonic: clock.now, wall: clock.wallNow)
    }

    private func carryOut() {
        for effect in core.takeEffects() {
            switch effect {
            case .send(let message, let target):
                network.send(message, from: id, to: target)
            case .disk(let request):
                disk.submit(request)
            case .note(let text):
                noteSink?(text)
            case .quorum(let record):
                quorumSink?(record)
            case .refused(let limit):
                refusalSink?(limit)
            case .putFinished(let duration, let acknowledged):
                putSink?(duration, acknowledged)
            case .servers(let servers):
                serversSink?(servers)
            }
        }
        if let next = core.nextWakeup, next != scheduledWakeup {
            scheduledWakeup = next
            clock.scheduleWakeup(at: next)
        }
    }
}
