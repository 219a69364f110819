import WalleEnvironment

/// Limits a replica needs while applying puts (a subset of `ServerConfiguration`).
struct ReplicaLimits {
    var uncommittedEntriesMax: UInt64
    var uncommittedBytesMax: Int
    var queuedPutsMax: Int
    var queuedPutTimeout: Duration
    var queuedPutRoutesMax: Int
    var commitWithoutChecksum: Bool
    var acceptForgedMarker: Bool

    init(_ configuration: ServerConfiguration) {
        uncommittedEntriesMax = configuration.uncommittedEntriesMax
        uncommittedBytesMax = configuration.uncommittedBytesMax
        queuedPutsMax = configuration.queuedPutsMax
        queuedPutTimeout = configuration.queuedPutTimeout
        queuedPutRoutesMax = configuration.queuedPutRoutesMax
        commitWithoutChecksum = configuration.plantedBugIsActive(.commitWithoutChecksum)
        acceptForgedMarker = configuration.plantedBugIsActive(.acceptForgedMarker)
    }
}

// MARK: - Uncommitted puts (docs/protocol.md, "Member", step 5)

extension StreamReplica {
    /// Applies a writer's put or a claim's re-stamp. The caller has checked the writer id;
    /// it is checked again here because a queued put is applied later ([PEI-1] at apply time).
    mutating func applyUncommitted(
        _ entry: Entry, limits: ReplicaLimits, writes: inout [DiskOperation]
    ) -> PutOutcome {
        precondition(entry.id > 0, "entry 0 is never put")
        if entry.writerID < metadata.writerID {
            return .failed(WalleError(.failedPrecondition, "writer \(entry.writerID) is no longer active"))
        }
        if entry.writerID < window[0].writerID {
            // The committed entry carries a newer claim's stamp (pulled from a peer, or taken
            // with a fast-forward) than the writer installed here: that claim fenced this
            // writer, and a late put of it must not grow a suffix over the stamp again.
            return .failed(WalleError(
                .failedPrecondition,
                "writer \(entry.writerID) is older than the stamp on committed entry \(committedID)"))
        }
        if entry.id <= committedID {
            return applyAtOrBelowCommitted(entry, writes: &writes)
        }
        if entry.id <= tailID {
            return replaceInWindow(entry, limits: limits, writes: &writes)
        }
        if entry.id > tailID + 1 {
            return .queued
        }
        guard entry.chains(onto: tail.checksum) else {
            return .failed(WalleError(.outOfRange, "entry \(entry.id) does not chain onto local entry \(tailID)"))
        }
        if tailID - committedID >= limits.uncommittedEntriesMax {
            return .refused(
                .uncommittedEntries, WalleError(.outOfRange, "too many uncommitted entries (\(tailID - committedID))"))
        }
        if uncommittedBytes + entry.data.count > limits.uncommittedBytesMax {
            return .refused(
                .uncommittedBytes, WalleError(.outOfRange, "too many uncommitted bytes (\(uncommittedBytes))"))
        }
        append(entry, writes: &writes)
        return .applied
    }

    private mutating func applyAtOrBelowCommitted(
        _ entry: Entry, writes: inout [DiskOperation]
    ) -> PutOutcome {
        guard let known = knownCommittedChecksum(entry.id) else {
            return .failed(WalleError(.outOfRange, "entry \(entry.id) is below committed \(committedID)"))
        }
        guard known == entry.checksum else {
            return .failed(WalleError(.outOfRange, "entry \(entry.id) differs from the committed one"))
        }
        if entry.id == committedID && entry.writerID >= window[0].writerID {
            // A claim re-stamps the committed entry under its writer id (docs/protocol.md,
            // "ClaimWriter", phase 5). Its chosen chain ends here, so an older writer's suffix
            // above goes, as it does when the commit is above the committed id: kept, it sat
            // above the claim's stamp and a later claim that saw this tail took the fenced
            // writer's entries (seed 57 under high load: a claim committed at 180 on a member
            // already committed to 180, the next claim re-stamped and committed the older
            // writer's 181...231). Entry 0 too: the stamp is what tells a later claim that
            // this member's tail is newer than an older writer's suffix elsewhere (seed 4249:
            // a claim of tail 0 left Entry0 unstamped, and the next claim chose and committed
            // the fenced writer's 1...7 from the one member that had missed the claim).
            // The suffix goes before the stamp is written: a crash that keeps a prefix of the
            // writes then never leaves the new stamp with the older suffix above it, which no
            // later pull would clear. Same stamp again (a retry, or a stamp taken earlier
            // without its truncation) still drops an older suffix.
            if window.dropFirst().allSatisfy({ $0.writerID < entry.writerID }) {
                truncate(from: entry.id + 1, writes: &writes)
            }
            if entry.writerID > window[0].writerID {
                window[0].writerID = entry.writerID
                writes.append(.putEntry(uri, .live, window[0]))
            }
        }
        return .applied
    }

