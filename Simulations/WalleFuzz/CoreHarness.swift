import WalleCore
import WalleEnvironment
import WalleSimulator
import WalleWire

/// Drives one `ServerCore` (node 1, a member of three streams with nodes 2 and 3) with fuzzed
/// messages, in process: an in-memory disk that completes syncs and reads a few steps later,
/// a clock that moves on, wake-ups when they are due, and now and then a restart from what the
/// disk holds. A trap anywhere in the core ends the process: `FuzzCrashReport` prints the
/// message that caused it as a hex frame and the command that replays the run up to it.
public final class CoreHarness {
    public let seed: UInt64
    private var core: ServerCore
    private let configuration: ServerConfiguration
    private var store = MemoryDisk()
    private var completions: [DiskCompletion] = []
    /// Messages the core sent to itself (a coordinator asking its own member): delivered on
    /// the next step, as the transport does, never inside the current event.
    private var toSelf: [Message] = []
    private var nowNanoseconds: Int64 = 1_000_000_000
    private var random: SimRandom
    private var fuzzer: MessageFuzzer
    private(set) public var context: FuzzContext
    private var callCursor = 0
    public private(set) var messages = 0
    public private(set) var refusals = 0
    public private(set) var restarts = 0

    static let self_ = NodeID(1)
    static let streams = [try! StreamURI("/cluster/root"), try! StreamURI("/fuzz/a"), try! StreamURI("/fuzz/b")]
    /// Answers the harness may fake: the latest requests the core sent.
    static let callsRemembered = 64
    /// A bound on self-messages held between steps (a fan-out sends one per stream at most).
    static let toSelfMax = 1024

    public init(seed: UInt64, plantedBugs: [String] = []) {
        self.seed = seed
        var configuration = ServerConfiguration()
        configuration.plantedBugs = Set(plantedBugs.compactMap(PlantedBug.init(rawValue:)))
        configuration.deepChecksEnabled = true
        // Small bounds so that the refusal paths (full queues, full windows) are reached.
        configuration.uncommittedEntriesMax = 64
        configuration.queuedPutsMax = 32
        configuration.pollWaitersMax = 16
        configuration.callsInFlightMax = 256
        self.configuration = configuration
        self.random = SimRandom.fork(seed: seed, "harness")
        self.fuzzer = MessageFuzzer(seed: seed)
        self.context = FuzzContext(
            target: Self.self_, servers: [NodeID(1), NodeID(2), NodeID(3)], streams: Self.streams)
        self.core = ServerCore(
            id: Self.self_, configuration: configuration, recovered: RecoveredState(streams: []),
            random: SimRandom.fork(seed: seed, "core"),
            time: NodeTime(
                monotonic: Instant(nanoseconds: 1_000_000_000), wall: WallTime(nanosecondsSinceEpoch: Self.epoch)))
        createStreams()
    }

    private func createStreams() {
        for uri in Self.streams {
            core.createStream(uri, topology: StreamTopology(version: 1, members: context.servers))
        }
        carryOut()
    }

    /// Forged server messages soon push a stream to the id bound, where every put is refused:
    /// a fresh node every `epochMessages` lets a run explore many histories.
    static let epochMessages = 10_000

    private func reset() {
        store = MemoryDisk()
        completions.removeAll()
        toSelf.removeAll()
        context = FuzzContext(target: Self.self_, servers: context.servers, streams: Self.streams)
        core = ServerCore(
            id: Self.self_, configuration: configuration, recovered: RecoveredState(streams: []),
            random: SimRandom.fork(seed: seed, "core-epoch-\(messages)"), time: time)
        createStreams()
    }

    static let epoch: Int64 = 1_767_225_600_000_000_000
    private var wall: WallTime { WallTime(nanosecondsSinceEpoch: Self.epoch + nowNanoseconds) }
    private var time: NodeTime { NodeTime(monotonic: Instant(nanoseconds: nowNanoseconds), wall: wall) }

    /// Runs `count` fuzzed messages. `frame` receives each message's wire frame just before
    /// the core handles it (the crash report keeps the last one).
    public func run(count: Int, frame: ((Message, NodeID) -> Void)? = nil) {
        for _ in 0..<count {
            if messages > 0 && messages % Self.epochMessages == 0 { reset() }
            refreshContext()
            let (message, source) = fuzzer.next(context)
            frame?(message, source)
            deliver(message, from: source)
            CrashReport.afterMessage = true
            environmentStep()
            CrashReport.afterMessage = false
        }
    }

    /// Hands one message to the core (also the regression tests' way in).
    public func deliver(_ message: Message, from source: NodeID) {
        messages += 1
        core.receive(message, from: source, at: time)
        carryOut()
    }

