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
    var nextDiskToken: UInt64 = 1 << 32
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
        for uri in streams.keys.sorted() where streams[uri]!.metadata.hasGap {
            startBackfill(uri)
        }
        if let source = configuration.topologySource {
            topologyWatch.rootMembers = source.rootMembers
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
}

// MARK: - Plumbing

extension ServerCore {
    mutating func note(_ text: @autoclosure () -> String) {
        if configuration.notesEnabled { outbox.append(.note(text())) }
    }

    mutating func recordQuorum(_ uri: StreamURI, version: UInt64, members: [NodeID], startedAt: Instant) {
        if configuration.quorumRecordsEnabled {
            outbox.append(.quorum(QuorumRecord(stream: uri, streamVersion: version, members: members, startedAt: startedAt)))
        }
    }

    mutating func send(_ message: Message, to target: NodeID) {
        outbox.append(.send(message, to: target))
    }

    mutating func reply(_ route: Route, _ reply: Reply) {
        send(.response(route.requestID, reply), to: route.node)
    }

    mutating func fail(_ route: Route, _ code: WalleError.Code, _ message: String) {
        reply(route, .failed(WalleError(code, message)))
    }

    /// Answers a request a bound refused, and counts the refusal by its bound.
    mutating func fail(_ route: Route, _ code: WalleError.Code, _ message: String, limit: Refusal) {
        outbox.append(.refused(limit))
        fail(route, code, message)
    }

    /// A request the boundary refused: answered with the error, nothing else changes. A bad
    /// answer (a response) is dropped; its call times out as if it were lost.
    mutating func refuse(_ message: Message, from source: NodeID, _ error: WalleError) {
        note("refused \(message.kindName) from \(source): \(error)")
        guard !message.isResponse else { return }
        reply(Route(node: source, requestID: message.requestID), .failed(error))
    }

    /// Submits the writes gathered while handling one event as one transaction.
    mutating func flushWrites() {
        guard !pendingWrites.isEmpty else { return }
        outbox.append(.disk(.write(pendingWrites)))
        pendingWrites.removeAll(keepingCapacity: true)
        groupCommit.recordWrite()
    }

    /// Runs `continuation` once everything written while handling this event is durable.
    /// All of one event's writes go to the disk as one transaction first. Answers beyond
    /// `syncWaitersMax` are refused at once; the other continuations are bounded by their own
    /// owners (`newWriterWaitsMax`, one backfill per stream).
    mutating func whenDurable(_ continuation: GroupCommit.Continuation) {
        if case .reply(let route, _) = continuation,
            groupCommit.waiterCount + awaitingFlush.count >= configuration.syncWaitersMax
        {
            fail(route, .resourceExhausted, "\(groupCommit.waiterCount + awaitingFlush.count) answers already wait for a sync on \(id)", limit: .syncWaiters)
            return
        }
        awaitingFlush.append(continuation)
    }

    /// Ends the handling of one event: submits its writes, then registers what waits on them.
    mutating func finishEvent() {
        var rounds = 0
        while !awaitingFlush.isEmpty {
            rounds += 1
            precondition(rounds <= 4, "continuations keep writing: unbounded")
            flushWrites()
            let waiting = awaitingFlush
            awaitingFlush.removeAll(keepingCapacity: true)
            for continuation in waiting {
                let (runNow, sync) = groupCommit.await(continuation)
                if let sync { outbox.append(.disk(sync)) }
                if let runNow { run(runNow) }
            }
        }
        flushWrites()
        precondition(timers.count <= timerCountMax, "\(timers.count) timers: over the derived bound \(timerCountMax)")
        precondition(unresponsivePeers.count <= callsByTarget.count, "a presumed-down peer without calls")
        if configuration.deepChecksEnabled {
            checkDeadlinesAreLive()
            precondition(unresponsivePeers.isSubset(of: callsByTarget.keys), "a presumed-down peer without calls")
        }
    }

    /// The bound on timers this node's configuration and streams allow (`timerCountMax`).
    var timerCountMax: Int { configuration.timerCountMax(streamCount: streams.count) }