    /// `C < id <= T`: the same entry is a retry; a newer writer's entry replaces the stale
    /// suffix (needsTrim); an older writer's is refused.
    private mutating func replaceInWindow(
        _ entry: Entry, limits: ReplicaLimits, writes: inout [DiskOperation]
    ) -> PutOutcome {
        let index = Int(entry.id - committedID)
        let existing = window[index]
        if existing.writerID > entry.writerID {
            return .failed(WalleError(.outOfRange, "entry \(entry.id): writer too old"))
        }
        if existing.writerID == entry.writerID {
            return existing.checksum == entry.checksum
                ? .applied
                : .failed(WalleError(.outOfRange, "entry \(entry.id): same writer, other content"))
        }
        if existing.checksum == entry.checksum {
            // Same content, newer writer: re-stamp in place. The suffix still chains onto it,
            // and parallel re-stamps of a claim then land in any order.
            window[index].writerID = entry.writerID
            writes.append(.putEntry(uri, .live, window[index]))
            return .applied
        }
        guard entry.chains(onto: window[index - 1].checksum) else {
            return .failed(WalleError(.outOfRange, "entry \(entry.id) does not chain onto local entry \(entry.id - 1)"))
        }
        truncate(from: entry.id, writes: &writes)
        append(entry, writes: &writes)
        return .applied
    }

    private mutating func append(_ entry: Entry, writes: inout [DiskOperation]) {
        precondition(entry.id == tailID + 1 && entry.chains(onto: tail.checksum))
        window.append(entry)
        uncommittedBytes += entry.data.count
        writes.append(.putEntry(uri, .live, entry))
    }

    /// Drops the uncommitted entries with id >= `id`.
    private mutating func truncate(from id: EntryID, writes: inout [DiskOperation]) {
        precondition(id > committedID, "committed entries are never dropped")
        guard id <= tailID else { return }
        let keep = Int(id - committedID)
        uncommittedBytes -= window[keep...].reduce(0) { $0 + $1.data.count }
        window.removeSubrange(keep...)
        writes.append(.deleteLiveEntries(uri, from: id))
    }
}

// MARK: - Commits

extension StreamReplica {
    /// A commit marker from a writer (piggy-backed on a put or heartbeat).
    ///
    /// Closes WS-1 and WS-11: the marker commits the local entry only when the checksums
    /// match. A marker at or below C is compared when the checksum is still known; a mismatch
    /// there is divergence and is reported as DataLoss instead of hidden.
    ///
    /// Hostile input: a marker that differs from a local entry written by the same writer (or
    /// a newer one) cannot be that writer's, because a writer writes each id once. It is
    /// refused and changes nothing. A marker that differs from an older writer's entry may be
    /// true (that entry is stale, WS-1) or forged under the current writer's id, which anyone
    /// can learn from WriterStatus. So the marker itself drops nothing: the committed entry is
    /// fetched from peers ([PIPE-6]), and only a fetched entry that matches the marker replaces
    /// the local one. Dropping on the marker alone let one forged heartbeat, sent during a
    /// claim under the new writer's id, drop acknowledged entries on every member (seed 2 with
    /// hostile clients).
    mutating func applyCommitMarker(
        _ marker: CommitMarker, from writer: WriterID, limits: ReplicaLimits, writes: inout [DiskOperation]
    ) -> WalleError? {
        if marker.id <= committedID {
            if let known = knownCommittedChecksum(marker.id), known != marker.checksum {
                return WalleError(.dataLoss, "committed entry \(marker.id) differs from the writer's")
            }
            return nil
        }
        guard let local = windowEntry(marker.id) else {
            setPendingCommit(marker, from: writer)
            return nil
        }
        if local.checksum == marker.checksum || limits.commitWithoutChecksum {
            advanceCommitted(to: marker.id, writes: &writes)
            return nil
        }
        if limits.acceptForgedMarker {
            // Planted: trust the marker and drop the local suffix at once.
            truncate(from: marker.id, writes: &writes)
            setPendingCommit(marker, from: writer)
            return nil
        }
        guard local.writerID < writer else {
            return WalleError(
                .invalidArgument,
                "commit marker \(marker.id) (xx=\(hex16(marker.checksum).prefix(8))) differs from entry "
                    + "\(local.brief) of a writer not older than \(writer)")
        }
        setPendingCommit(marker, from: writer)
        return nil
    }

    /// Keeps the round count when the same marker comes again (a retry after the window grew).
    private mutating func setPendingCommit(_ marker: CommitMarker, from writer: WriterID) {
        guard pendingCommit?.marker != marker else { return }
        pendingCommit = PendingCommit(marker: marker, writer: writer)
    }