    /// Time moves, due timers fire, some disk completions arrive, rarely the node restarts.
    private func environmentStep() {
        let looped = toSelf
        toSelf.removeAll()
        for message in looped {
            core.receive(message, from: Self.self_, at: time)
            carryOut()
        }
        nowNanoseconds += random.int(in: Int64(0)...20_000_000)
        if let next = core.nextWakeup, next.nanoseconds <= nowNanoseconds {
            core.wake(at: time)
            carryOut()
        }
        while !completions.isEmpty && random.chance(0.6) {
            core.diskCompleted(completions.removeFirst(), at: time)
            carryOut()
        }
        if random.chance(0.0005) { restart() }
    }

    private func restart() {
        restarts += 1
        completions.removeAll()
        toSelf.removeAll()
        core = ServerCore(
            id: Self.self_, configuration: configuration, recovered: store.recover(),
            random: SimRandom.fork(seed: seed, "core-\(restarts)"), time: time)
        carryOut()
    }

    private func carryOut() {
        for effect in core.takeEffects() {
            switch effect {
            case .send(.response(_, .failed), let target) where target != Self.self_:
                refusals += 1
            case .send(let message, Self.self_) where toSelf.count < Self.toSelfMax:
                toSelf.append(message)
            case .send(let message, let target) where !message.isResponse:
                remember(target, message.requestID)
            case .disk(let request):
                if let completion = store.submit(request) { completions.append(completion) }
            default:
                break
            }
        }
    }

    private func remember(_ target: NodeID, _ requestID: RequestID) {
        if context.calls.count < Self.callsRemembered {
            context.calls.append((target, requestID))
        } else {
            context.calls[callCursor] = (target, requestID)
            callCursor = (callCursor + 1) % Self.callsRemembered
        }
    }

    /// Per stream: committed id, tail, writer; shows how deep the run got.
    public var depth: String {
        Self.streams.map { uri in
            "\(uri) committed \(context.committed[uri]?.id ?? 0) tail \(context.tail[uri]?.id ?? 0)"
        }.joined(separator: ", ")
    }

    /// What the core holds now, so the next messages are nearly valid.
    private func refreshContext() {
        guard messages % 16 == 0 else { return }
        for uri in Self.streams {
            guard let window = core.window(of: uri), let first = window.first, let last = window.last,
                let metadata = core.metadata(of: uri)
            else { continue }
            context.committed[uri] = first
            context.tail[uri] = last
            context.writers[uri] = metadata.writerID
        }
    }
}

/// The disk of the harness: applies writes at once, completes syncs and reads later.
struct MemoryDisk {
    struct Stream {
        var metadata: StreamMetadata
        var live: [EntryID: Entry] = [0: .zero]
    }

    var streams: [StreamURI: Stream] = [:]
    /// Bounds what the harness keeps: old committed entries are forgotten.
    static let entriesMax = 4096

    mutating func submit(_ request: DiskRequest) -> DiskCompletion? {
        switch request {
        case .write(let operations):
            for operation in operations { apply(operation) }
            return nil
        case .sync(let token):
            return .synced(token: token)
        case .read(let token, let uri, let range, let countMax):
            let live = streams[uri]?.live ?? [:]
            let end = min(range.upperBound, range.lowerBound &+ UInt64(min(countMax, 4096)))
            let ids = range.lowerBound < end ? Array(range.lowerBound..<end) : []
            return .read(token: token, ids.compactMap { live[$0] })
        }
    }

    private mutating func apply(_ operation: DiskOperation) {
        switch operation {
        case .createStream(let uri, let metadata): streams[uri] = Stream(metadata: metadata)
        case .putEntry(let uri, _, let entry):
            guard var stream = streams[uri] else { return }
            stream.live[entry.id] = entry
            if stream.live.count > Self.entriesMax {
                let committed = stream.metadata.committedID
                stream.live = stream.live.filter { $0.key &+ 64 >= committed }
            }
            streams[uri] = stream
        case .deleteLiveEntries(let uri, let from):
            if let live = streams[uri]?.live { streams[uri]?.live = live.filter { $0.key < from } }
        case .deleteEntries(let uri, let below):
            if let live = streams[uri]?.live { streams[uri]?.live = live.filter { $0.key >= below } }
        case .setMetadata(let uri, let metadata): streams[uri]?.metadata = metadata
        case .dropStream(let uri): streams.removeValue(forKey: uri)
        }
    }

    /// Everything written counts as durable: the harness tests the core's handling of input,
    /// not crash recovery (the simulator does that).
    func recover() -> RecoveredState {
        RecoveredState(streams: streams.keys.sorted().compactMap { uri in
            let stream = streams[uri]!
            var window: [Entry] = []
            var id = stream.metadata.committedID
            while let entry = stream.live[id], window.count <= 8192 {
                window.append(entry)
                id += 1
            }
            guard !window.isEmpty else { return nil }
            return RecoveredStream(uri: uri, metadata: stream.metadata, window: window)
        })
    }
}
