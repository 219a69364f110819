public import WalleEnvironment

/// WaitAndClaim (docs/protocol.md, "Client side"): ask a member who writes the stream and for
/// how much longer, and claim only once no writer holds a live lease, through the server that
/// said so. A live writer keeps renewing its lease, so a polite claimer waits as long as that
/// writer lives; its caller decides how long that may be (`stopWaiting`). Only politeness:
/// safety comes from the claim itself, which fences whoever still writes.
struct PoliteWait: Equatable {
    /// The member asked; the claim goes through it too.
    var server: NodeID
    /// The WriterStatus request out, or nil while a wakeup waits.
    var requestID: RequestID?
    /// When to ask again, or nil while a request is out.
    var wakeAt: Instant?
    /// Answers so far: seeds the jitter, so two waiters that started together drift apart.
    var rounds: UInt64
}

extension WriterClient {
    /// Waits for the stream's writer lease to run out, then claims. Allowed when idle or after
    /// the writer closed. Reports `.claimed` or `.claimFailed` as `claim` does.
    public mutating func waitAndClaim(now: Instant) {
        switch state {
        case .idle, .closed: break
        case .waiting, .claiming, .confirming, .active: preconditionFailure("waitAndClaim while \(phase)")
        }
        session = WriterSession(putsWindow: configuration.putsInFlightMax)
        outstanding.removeAll()
        state = .waiting(PoliteWait(server: routing.next(now: now), requestID: nil, wakeAt: now, rounds: 0))
        askStatus(now: now)
        startFollowing(now: now)
        checkInvariants()
    }

    /// The caller's patience ran out: back to idle, with `error` as the claim's failure.
    public mutating func stopWaiting(_ error: WalleError) {
        guard case .waiting = state else { return }
        outstanding.removeAll()
        state = .idle
        events.append(.claimFailed(error))
        checkInvariants()
    }

    var politeWakeAt: Instant? {
        guard case .waiting(let wait) = state else { return nil }
        return wait.wakeAt
    }

    /// Sends WriterStatus to the waiting server. The answer is a majority's merged view
    /// ([WI-1]); lease / 4 is as long as it is worth waiting for one.
    mutating func askStatus(now: Instant) {
        guard case .waiting(var wait) = state else { return }
        let requestID = makeRequestID()
        wait.requestID = requestID
        wait.wakeAt = nil
        state = .waiting(wait)
        let timeout = max(configuration.lease / 4, .milliseconds(50))
        send(.writerStatus(requestID, uri), requestID, .status, deadline: now + timeout, now: now, to: wait.server)
    }

    /// No live lease: claim through the same server. A live one: ask again when it would end,
    /// plus jitter. A final refusal (no such stream) ends the wait; anything else is asked of
    /// the next server after lease / 2.
    mutating func statusAnswered(_ reply: Reply, from source: NodeID, now: Instant) {
        guard case .waiting(var wait) = state else { return }
        wait.requestID = nil
        wait.rounds += 1
        let jitter = Self.jitter(configuration.lease / 4, id: id, round: wait.rounds)
        switch reply {
        case .writerInfo(let info) where info.writerID.isZero || info.remainingLeaseMilliseconds <= 0:
            startClaim(through: wait.server, now: now)
            return
        case .writerInfo(let info):
            // Bounded: members grant a lease of at most `leaseMax`.
            let remaining = Duration.milliseconds(min(info.remainingLeaseMilliseconds, 60_000))
            wait.wakeAt = now + remaining + jitter
        case .failed(let error) where error.isFinal:
            state = .idle
            events.append(.claimFailed(error))
            return
        default:
            wait.server = routing.next(now: now)
            wait.wakeAt = now + configuration.lease / 2 + jitter
        }
        state = .waiting(wait)
    }

    /// A pause in [0, `span`), the same for the same writer and round (the simulator's runs
    /// replay), different across writers.
    static func jitter(_ span: Duration, id: NodeID, round: UInt64) -> Duration {
        guard span > .zero else { return .zero }
        var mixed = id.rawValue &+ round &* 0x9E37_79B9_7F4A_7C15
        mixed = (mixed ^ (mixed >> 31)) &* 0xBF58_476D_1CE4_E5B9
        mixed ^= mixed >> 29
        return .nanoseconds(Int64(mixed % UInt64(span.nanoseconds)))
    }
}