    /// What the timers may hold right now: one deadline per live call, read waiter, waiting
    /// NewWriter and queued put, two per stream, two for the topology watch. Exceeding it means
    /// a deadline outlived what it guards (lazy cancellation). O(streams): simulator and tests.
    package var liveDeadlineCountMax: Int {
        let queued = streams.values.reduce(0) { $0 + $1.queueCount }
        return calls.count + readWaiterCount + newWriterWaits.count + queued + 2 * streams.count + 2
    }

    package var timerCount: Int { timers.count }

    /// What an operator watches: queue depths and catch-up, read when sampled (O(streams)).
    public var gauges: CoreGauges {
        var gauges = CoreGauges()
        gauges.calls = calls.count
        gauges.timers = timers.count
        gauges.pollWaiters = readWaiterCount
        gauges.syncWaiters = groupCommit.waiterCount
        gauges.newWriterWaits = newWriterWaits.count
        gauges.streams = streams.count
        // Sums only: the dictionary's order (which differs per process) cannot change them.
        for replica in streams.values {
            gauges.queuedPuts += replica.queueCount
            if replica.metadata.hasGap {
                gauges.streamsWithGap += 1
                gauges.gapEntries += Int(replica.metadata.gapEnd - replica.metadata.gapStart)
            }
        }
        return gauges
    }

    private func checkDeadlinesAreLive() {
        precondition(timers.count <= liveDeadlineCountMax, "\(timers.count) timers for \(liveDeadlineCountMax) live deadlines")
        precondition(groupCommit.waiterCount <= configuration.syncWaitersMax + newWriterWaits.count + streams.count)
        precondition(groupCommit.storedCount <= groupCommit.storedCountMax, "released sync waiters pile up")
    }

    mutating func run(_ continuation: GroupCommit.Continuation) {
        switch continuation {
        case .reply(let route, let answer):
            reply(route, answer)
        case .newWriterAnswer(let waitID):
            guard let wait = newWriterWaits[waitID] else { preconditionFailure("a NewWriter wait is answered once") }
            if wait.until <= time.monotonic {
                answerNewWriter(waitID)
            } else {
                timers.schedule(.newWriterAnswer(waitID), at: wait.until)
            }
        case .resumeBackfill(let uri):
            streams[uri]?.backfillInFlight = false
            startBackfill(uri)
        }
    }

    /// Acknowledges a write: after the sync that covers it (unless a planted bug says not).
    mutating func acknowledgeWhenDurable(_ route: Route, _ answer: Reply = .ok) {
        if configuration.plantedBugIsActive(.acknowledgeBeforeSync) {
            reply(route, answer)
            return
        }
        whenDurable(.reply(route, answer))
    }

    mutating func makeRequestID() -> RequestID {
        nextRequestID += 1
        return nextRequestID
    }

    mutating func makeProcessID() -> UInt64 {
        nextProcessID += 1
        return nextProcessID
    }

    /// Sends a server-to-server request and remembers why, with a timeout.
    mutating func call(
        _ target: NodeID, _ purpose: CallPurpose, timeout: Duration? = nil,
        _ build: (InternalHeader) -> Message
    ) {
        guard let replica = streams[purpose.stream] else { return }
        guard calls.count < configuration.callsInFlightMax else {
            outbox.append(.refused(.calls))
            receiveCallResult(purpose, from: target, .failed(WalleError(.resourceExhausted, "too many calls in flight")))
            return
        }
        let toTarget = callsByTarget[target, default: 0]
        guard toTarget < configuration.callsPerPeerMax else {
            outbox.append(.refused(.callsPerPeer))
            receiveCallResult(purpose, from: target, .failed(WalleError(.resourceExhausted, "\(toTarget) calls to \(target) are unanswered")))
            return
        }
        callsByTarget[target] = toTarget + 1
        let requestID = makeRequestID()
        let header = InternalHeader(
            requestID: requestID, stream: purpose.stream, target: target,
            streamVersion: replica.metadata.topology.version)
        calls[requestID] = PendingCall(target: target, purpose: purpose, timeoutMeansDown: timeout == nil)
        timers.schedule(.callTimeout(requestID), at: time.monotonic + (timeout ?? configuration.callTimeout))
        send(build(header), to: target)
    }

    private mutating func callEnded(to target: NodeID) {
        let left = callsByTarget[target, default: 0] - 1
        precondition(left >= 0, "a call to \(target) ended twice")
        callsByTarget[target] = left == 0 ? nil : left
        if left == 0 { unresponsivePeers.remove(target) }
    }