    /// Whether the pending marker still needs its entry fetched: the local copy at its id is
    /// missing or differs (a stale entry waits there until a verified one replaces it).
    var pendingCommitNeedsFetch: Bool {
        guard let pending = pendingCommit, pending.id > committedID else { return false }
        return windowEntry(pending.id)?.checksum != pending.checksum
    }

    /// Re-applies a pending commit marker after the window grew: it commits once the entry it
    /// names is here with its checksum, and is dropped if refused.
    mutating func retryPendingCommit(limits: ReplicaLimits, writes: inout [DiskOperation]) {
        guard let pending = pendingCommit, pending.id <= tailID else { return }
        if applyCommitMarker(pending.marker, from: pending.writer, limits: limits, writes: &writes) != nil {
            pendingCommit = nil
        }
    }

    private mutating func advanceCommitted(to id: EntryID, writes: inout [DiskOperation]) {
        precondition(id > committedID && id <= tailID)
        let drop = Int(id - committedID)
        for entry in window[1...drop] {
            remember(entry)
            uncommittedBytes -= entry.data.count
        }
        window.removeFirst(drop)
        metadata.committedID = id
        if let pending = pendingCommit, pending.id <= id { pendingCommit = nil }
        writes.append(.setMetadata(uri, metadata))
    }

    /// A put whose entry is known to be committed (claim alignment and final commit): skips
    /// the writer check (docs/protocol.md, "ClaimWriter", phases 2 and 5), may create a gap
    /// ([GAP-1]).
    mutating func applyCommitted(_ entry: Entry, writes: inout [DiskOperation]) -> PutOutcome {
        if entry.id <= committedID {
            guard let known = knownCommittedChecksum(entry.id) else { return .applied }
            guard known == entry.checksum else {
                return .failed(WalleError(
                    .dataLoss, "committed entry \(entry.id) differs from the local committed one"))
            }
            return applyAtOrBelowCommitted(entry, writes: &writes)
        }
        if let local = windowEntry(entry.id), local.checksum == entry.checksum {
            if entry.writerID > local.writerID {
                // The claim's final commit: the suffix behind it is an older writer's.
                truncate(from: entry.id, writes: &writes)
                append(entry, writes: &writes)
            }
            advanceCommitted(to: entry.id, writes: &writes)
            return .applied
        }
        let previous = windowEntry(entry.id - 1)
        if let previous, entry.chains(onto: previous.checksum) {
            truncate(from: entry.id, writes: &writes)
            append(entry, writes: &writes)
            advanceCommitted(to: entry.id, writes: &writes)
            return .applied
        }
        if previous?.id == committedID {
            return .failed(WalleError(
                .dataLoss, "committed entry \(entry.id) does not chain onto committed \(committedID)"))
        }
        gapCommit(entry, writes: &writes)
        return .gapCommitted
    }

    /// Jumps the committed id to `entry` without its predecessors, which the backfill fetches
    /// later, checked against the chain (docs/protocol.md, "Gap commit, fast-forward and
    /// backfill").
    ///
    /// The uncommitted entries below `entry` stay on disk, unverified (`gapKeptEnd`): one of
    /// them may be acknowledged and held nowhere else. Deleting them lost an entry once the
    /// other holder was wiped (seed 1738 with --replica-moves). Upstream keeps them as live
    /// entries when the tail's writer is the committed entry's (WS-17), but a window can mix
    /// writers below its tail, and a stale entry kept that way was served as committed
    /// (seed 197). Here readers never see the gap range; the backfill proves each kept entry
    /// against the chain or overwrites it with a verified copy.
    private mutating func gapCommit(_ entry: Entry, writes: inout [DiskOperation]) {
        precondition(entry.id > committedID + 1)
        let keptEnd = min(tailID, entry.id - 1)
        truncate(from: keptEnd + 1, writes: &writes)
        if !metadata.hasGap {
            metadata.gapStart = gapStart(above: committedID)
            // Unused when the gap starts at a trim point (`isTrimPoint`).
            metadata.gapPreviousChecksum = window[0].checksum
        }
        if keptEnd > committedID { metadata.gapKeptEnd = max(metadata.gapKeptEnd, keptEnd) }
        metadata.gapEnd = entry.id
        metadata.gapEndChecksum = entry.checksum
        // Trimmed up to the entry itself: nothing below it is needed.
        if metadata.gapStart >= metadata.gapEnd { closeGap() }
        metadata.committedID = entry.id
        window = [entry]
        uncommittedBytes = 0
        if let pending = pendingCommit, pending.id <= entry.id { pendingCommit = nil }
        remember(entry)
        writes.append(.putEntry(uri, .live, entry))
        writes.append(.setMetadata(uri, metadata))
    }
}
