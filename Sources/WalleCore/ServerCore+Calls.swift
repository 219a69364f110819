import WalleEnvironment

/// Server-to-server calls: each has a request id, one deadline, a purpose that routes its
/// answer, and a place in the per-target count that bounds calls to one peer.
extension ServerCore {
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
            receiveCallResult(
                purpose, from: target, .failed(WalleError(.resourceExhausted, "too many calls in flight")))
            return
        }
        let toTarget = callsByTarget[target, default: 0]
        guard toTarget < configuration.callsPerPeerMax else {
            outbox.append(.refused(.callsPerPeer))
            receiveCallResult(
                purpose, from: target,
                .failed(WalleError(.resourceExhausted, "\(toTarget) calls to \(target) are unanswered")))
            return
        }
        callsByTarget[target] = toTarget + 1
        let requestID = makeRequestID()
        let header = InternalHeader(
            requestID: requestID, stream: purpose.stream, target: target,
            streamVersion: replica.metadata.topology.version)
        precondition(calls[requestID] == nil, "request ids are never reused within an incarnation")
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
        if topologyWatch.isPolling && topologyPollAnswered(requestID, reply, from: source) { return }
        if registrationAnswered(requestID, reply, from: source) { return }
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
            streams[uri]?.backfill.resume()
            startBackfill(uri)
        case .trimStep(let uri):
            trimStep(uri)
        case .readWaiterDeadline(let uri, let waiterID):
            expireReadWaiter(uri, waiterID)
        case .topologyPoll:
            pollTopology()
        case .topologyPollTimeout:
            topologyRoundTimedOut()
        case .registration:
            registrationTimerFired()
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
        case .pull(let uri):
            pullCompleted(uri, from: source, reply)
        case .tailProbe(let uri):
            tailProbeCompleted(uri, from: source, reply)
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
    /// One committed entry read from a peer: a newer stamp, or the tail a member lacks.
    case pull(StreamURI)
    /// A joining member's question to a peer: its committed id ([JOIN-1]).
    case tailProbe(StreamURI)

    var stream: StreamURI {
        switch self {
        case .claim(_, let uri, _), .coordination(_, let uri), .fastForward(let uri), .backfill(let uri),
            .writerCatchUp(_, let uri), .pull(let uri), .tailProbe(let uri):
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
    /// The next delete step of a trim.
    case trimStep(StreamURI)
    case readWaiterDeadline(StreamURI, UInt64)
    case topologyPoll
    case topologyPollTimeout
    /// The registration's deadline, or its retry ([MEM-1]).
    case registration
}

