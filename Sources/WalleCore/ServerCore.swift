public import WalleEnvironment

/// The server side of the protocol for one node: member of many streams, coordinator of the
/// requests clients send it. Sans-IO: events in (`receive`, `diskCompleted`, `wake`), effects
/// out (`takeEffects`), and the next instant it wants to be woken at (`nextWakeup`).
///
/// Overview: each stream this node is a member of is a `StreamReplica`. Client requests are
/// coordinated here by fanning out server-to-server calls (`calls`) and counting answers
/// (`Quorum`). Acknowledgements of writes wait for group commit (`GroupCommit`).
///
/// Invariants: every pending call has one timeout timer and an answered call has none; every
/// queued put has one expiry timer; so the timer queue holds only live deadlines and stays
/// within `timerCountMax`. No acknowledgement of a put leaves before the sync that covers it.
public struct ServerCore {
    public let id: NodeID
    let configuration: ServerConfiguration
    let limits: ReplicaLimits
    let boundary: Boundary
    var random: any RandomNumberGenerator
    var streams: [StreamURI: StreamReplica] = [:]
    var outbox: [Effect] = []
    var pendingWrites: [DiskOperation] = []
    var groupCommit = GroupCommit()
    /// Continuations waiting for this event's writes to be submitted, then synced.
    var awaitingFlush: [GroupCommit.Continuation] = []
    var timers: TimerQueue<ServerTimer>
    var calls: [RequestID: PendingCall] = [:]
    /// Calls in flight per target: at most `callsPerPeerMax` each; a key per target with calls.
    var callsByTarget: [NodeID: Int] = [:]
    /// Targets that let a call run to its whole `callTimeout` and have answered nothing since:
    /// presumed down by put coordinations (`Quorum.failIfOutOfReach`). A subset of
    /// `callsByTarget`'s keys (a target leaves with its last call), so bounded by the peers
    /// with calls in flight.
    var unresponsivePeers: Set<NodeID> = []
    var nextRequestID: RequestID = 0
    var claims: [UInt64: ClaimProcess] = [:]
    var coordinations: [UInt64: Coordination] = [:]
    var nextProcessID: UInt64 = 0
    var readWaiters: [StreamURI: [ReadWaiter]] = [:]
    var readWaiterCount = 0
    var nextWaiterID: UInt64 = 0
    /// NewWriter answers waiting for the previous lease to end (at most `newWriterWaitsMax`).
    var newWriterWaits: [UInt64: NewWriterWait] = [:]
    var diskReads: [UInt64: DiskRead] = [:]
    var topologyWatch = TopologyWatch()
    var registration = Registration()
    /// The server table of the newest applied topology (`Effect.servers` reports changes).
    var knownServers: [NodeID: ServerAddress] = [:]
    var nextDiskToken: UInt64 = 1 << 32
    /// The subtle branches this incarnation took (`Probe`); the simulator collects them.
    public internal(set) var probes = ProbeSet()
    /// The time of the event being handled.
    var time = NodeTime(monotonic: Instant(nanoseconds: 0), wall: WallTime(nanosecondsSinceEpoch: 0))

    /// Starts a server from what its disk recovered. `random` supplies writer-id bits and peer
    /// order; the host seeds it.
    public init(
        id: NodeID, configuration: ServerConfiguration, recovered: RecoveredState,
        random: any RandomNumberGenerator, time: NodeTime
    ) {
        self.id = id
        self.configuration = configuration
        self.limits = ReplicaLimits(configuration)
        self.boundary = Boundary(configuration: configuration)
        self.random = random
        self.time = time
        self.timers = TimerQueue()
        // Each incarnation numbers its calls from a random point: a reply delayed from before
        // a crash must never match a call of the restarted process.
        self.nextRequestID = self.random.next() >> 2
        for stream in recovered.streams {
            var replica = StreamReplica(uri: stream.uri, metadata: stream.metadata, window: stream.window)
            replica.restarted(now: time.monotonic, leaseMax: configuration.leaseMax)
            streams[stream.uri] = replica
        }
        for uri in streams.keys.sorted() where streams[held: uri].metadata.hasGap {
            startBackfill(uri)
        }
        for uri in streams.keys.sorted() { scheduleTrimStep(uri) }
        if let source = configuration.topologySource {
            topologyWatch = TopologyWatch(rootMembers: source.rootMembers)
            timers.schedule(.topologyPoll, at: time.monotonic)
        }
    }

    /// Makes this node a member of a stream it does not have yet (at bootstrap, or when the
    /// topology adds it).
    public mutating func createStream(_ uri: StreamURI, topology: StreamTopology) {
        precondition(topology.contains(id), "only members store a stream")
        guard streams[uri] == nil else { return }
        let metadata = StreamMetadata(topology: topology)
        streams[uri] = StreamReplica(uri: uri, metadata: metadata, window: [.zero])
        pendingWrites.append(.createStream(uri, metadata))
        flushWrites()
    }

    // MARK: Host interface

