import WalleEnvironment

// Catching up: fast-forward to a committed entry this member never received ([PIPE-6]), and
// the backfill of the gap a gap commit leaves ([GAP-5]). Both check what peers send (WS-4).
extension ServerCore {
    func peers(of uri: StreamURI) -> [NodeID] {
        streams[held: uri].metadata.topology.members.filter { $0 != id }
    }

    /// The `.fastForward` timer fired: fetch the marker's entry from every peer.
    mutating func fastForward(_ uri: StreamURI) {
        guard let replica = streams[uri] else { return }
        let targets = peers(of: uri)
        let action = streams[held: uri].fastForward.timerFired(
            needsFetch: replica.pendingCommitNeedsFetch, peerCount: targets.count)
        switch action {
        case .settled:
            afterWindowChange(uri)
        case .noPeers:
            return
        case .fetch(let marker):
            precondition(marker.id > replica.committedID, "a fetch is for an entry beyond the committed one")
            note("fast-forward \(uri) to \(marker.id)")
            for target in targets {
                call(target, .fastForward(uri), timeout: configuration.catchUpCallTimeout) {
                    .readEntries($0, start: marker.id, end: marker.id + 1)
                }
            }
        }
    }

    mutating func fastForwardCompleted(_ uri: StreamURI, from source: NodeID, _ reply: Reply) {
        guard streams[uri] != nil else { return }
        let roundsMax = configuration.fastForwardRoundsMax
        switch streams[held: uri].fastForward.answered(reply, roundsMax: roundsMax) {
        case .ignore, .wait:
            return
        case .commit(let entry):
            let outcome = streams[held: uri].applyCommitted(entry, writes: &pendingWrites)
            note("fast-forward \(uri) to \(entry.brief) from \(source): \(outcome)")
            probe(.fastForwarded)
            streams[held: uri].pendingCommit = nil
            afterWindowChange(uri)
        case .refuted(let entry, let marker):
            probe(.fastForwardRefuted)
            note(
                "WS-4: \(source) has committed \(entry.brief), not the marker's xx=\(hex16(marker.checksum).prefix(8))")
            return
        case .retry:
            timers.schedule(.fastForward(uri), noLaterThan: time.monotonic + configuration.catchUpRetryDelay)
        case .gaveUp(let markerID):
            note("no peer has committed entry \(markerID ?? 0) of \(uri) after \(roundsMax) rounds")
        }
    }

    /// Asks for the batch just below the verified `gapEnd`, including `gapEnd` itself. This
    /// member's own kept entries are tried first (they may be the only copy anywhere), then
    /// the peers in turn. Its own copy can help only when it keeps the entry right below
    /// `gapEnd`: asking itself otherwise cost a round per step, and with small read batches a
    /// new member's backfill of a 300-second stream took twice as long (seed 1, 300 s).
    mutating func startBackfill(_ uri: StreamURI) {
        guard let replica = streams[uri], replica.metadata.hasGap, !replica.backfill.isBusy else { return }
        let gapEnd = replica.metadata.gapEnd
        let target = streams[held: uri].backfill.start(
            gapEnd: gapEnd, keepsBelowEnd: replica.metadata.gapKeptEnd + 1 >= gapEnd, me: id,
            peers: peers(of: uri), random: &random)
        guard let target else { return }
        // The answer must reach `gapEnd`: a batch no longer than one disk read returns.
        let batch = UInt64(max(
            ServerConfiguration.backfillAnswerCountMin,
            min(configuration.backfillBatchCountMax, configuration.readBatchCountMax)))
        let start = max(replica.metadata.gapStart, gapEnd + 1 > batch ? gapEnd + 1 - batch : 0)
        precondition(start <= gapEnd && gapEnd <= replica.committedID, "a backfill asks below the committed entry")
        call(target, .backfill(uri), timeout: configuration.catchUpCallTimeout) {
            .readEntries($0, start: start, end: gapEnd + 1)
        }
    }

