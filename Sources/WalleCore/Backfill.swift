import WalleEnvironment

/// The backfill of the gap a gap commit left ([GAP-5]): batches asked downwards from the
/// verified `gapEnd`, of this member's own kept entries first, then of each peer in turn. One
/// ask at a time per stream. Sans-IO: the core sends the ask and carries out what comes back.
///
/// Answers carry no round tag, so an answer is taken in whatever state it finds (one ask has
/// exactly one answer or timeout).
struct Backfill {
    enum State: Equatable {
        case idle
        /// A ReadEntries for the batch below `gapEnd` is out to `target` (this node or a peer).
        case asking(target: NodeID)
        /// A proven batch is written; the next ask waits until it is durable.
        case awaitingSync
        /// The last ask failed at a peer; the `.backfillRetry` timer is set.
        case retrying
    }

    /// After a failed ask.
    enum Next: Equatable {
        /// Ask again at once (this member's own copy had nothing to add; a peer comes next).
        case askAgainNow
        /// Set the retry timer.
        case retryLater
    }

    private(set) var state: State = .idle
    /// Rotates the peer asked next; 0 until the first ask draws a random start. Kept across asks.
    private(set) var peerIndex = 0
    /// The `gapEnd` at which this member's own copy last had nothing to add. Kept across asks.
    private(set) var selfFailedAt: EntryID = 0

    var isBusy: Bool { state != .idle }

    /// The node to ask next, or nil when an ask is out or nobody can answer. This member's own
    /// copy can help only when it keeps the entry right below `gapEnd` (`keepsBelowEnd`), and
    /// not again at a `gapEnd` where it had nothing.
    mutating func start(
        gapEnd: EntryID, keepsBelowEnd: Bool, me: NodeID, peers: [NodeID],
        random: inout any RandomNumberGenerator
    ) -> NodeID? {
        guard state == .idle else { return nil }
        precondition(!peers.contains(me), "a member is not its own peer")
        let askSelf = keepsBelowEnd && selfFailedAt != gapEnd
        guard askSelf || !peers.isEmpty else { return nil }
        if peerIndex == 0 { peerIndex = Int(random.next() % UInt64(max(1, peers.count))) + 1 }
        let target = askSelf ? me : peers[peerIndex % peers.count]
        precondition(peerIndex > 0, "the first ask draws a start in 1...peers")
        state = .asking(target: target)
        return target
    }

    /// A batch was proven and written. An answer that finds no ask out (one sent before the
    /// stream was dropped and joined again) is applied, being proven, but starts nothing.
    mutating func succeeded() {
        guard state != .idle else { return }
        state = .awaitingSync
    }

    mutating func failed(from source: NodeID, me: NodeID, gapEnd: EntryID) -> Next {
        if source == me {
            selfFailedAt = gapEnd
            state = .idle
            return .askAgainNow
        }
        peerIndex += 1
        if state != .idle { state = .retrying }
        return .retryLater
    }

    /// The written batch is durable, the retry timer fired, or the gap is gone: ready to ask.
    mutating func resume() {
        state = .idle
    }
}