    public var nextWakeup: Instant? { timers.nextDeadline }

    public mutating func takeEffects() -> [Effect] {
        finishEvent()
        defer { outbox.removeAll(keepingCapacity: true) }
        return outbox
    }

    public mutating func receive(_ message: Message, from source: NodeID, at time: NodeTime) {
        self.time = time
        if let error = boundary.check(message, from: source) {
            refuse(message, from: source, error)
            finishEvent()
            return
        }
        switch message {
        case .claimWriter(let requestID, let uri, let address, let lease):
            startClaim(Route(node: source, requestID: requestID), uri, address: address, leaseMilliseconds: lease)
        case .writerStatus(let requestID, let uri):
            coordinateWriterStatus(Route(node: source, requestID: requestID), uri)
        case .putEntry(let requestID, let uri, let committedID, let committedChecksum, let entry):
            coordinatePut(
                Route(node: source, requestID: requestID), uri, entry,
                commit: CommitMarker(id: committedID, checksum: committedChecksum))
        case .pollStream(let requestID, let uri, let pollEntryID):
            pollStream(Route(node: source, requestID: requestID), uri, from: pollEntryID)
        case .streamEntries(let requestID, let uri, let start, let end):
            streamEntries(Route(node: source, requestID: requestID), uri, start: start, end: end)
        case .streamStatus(let requestID, let uri):
            coordinateStreamStatus(Route(node: source, requestID: requestID), uri)
        case .topologyRequest(let requestID, _):
            // The host hands these to its topology manager when it runs the active one.
            let error = WalleError(
                .unavailable, "server \(id.short) does not run the topology manager; ask the root stream's writer")
            reply(Route(node: source, requestID: requestID), .failed(error))
        case .newWriter, .writerInfo, .putEntryInternal, .tailEntries, .restampEntries, .readEntries:
            receiveInternal(message, from: source)
        case .response(let requestID, let reply):
            receiveResponse(requestID, reply, from: source)
        }
        finishEvent()
    }

    public mutating func diskCompleted(_ completion: DiskCompletion, at time: NodeTime) {
        self.time = time
        switch completion {
        case .synced(let token):
            let (released, sync) = groupCommit.synced(token: token)
            for continuation in released { run(continuation) }
            if let sync { outbox.append(.disk(sync)) }
        case .read(let token, let entries):
            if let read = diskReads.removeValue(forKey: token) { readCompleted(read, entries) }
        }
        finishEvent()
    }

    public mutating func wake(at time: NodeTime) {
        self.time = time
        // Each pass takes one timer out; a handler may set new ones, but only for later or
        // for things it holds, so the queue's bound bounds the loop too.
        let firedMax = timerCountMax + 1
        var firedCount = 0
        while let timer = timers.popDue(now: time.monotonic) {
            firedCount += 1
            precondition(firedCount <= firedMax, "timer loop is unbounded")
            fire(timer)
        }
        finishEvent()
    }

    // MARK: Observation (oracles, tests)

    package var streamURIs: [StreamURI] { streams.keys.sorted() }

    package func metadata(of uri: StreamURI) -> StreamMetadata? { streams[uri]?.metadata }

    package var topologyVersion: UInt64 { topologyWatch.knownVersion }

    package func window(of uri: StreamURI) -> [Entry]? { streams[uri]?.window }

    package func remainingLease(of uri: StreamURI) -> Duration? {
        streams[uri]?.remainingLease(now: time.monotonic)
    }

    /// What an operator watches: queue depths and catch-up, read when sampled (O(streams)).
    public var gauges: CoreGauges {
        var gauges = CoreGauges()
        gauges.calls = calls.count
        gauges.timers = timers.count
        gauges.pollWaiters = readWaiterCount
        gauges.syncWaiters = groupCommit.waiterCount
        gauges.newWriterWaits = newWriterWaits.count
        gauges.streams = streams.count
        // In key order, as every walk over the streams in the core, though sums would not care.
        for uri in streams.keys.sorted() {
            let replica = streams[held: uri]
            gauges.queuedPuts += replica.queueCount
            if replica.metadata.hasGap {
                gauges.streamsWithGap += 1
                gauges.gapEntries += Int(replica.metadata.gapEnd - replica.metadata.gapStart)
            }
        }
        return gauges
    }
}

/// A NewWriter answer held until the previous writer's lease has ended here.
struct NewWriterWait {
    var until: Instant
    var route: Route
    var uri: StreamURI
    var writer: WriterID
}

/// Queue depths and catch-up progress of one node at one moment (`ServerCore.gauges`).
public struct CoreGauges: Sendable, Equatable {
    public var calls = 0
    public var timers = 0
    public var pollWaiters = 0
    public var syncWaiters = 0
    public var newWriterWaits = 0
    public var queuedPuts = 0
    public var streams = 0
    /// Streams whose local copy has a gap still to backfill, and the entries it spans.
    public var streamsWithGap = 0
    public var gapEntries = 0

    public init() {}
}
