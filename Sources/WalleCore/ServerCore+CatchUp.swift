import WalleEnvironment

// Catching up: fast-forward to a committed entry this member never received ([PIPE-6]), and
// the backfill of the gap a gap commit leaves ([GAP-5]). Both check what peers send (WS-4).
extension ServerCore {
    func peers(of uri: StreamURI) -> [NodeID] {
        streams[uri]!.metadata.topology.members.filter { $0 != id }
    }

    mutating func fastForward(_ uri: StreamURI) {
        guard let replica = streams[uri] else { return }
        guard let marker = replica.pendingCommit, marker.id > replica.tailID || replica.windowEntry(marker.id) == nil else {
            streams[uri]!.fastForwardInFlight = false
            streams[uri]!.pendingCommit = nil
            afterWindowChange(uri)
            return
        }
        let targets = peers(of: uri)
        guard !targets.isEmpty else {
            streams[uri]!.fastForwardInFlight = false
            return
        }
        note("fast-forward \(uri) to \(marker.id)")
        streams[uri]!.fastForwardOutstanding = targets.count
        for target in targets {
            call(target, .fastForward(uri)) { .readEntries($0, start: marker.id, end: marker.id + 1) }
        }
    }

    mutating func fastForwardCompleted(_ uri: StreamURI, from source: NodeID, _ reply: Reply) {
        guard streams[uri] != nil, streams[uri]!.fastForwardOutstanding > 0 else { return }
        streams[uri]!.fastForwardOutstanding -= 1
        let marker = streams[uri]!.pendingCommit
        if case .entries(let entries) = reply, let entry = entries.first, let marker,
            entry.id == marker.id, entry.checksum == marker.checksum
        {
            streams[uri]!.fastForwardOutstanding = 0
            streams[uri]!.fastForwardInFlight = false
            let outcome = streams[uri]!.applyCommitted(entry, writes: &pendingWrites)
            note("fast-forward \(uri) to \(entry.brief) from \(source): \(outcome)")
            streams[uri]!.pendingCommit = nil
            afterWindowChange(uri)
            return
        }
        if case .entries(let entries) = reply, let entry = entries.first, entry.checksum != marker?.checksum {
            note("WS-4: \(source) sent \(entry.brief) that does not match the commit marker")
        }
        guard streams[uri]!.fastForwardOutstanding == 0 else { return }
        // Every peer failed: try again later (the marker may also have been overtaken).
        timers.schedule(at: time.monotonic + configuration.catchUpRetryDelay, .fastForward(uri))
    }

    mutating func startBackfill(_ uri: StreamURI) {
        guard let replica = streams[uri], replica.metadata.hasGap, !replica.backfillInFlight else { return }
        let targets = peers(of: uri)
        guard !targets.isEmpty else { return }
        streams[uri]!.backfillInFlight = true
        if replica.backfillPeerIndex == 0 {
            streams[uri]!.backfillPeerIndex = Int(random.next() % UInt64(targets.count)) + 1
        }
        let target = targets[streams[uri]!.backfillPeerIndex % targets.count]
        let start = replica.metadata.gapStart
        let end = min(replica.metadata.gapEnd + 1, start + UInt64(configuration.backfillBatchCountMax))
        call(target, .backfill(uri)) { .readEntries($0, start: start, end: end) }
    }

    mutating func backfillCompleted(_ uri: StreamURI, from source: NodeID, _ reply: Reply) {
        guard streams[uri] != nil, streams[uri]!.metadata.hasGap else {
            streams[uri]?.backfillInFlight = false
            return
        }
        var failure: WalleError
        switch reply {
        case .entries(let entries):
            guard let error = streams[uri]!.applyBackfill(entries, writes: &pendingWrites) else {
                note("backfilled \(uri) up to \(entries.last?.id ?? 0) from \(source)")
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
        streams[uri]!.backfillPeerIndex += 1
        timers.schedule(at: time.monotonic + configuration.catchUpRetryDelay, .backfillRetry(uri))
    }
}