    mutating func receiveResponse(_ requestID: RequestID, _ reply: Reply, from source: NodeID) {
        if !topologyWatch.polls.isEmpty && topologyPollAnswered(requestID, reply, from: source) { return }
        guard let pending = calls[requestID], pending.target == source else { return }
        calls.removeValue(forKey: requestID)
        unresponsivePeers.remove(source)
        callEnded(to: source)
        // The answered call's deadline goes with it (unless a planted bug leaves it behind).
        if !configuration.plantedBugIsActive(.lazyCallTimeouts) { timers.cancel(.callTimeout(requestID)) }
        receiveCallResult(pending.purpose, from: source, reply)
    }

    mutating func fire(_ timer: ServerTimer) {
        switch timer {
        case .callTimeout(let requestID):
            guard let pending = calls.removeValue(forKey: requestID) else { return }
            if pending.timeoutMeansDown { unresponsivePeers.insert(pending.target) }
            callEnded(to: pending.target)
            if case .claim(let claimID, _, .newWriter) = pending.purpose, retryNewWriter(claimID, to: pending.target) {
                return
            }
            let error = WalleError(.deadlineExceeded, "no answer from \(pending.target)")
            outbox.append(.refused(.callTimeout))
            receiveCallResult(pending.purpose, from: pending.target, .failed(error))
        case .newWriterAnswer(let waitID):
            answerNewWriter(waitID)
        case .queuedPutExpiry(let uri, let entryID):
            expireQueuedPut(uri, entryID)
        case .fastForward(let uri):
            fastForward(uri)
        case .backfillRetry(let uri):
            streams[uri]?.backfillInFlight = false
            startBackfill(uri)
        case .readWaiterDeadline(let uri, let waiterID):
            expireReadWaiter(uri, waiterID)
        case .topologyPoll:
            pollTopology()
        case .topologyPollTimeout:
            topologyRoundTimedOut()
        }
    }

    mutating func receiveCallResult(_ purpose: CallPurpose, from source: NodeID, _ answer: Reply) {
        // A reply of the wrong shape counts as a failure: handlers below rely on the shape.
        let reply = boundary.checkReply(answer, for: purpose, from: source)
        switch purpose {
        case .claim(let claimID, _, let phase):
            claimCallCompleted(claimID, phase: phase, from: source, reply)
        case .coordination(let coordinationID, _):
            coordinationCallCompleted(coordinationID, from: source, reply)
        case .fastForward(let uri):
            fastForwardCompleted(uri, from: source, reply)
        case .backfill(let uri):
            backfillCompleted(uri, from: source, reply)
        case .writerCatchUp(let roundID, let uri):
            writerCatchUpCompleted(roundID, uri, from: source, reply)
        case .stampPull(let uri):
            stampPullCompleted(uri, from: source, reply)
        }
    }
}

/// Why a server-to-server call was made.
enum CallPurpose {
    case claim(UInt64, StreamURI, ClaimPhase)
    case coordination(UInt64, StreamURI)
    case fastForward(StreamURI)
    case backfill(StreamURI)
    case writerCatchUp(UInt64, StreamURI)
    case stampPull(StreamURI)

    var stream: StreamURI {
        switch self {
        case .claim(_, let uri, _), .coordination(_, let uri), .fastForward(let uri), .backfill(let uri),
            .writerCatchUp(_, let uri), .stampPull(let uri):
            return uri
        }
    }
}

struct PendingCall {
    var target: NodeID
    var purpose: CallPurpose
    /// Whether its timeout says the target is down: only a whole `callTimeout` does. NewWriter
    /// calls time out by design while a live member waits out a lease, and catch-up and
    /// status calls have short timeouts that a slow disk can pass.
    var timeoutMeansDown: Bool
}

/// What a deadline is for; also its key, so each of these has at most one deadline.
enum ServerTimer: Hashable {
    case callTimeout(RequestID)
    /// A key of `newWriterWaits`.
    case newWriterAnswer(UInt64)
    case queuedPutExpiry(StreamURI, EntryID)
    case fastForward(StreamURI)
    case backfillRetry(StreamURI)
    case readWaiterDeadline(StreamURI, UInt64)
    case topologyPoll
    case topologyPollTimeout
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
