import WalleEnvironment

/// A put that arrived before its predecessor ([PIPE-2]).
struct QueuedPut {
    var entry: Entry
    var routes: [Route]
    var expiresAt: Instant
}

/// What became of a put at this member.
enum PutOutcome: Equatable {
    /// Applied (or already present); acknowledge once the disk has synced it.
    case applied
    /// Waiting for an earlier entry; answered when it is applied or expires.
    case queued
    /// Applied as a gap commit: the entries below it must be backfilled.
    case gapCommitted
    case failed(WalleError)
    /// Failed because a bound was reached (counted by the core).
    case refused(Refusal, WalleError)
}

/// One member's copy of one stream: the live window `[C..T]`, the writer and lease, the
/// out-of-order queue and the gap. Pure: changes come back as disk operations in `writes`.
///
/// Invariants (checked by `checkInvariants`):
/// - `window[0]` is the committed entry C, `window[i]` is entry C+i, and the window is a valid
///   checksum chain ([LOG-3], [LOG-4]).
/// - `metadata.committedID == window[0].id`.
/// - Every queued put is beyond the tail.
struct StreamReplica {
    let uri: StreamURI
    var metadata: StreamMetadata
    var window: [Entry]
    /// When the current writer last renewed, on this node's monotonic clock. Volatile.
    var renewedAt: Instant = .distantPast
    /// When the previous writer's lease ended, as computed by the last NewWriter (WS-16).
    var previousLeaseEnd: Instant = .distantPast
    var queue: [EntryID: QueuedPut] = [:]
    /// The fetch of a committed entry this member missed, and the marker that named it.
    var fastForward = FastForward()
    /// The backfill of the gap below `metadata.gapEnd`.
    var backfill = Backfill()
    /// A WriterInfo round asking the members which writer is current ([PEI-1] slow path).
    var writerCatchUp: WriterCatchUp?
    var uncommittedBytes = 0
    /// Checksums of recently committed ids, so a commit marker at or below C can be compared
    /// instead of trusted (WS-11). Indexed by id modulo the capacity.
    var recentCommitted: [CommitMarker?]

    static let recentCommittedCapacity = 1024

    /// The latest commit marker beyond the tail (`FastForward.marker`).
    var pendingCommit: PendingCommit? {
        get { fastForward.marker }
        set { fastForward.marker = newValue }
    }

    init(uri: StreamURI, metadata: StreamMetadata, window: [Entry]) {
        precondition(window.first?.id == metadata.committedID, "the committed entry must exist")
        self.uri = uri
        self.metadata = metadata
        self.window = window
        self.recentCommitted = Array(repeating: nil, count: StreamReplica.recentCommittedCapacity)
        self.uncommittedBytes = window.dropFirst().reduce(0) { $0 + $1.data.count }
        remember(window[0])
        checkInvariants()
    }

    var committedID: EntryID { window[0].id }
    var committedEntry: Entry { window[0] }
    var tailID: EntryID { window[window.count - 1].id }
    var tail: Entry { window[window.count - 1] }
    var leaseDuration: Duration { .milliseconds(metadata.leaseMilliseconds) }
    var queueCount: Int { queue.count }

    /// How long a claim arriving now would wait here: the current writer's lease if it renewed,
    /// or the previous writer's that a pending NewWriter still waits for. Never negative.
    func remainingLease(now: Instant) -> Duration {
        let end = max(renewedAt + leaseDuration, previousLeaseEnd)
        return end > now ? end - now : .zero
    }

    /// The checksum this member knows for a committed id, if it still remembers it.
    func knownCommittedChecksum(_ id: EntryID) -> UInt64? {
        if id == committedID { return window[0].checksum }
        guard let marker = recentCommitted[Int(id % UInt64(recentCommitted.count))],
            marker.id == id
        else { return nil }
        return marker.checksum
    }

    /// The window entry at `id`, if `C <= id <= T`.
    func windowEntry(_ id: EntryID) -> Entry? {
        guard id >= committedID, id <= tailID else { return nil }
        return window[Int(id - committedID)]
    }

