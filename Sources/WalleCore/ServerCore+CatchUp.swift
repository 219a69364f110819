import WalleEnvironment

// Catching up: fast-forward to a committed entry this member never received ([PIPE-6]), and
// the backfill of the gap a gap commit leaves ([GAP-5]). Both check what peers send (WS-4).
extension ServerCore {
    func peers(of uri: StreamURI) -> [NodeID] {
        streams[held: uri].metadata.topology.members.filter { $0 != id }
    }

    mutating func fastForward(_ uri: StreamURI) {
        guard let replica = streams[uri] else { return }
        guard replica.pendingCommitNeedsFetch, let marker = replica.pendingCommit else {
            streams[held: uri].fastForwardInFlight = false
            streams[held: uri].pendingCommit = nil
            afterWindowChange(uri)
            return
        }
        let targets = peers(of: uri)
        guard !targets.isEmpty else {
            streams[held: uri].fastForwardInFlight = false
            return
        }
        note("fast-forward \(uri) to \(marker.id)")
        streams[held: uri].fastForwardOutstanding = targets.count
        for target in targets {
            call(target, .fastForward(uri), timeout: configuration.catchUpCallTimeout) {
                .readEntries($0, start: marker.id, end: marker.id + 1)
            }
        }
    }

    mutating func fastForwardCompleted(_ uri: StreamURI, from source: NodeID, _ reply: Reply) {
        guard streams[uri] != nil, streams[held: uri].fastForwardOutstanding > 0 else { return }
        streams[held: uri].fastForwardOutstanding -= 1
        let marker = streams[held: uri].pendingCommit
        if case .entries(let entries) = reply, let entry = entries.first, let marker,
            entry.id == marker.id, entry.checksum == marker.checksum
        {
            streams[held: uri].fastForwardOutstanding = 0
            streams[held: uri].fastForwardInFlight = false
            let outcome = streams[held: uri].applyCommitted(entry, writes: &pendingWrites)
            note("fast-forward \(uri) to \(entry.brief) from \(source): \(outcome)")
            streams[held: uri].pendingCommit = nil
            afterWindowChange(uri)
            return
        }
        if case .entries(let entries) = reply, let entry = entries.first, let marker, entry.id == marker.id {
            // A peer's committed entry at the marker's id differs: committed entries are
            // unique, so the marker is not the committed entry (forged, or a diverged peer,
            // WS-4). Drop it; the writer's next marker brings a true one.
            note("WS-4: \(source) has committed \(entry.brief), not the marker's xx=\(hex16(marker.checksum).prefix(8))")
            dropPendingCommit(uri)
            return
        }
        guard streams[held: uri].fastForwardOutstanding == 0 else { return }
        // Every peer failed: try again later (the marker may also have been overtaken), a
        // bounded number of times.
        streams[held: uri].pendingCommit?.rounds += 1
        if (streams[held: uri].pendingCommit?.rounds ?? 0) >= configuration.fastForwardRoundsMax {
            let rounds = configuration.fastForwardRoundsMax
            note("no peer has committed entry \(marker?.id ?? 0) of \(uri) after \(rounds) rounds")
            dropPendingCommit(uri)
            return
        }
        timers.schedule(.fastForward(uri), noLaterThan: time.monotonic + configuration.catchUpRetryDelay)
    }

    private mutating func dropPendingCommit(_ uri: StreamURI) {
        streams[held: uri].pendingCommit = nil
        streams[held: uri].fastForwardOutstanding = 0
        streams[held: uri].fastForwardInFlight = false
    }

