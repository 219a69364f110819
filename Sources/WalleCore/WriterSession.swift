import WalleEnvironment

/// What one claim's writer knows, from its claim until the next claim: its id, its chain, what
/// committed and what the members were told, and the put pipeline. A claim starts a fresh one,
/// so nothing of an earlier writer leaks into the next. A closed writer keeps its id, chain
/// and commit time (the application may read them) and drops its pipeline.
struct WriterSession {
    struct PendingPut {
        var entry: Entry
        var requestID: RequestID?
        var retryAt: Instant
    }

    var writerID: WriterID = .zero
    /// The last entry this writer created (or the claimed tail).
    var tail: Entry = .zero
    /// The highest acknowledged entry: committed ([W-3]).
    var committed = CommitMarker.zero
    /// The highest commit marker a successful put or heartbeat carried to a majority.
    var toldCommitted: EntryID = 0
    /// Send time of the last request that succeeded.
    var commitTime: Instant?
    var lastAcknowledgedAt = Instant.distantPast
    /// Puts accepted and not yet acknowledged, in id order.
    var pending: [PendingPut] = []
    var bytesInFlight = 0
    /// Entry bytes of `pending` (at most `putsPendingBytesMax`, or one entry).
    var pendingBytes = 0
    var putsInFlight = 0
    /// Puts this writer lets out at once now: halved by every ResourceExhausted answer, one
    /// more per acknowledged entry (doubling per round trip, like TCP's slow start), at most
    /// `putsInFlightMax`.
    /// Resending a full pipeline every `retryDelay` into a full server only kept it full:
    /// the later puts waited at the members for the refused earlier ones and expired, and a
    /// seed of tight limits under high load ran for minutes of wall time per simulated one.
    var putsWindow: Int
    var heartbeatRequest: RequestID?
    var heartbeatRetryAt = Instant.distantPast
    /// The earliest retry of a failed put.
    var retryWakeAt: Instant?

    init(putsWindow: Int) {
        self.putsWindow = putsWindow
    }

    /// The pipeline goes when the writer closes: answers still in flight are ignored when they
    /// come.
    mutating func dropPipeline() {
        pending.removeAll()
        pendingBytes = 0
        bytesInFlight = 0
        putsInFlight = 0
        heartbeatRequest = nil
        retryWakeAt = nil
    }

    func pendingIndex(_ entryID: EntryID) -> Int? {
        guard let first = pending.first, entryID >= first.entry.id else { return nil }
        let index = Int(entryID - first.entry.id)
        return index < pending.count ? index : nil
    }
}

/// Which server a writer sends its next request through: round robin over the stream's
/// members, skipping for a while the ones that let a request time out.
struct WriterRouting {
    private(set) var servers: [NodeID]
    private var cursor: Int
    /// Servers that let a request time out without answering anything since it was sent, and
    /// until when they are skipped. At most one per member.
    private var suspectUntil: [NodeID: Instant] = [:]
    /// When each member last answered anything. A coordinator that answers other requests is
    /// alive, only slow (it may wait `callTimeout` for a dead member before it answers): marking
    /// it suspect too left every member suspect under load, and the round robin then sent the
    /// oldest put through the dead member again and again (seed 799). At most one per member.
    private var heardAt: [NodeID: Instant] = [:]

    init(servers: [NodeID], cursor: Int) {
        precondition(!servers.isEmpty && servers.indices.contains(cursor))
        self.servers = servers
        self.cursor = cursor
    }

    /// The stream's members changed: route requests to the new list from now on.
    mutating func update(_ members: [NodeID]) {
        precondition(!members.isEmpty)
        servers = members
        cursor %= members.count
        suspectUntil = suspectUntil.filter { members.contains($0.key) }
        heardAt = heardAt.filter { members.contains($0.key) }
    }

    /// `source` answered: it is alive.
    mutating func heard(from source: NodeID, now: Instant) {
        guard servers.contains(source) else { return }
        suspectUntil[source] = nil
        heardAt[source] = now
    }

    /// A request sent to `target` at `sentAt` timed out: suspect it unless it answered since.
    mutating func timedOut(_ target: NodeID, sentAt: Instant, now: Instant, suspectDuration: Duration) {
        if (heardAt[target] ?? .distantPast) <= sentAt {
            suspectUntil[target] = now + suspectDuration
        }
    }

    /// The next server in turn that is not suspect; if all are, the one whose suspicion ends
    /// first (the cursor's turn would include the dead ones).
    mutating func next(now: Instant) -> NodeID {
        precondition(servers.indices.contains(cursor), "the cursor points at a server")
        var best = cursor
        for step in 0..<servers.count {
            let index = (cursor + step) % servers.count
            let until = suspectUntil[servers[index]] ?? .distantPast
            if until <= now {
                best = index
                break
            }
            if until < suspectUntil[servers[best]] ?? .distantPast { best = index }
        }
        cursor = (best + 1) % servers.count
        return servers[best]
    }
}