    func checkInvariants() {
        precondition(metadata.committedID == window[0].id, "metadata and window disagree on C")
        precondition(!metadata.hasGap || metadata.gapEnd <= metadata.committedID, "gap beyond C")
        precondition(!metadata.hasGap || metadata.gapStart >= metadata.firstEntryID, "a gap below the first entry")
        #if DEBUG
            for index in window.indices.dropFirst() {
                precondition(window[index].id == window[index - 1].id + 1, "window ids not dense")
                precondition(
                    window[index].chains(onto: window[index - 1].checksum),
                    "window is not a valid chain ([LOG-3])")
            }
        #endif
    }

    mutating func remember(_ entry: Entry) {
        recentCommitted[Int(entry.id % UInt64(recentCommitted.count))] =
            CommitMarker(id: entry.id, checksum: entry.checksum)
    }
}

/// Answers gathered while a member learns a writer it missed NewWriter for.
struct WriterCatchUp {
    /// Tags the round's calls: a late answer to an earlier round is not this round's.
    var id: UInt64
    var quorum: Quorum
    var newest: WriterInfo?
}

// MARK: - Writer and lease

extension StreamReplica {
    enum WriterCheck { case current, older, newer }

    func checkWriter(_ writer: WriterID) -> WriterCheck {
        if writer == metadata.writerID { return .current }
        return writer < metadata.writerID ? .older : .newer
    }

    mutating func renewLease(now: Instant) {
        renewedAt = max(renewedAt, now)
    }

    /// [LEASE-3] with [DRIFT-4]: installs a newer writer and returns when the previous
    /// writer's lease ends on this member; NewWriter is answered then.
    ///
    /// The new writer has renewed nothing here yet, so it leaves no lease behind: only a put or
    /// heartbeat it sends starts one (`renewLease`). Upstream counts the new lease from the
    /// previous one's end, so every claim that is abandoned after its NewWriter (a client that
    /// gave up, a replayed ClaimWriter) pushes the next claim's wait out by one more lease,
    /// without bound: the claim livelock of WS-15, which hostile replays made common (seed 44).
    /// Safety needs no more: a writer is exclusive only after a majority renewed it, and any
    /// claim's majority meets that one at a member that waits out the renewal.
    mutating func installWriter(
        _ writer: WriterID, address: String, leaseMilliseconds: Int64, now: Instant,
        writes: inout [DiskOperation]
    ) -> Instant {
        precondition(writer > metadata.writerID, "writer ids never decrease (invariant 11)")
        // A wait still running for an older writer carries over (after a restart, the
        // conservative one set by `restarted`).
        let previousEnd = max(now, renewedAt + leaseDuration, previousLeaseEnd)
        metadata.writerID = writer
        metadata.writerAddress = address
        metadata.leaseMilliseconds = leaseMilliseconds
        metadata.pendingWaitMilliseconds = (previousEnd - now).millisecondsRoundedUp
        renewedAt = .distantPast
        previousLeaseEnd = previousEnd
        writes.append(.setMetadata(uri, metadata))
        return previousEnd
    }

    /// Installs a writer a majority already knows, without waiting out a lease: the claim that
    /// created it waited on a majority, which is what the lease argument needs ([PEI-1]).
    mutating func adoptWriter(_ info: WriterInfo, now: Instant, writes: inout [DiskOperation]) {
        guard info.writerID > metadata.writerID else { return }
        _ = installWriter(
            info.writerID, address: info.writerAddress, leaseMilliseconds: info.leaseMilliseconds,
            now: now, writes: &writes)
    }

    /// Restart rule ([LEASE-4], made safe for retried NewWriter): the lease timers are
    /// volatile. The current writer counts as renewed at the restart (its renewals were all
    /// earlier). A NewWriter this member was still waiting on when it crashed waited for the
    /// older writers' leases; the wait stored with the install (`pendingWaitMilliseconds`)
    /// covers them, counted again from the restart, since the time that passed is unknown.
    /// Without it (metadata of format 1) the wait is the longest lease a claim may ask for:
    /// that made every claim after a restart wait `leaseMax` (60 s) while clients gave up
    /// after 10 s.
    mutating func restarted(now: Instant, leaseMax: Duration) {
        renewedAt = now
        let stored = metadata.pendingWaitMilliseconds
        previousLeaseEnd = now + (stored < 0 ? leaseMax : min(leaseMax, .milliseconds(stored)))
    }
}