    /// Asks for the batch just below the verified `gapEnd`, including `gapEnd` itself. This
    /// member's own kept entries are tried first (they may be the only copy anywhere), then
    /// the peers in turn. Its own copy can help only when it keeps the entry right below
    /// `gapEnd`: asking itself otherwise cost a round per step, and with small read batches a
    /// new member's backfill of a 300-second stream took twice as long (seed 1, 300 s).
    mutating func startBackfill(_ uri: StreamURI) {
        guard let replica = streams[uri], replica.metadata.hasGap, !replica.backfillInFlight else { return }
        let targets = peers(of: uri)
        let gapEnd = replica.metadata.gapEnd
        let keepsBelowEnd = replica.metadata.gapKeptEnd + 1 >= gapEnd
        let askSelf = keepsBelowEnd && replica.selfBackfillFailedAt != gapEnd
        guard askSelf || !targets.isEmpty else { return }
        streams[held: uri].backfillInFlight = true
        if replica.backfillPeerIndex == 0 {
            streams[held: uri].backfillPeerIndex = Int(random.next() % UInt64(max(1, targets.count))) + 1
        }
        let target = askSelf ? id : targets[streams[held: uri].backfillPeerIndex % targets.count]
        // The answer must reach `gapEnd`: a batch no longer than one disk read returns.
        let batch = UInt64(max(
            ServerConfiguration.backfillAnswerCountMin,
            min(configuration.backfillBatchCountMax, configuration.readBatchCountMax)))
        let start = max(replica.metadata.gapStart, gapEnd + 1 > batch ? gapEnd + 1 - batch : 0)
        call(target, .backfill(uri), timeout: configuration.catchUpCallTimeout) {
            .readEntries($0, start: start, end: gapEnd + 1)
        }
    }

    mutating func backfillCompleted(_ uri: StreamURI, from source: NodeID, _ reply: Reply) {
        guard streams[uri] != nil, streams[held: uri].metadata.hasGap else {
            streams[uri]?.backfillInFlight = false
            return
        }
        var failure: WalleError
        switch reply {
        case .entries(let entries):
            let error = streams[held: uri].applyBackfill(entries, writes: &pendingWrites)
            guard let error else {
                let gap = streams[held: uri].metadata
                note("backfilled \(uri) from \(source): " + (gap.hasGap ? "down to \(gap.gapEnd)" : "gap closed"))
                whenDurable(.resumeBackfill(uri))
                return
            }
            failure = error
        case .failed(let error):
            failure = error
        default:
            failure = WalleError(.internal, "unexpected answer to ReadEntries")
        }
        note("backfill of \(uri) from \(source) failed: \(failure)")
        if source == id {
            streams[held: uri].selfBackfillFailedAt = streams[held: uri].metadata.gapEnd
            streams[held: uri].backfillInFlight = false
            startBackfill(uri)
            return
        }
        streams[held: uri].backfillPeerIndex += 1
        timers.schedule(.backfillRetry(uri), noLaterThan: time.monotonic + configuration.catchUpRetryDelay)
    }

    /// After a StreamStatus round: when a peer's committed tail is this member's committed
    /// entry under a newer writer's stamp, fetches it to take the stamp (docs/protocol.md,
    /// "StreamStatus and the manager"). A claim stamps its tail on its claim set only; a member
    /// that missed the claim keeps the older stamp, and with an older writer's unacknowledged
    /// entries above it, a later claim that saw only such members took them (seeds 9760 and
    /// 11348, once a holder of the stamp was removed). The manager's removal waits until a
    /// majority carries the newest stamp, and this is how an idle stream gets there.
    mutating func pullNewerStamp(_ uri: StreamURI, _ infos: [WriterInfo]) {
        guard let replica = streams[uri], !replica.metadata.hasGap else { return }
        let committed = replica.committedID
        // The tail's stamp, not the committed entry's: an older suffix above a stamp already
        // taken (a crash kept the stamp's write, not the truncation) is cleared by a pull too.
        let stamp = replica.tail.writerID
        let source = infos.filter {
            $0.server != id && !$0.hasGap && $0.committedID == committed && $0.tailID == committed
                && $0.tailWriterID > stamp
        }.max { $0.tailWriterID < $1.tailWriterID }
        guard let source else { return }
        call(source.server, .stampPull(uri), timeout: configuration.catchUpCallTimeout) {
            .readEntries($0, start: committed, end: committed + 1)
        }
    }

    /// Applies a pulled committed entry: the same entry (checked against this member's
    /// committed checksum) re-stamps it and drops an older writer's suffix above it.
    mutating func stampPullCompleted(_ uri: StreamURI, from source: NodeID, _ reply: Reply) {
        guard let replica = streams[uri], case .entries(let entries) = reply, let entry = entries.first,
            entry.id == replica.committedID, entry.writerID > replica.tail.writerID
        else { return }
        let outcome = streams[held: uri].applyCommitted(entry, writes: &pendingWrites)
        note("stamp of \(uri) at \(entry.id) pulled from \(source): \(entry.writerID) (\(outcome))")
        afterWindowChange(uri)
    }
}
