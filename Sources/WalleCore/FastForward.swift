import WalleEnvironment

/// A commit marker beyond this member's tail, waiting to be checked against the entry it names
/// (fetched from peers, [PIPE-6]). `writer` is the writer whose put or heartbeat carried it.
struct PendingCommit {
    var marker: CommitMarker
    var writer: WriterID
    /// Fetch rounds in which no peer had the entry; bounded by `fastForwardRoundsMax`.
    var rounds = 0

    var id: EntryID { marker.id }
    var checksum: UInt64 { marker.checksum }
}

/// The fetch of the committed entry a commit marker names when this member does not hold it
/// ([PIPE-6]): a timer first (more puts may bring the entry), then one ReadEntries per peer, and
/// a bounded number of retries. Sans-IO: the core sets the timer and sends what it is told.
struct FastForward {
    enum State: Equatable {
        /// No fetch wanted, or none possible.
        case idle
        /// The `.fastForward` timer is set: the first try, or a retry after a round failed.
        case scheduled
        /// ReadEntries calls are out, `outstanding` (at least one) of them unanswered.
        case fetching(outstanding: Int)
    }

    /// What to do when the timer fires.
    enum TimerAction: Equatable {
        /// The marker no longer needs a fetch (the entry arrived, or a commit passed it): dropped.
        case settled
        /// No peer to ask; the marker stays for the next put or heartbeat.
        case noPeers
        /// Ask every peer for the entry the marker names.
        case fetch(CommitMarker)
    }

    /// What to do with an answer.
    enum AnswerAction {
        /// Not fetching: a late answer of a round that ended.
        case ignore
        /// Other answers of this round are due.
        case wait
        /// A peer has the entry the marker names: commit it, then drop the marker.
        case commit(Entry)
        /// A peer committed another entry at the marker's id: the marker is not the committed
        /// entry (forged, or a diverged peer, WS-4), and is dropped.
        case refuted(Entry, marker: CommitMarker)
        /// Every peer failed: set the timer again.
        case retry
        /// Every peer failed `fastForwardRoundsMax` times: the marker is dropped.
        case gaveUp(markerID: EntryID?)
    }

    private(set) var state: State = .idle
    /// The latest commit marker beyond the tail. Latest, not highest: a forged marker far ahead
    /// is replaced by the writer's next true one instead of hiding it for good. Not phase data:
    /// puts and commits replace or clear it in any state.
    var marker: PendingCommit?

    /// A marker needs its entry: sets the timer unless a fetch is already under way.
    mutating func wanted() -> Bool {
        guard state == .idle else { return false }
        state = .scheduled
        return true
    }

    mutating func timerFired(needsFetch: Bool, peerCount: Int) -> TimerAction {
        precondition(peerCount >= 0)
        precondition(!needsFetch || marker != nil, "a fetch needs a marker")
        guard needsFetch, let marker else {
            state = .idle
            self.marker = nil
            return .settled
        }
        guard peerCount > 0 else {
            state = .idle
            return .noPeers
        }
        state = .fetching(outstanding: peerCount)
        return .fetch(marker.marker)
    }

    mutating func answered(_ reply: Reply, roundsMax: Int) -> AnswerAction {
        guard case .fetching(let outstanding) = state else { return .ignore }
        precondition(outstanding > 0, "a fetch round with nothing out")
        let left = outstanding - 1
        state = left > 0 ? .fetching(outstanding: left) : .scheduled
        if case .entries(let entries) = reply, let entry = entries.first, let marker, entry.id == marker.id {
            state = .idle
            if entry.checksum == marker.checksum { return .commit(entry) }
            self.marker = nil
            return .refuted(entry, marker: marker.marker)
        }
        guard left == 0 else { return .wait }
        // The marker may have been replaced or cleared while the round was out.
        let markerID = marker?.id
        marker?.rounds += 1
        if (marker?.rounds ?? 0) >= roundsMax {
            state = .idle
            marker = nil
            return .gaveUp(markerID: markerID)
        }
        return .retry
    }
}