    mutating func backfillCompleted(_ uri: StreamURI, from source: NodeID, _ reply: Reply) {
        guard streams[uri] != nil, streams[held: uri].metadata.hasGap else {
            streams[uri]?.backfill.resume()
            return
        }
        var failure: WalleError
        switch reply {
        case .entries(let entries):
            let error = streams[held: uri].applyBackfill(entries, writes: &pendingWrites)
            guard let error else {
                streams[held: uri].backfill.succeeded()
                let gap = streams[held: uri].metadata
                if !gap.hasGap { probe(.gapBackfilled) }
                note("backfilled \(uri) from \(source): " + (gap.hasGap ? "down to \(gap.gapEnd)" : "gap closed"))
                whenDurable(.resumeBackfill(uri))
                return
            }
            probe(.backfillAnswerRefused)
            failure = error
        case .failed(let error):
            failure = error
        default:
            failure = WalleError(.internal, "unexpected answer to ReadEntries")
        }
        note("backfill of \(uri) from \(source) failed: \(failure)")
        let gapEnd = streams[held: uri].metadata.gapEnd
        switch streams[held: uri].backfill.failed(from: source, me: id, gapEnd: gapEnd) {
        case .askAgainNow:
            startBackfill(uri)
        case .retryLater:
            timers.schedule(.backfillRetry(uri), noLaterThan: time.monotonic + configuration.catchUpRetryDelay)
        }
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
        pull(uri, committed, from: source.server)
    }

    /// Reads committed entry `entryID` from `source` (`ReadEntries [id, id+1)`, answered only
    /// with committed entries) to apply it in `pullCompleted`.
    private mutating func pull(_ uri: StreamURI, _ entryID: EntryID, from source: NodeID) {
        call(source, .pull(uri), timeout: configuration.catchUpCallTimeout) {
            .readEntries($0, start: entryID, end: entryID + 1)
        }
    }

    /// Applies a pulled committed entry, one of two kinds, through `applyCommitted`:
    /// - beyond this member's committed entry (a tail pull, [JOIN-1]): as a fast-forward's, a
    ///   gap commit when it does not chain onto what this member holds, then the backfill;
    /// - at its committed entry under a newer stamp (a stamp pull): the same entry (checked
    ///   against the committed checksum) re-stamps it and drops an older suffix above it.
    /// Anything else (a second peer's answer, or one the member has since passed) is dropped.
    mutating func pullCompleted(_ uri: StreamURI, from source: NodeID, _ reply: Reply) {
        guard let replica = streams[uri], case .entries(let entries) = reply, let entry = entries.first else { return }
        let isTail = entry.id > replica.committedID
        let isNewerStamp = entry.id == replica.committedID && entry.writerID > replica.tail.writerID
        guard isTail || isNewerStamp else { return }
        let outcome = streams[held: uri].applyCommitted(entry, writes: &pendingWrites)
        if isTail {
            probe(.joinedByPull)
            note("joined \(uri) at \(entry.brief), pulled from \(source): \(outcome)")
        } else {
            note("stamp of \(uri) at \(entry.id) pulled from \(source): \(entry.writerID) (\(outcome))")
        }
        afterWindowChange(uri)
    }

    /// A member that joined a stream asks each peer for its committed id ([JOIN-1]): the
    /// writer's next put would tell it the tail, but on a stream nobody writes that put never
    /// comes, and the member could neither serve a read nor count as settled for a removal.
    /// One WriterInfo call per peer, each with its deadline; a failed one is not retried here
    /// (a StreamStatus round this member coordinates pulls too, and so does the writer's next
    /// put).
    mutating func askPeersForTail(_ uri: StreamURI) {
        for target in peers(of: uri) {
            call(target, .tailProbe(uri), timeout: configuration.catchUpCallTimeout) { .writerInfo($0) }
        }
    }

    /// A peer's answer to `askPeersForTail`.
    mutating func tailProbeCompleted(_ uri: StreamURI, from source: NodeID, _ reply: Reply) {
        guard case .writerInfo(let info) = reply else { return }
        pullCommittedTail(uri, [info])
    }

    /// When a peer has committed beyond everything this member holds, pulls that entry from
    /// the peer that is furthest. After a join probe, and after a StreamStatus round: the
    /// manager asks the members in turn, so a member whose probe failed catches up when it is
    /// asked, and the removal that waits for it can be made. A member that holds the entry,
    /// uncommitted, waits for the writer's marker instead.
    mutating func pullCommittedTail(_ uri: StreamURI, _ infos: [WriterInfo]) {
        guard let replica = streams[uri] else { return }
        let ahead = infos.filter { $0.server != id && $0.committedID > replica.tail.id }
        guard let source = ahead.max(by: { $0.committedID < $1.committedID }) else { return }
        pull(uri, source.committedID, from: source.server)
    }
}
