import WalleEnvironment

/// Puts that arrived before their predecessor wait here, bounded and with a deadline each; entries
/// a backfill fetched are written below the gap here.
extension StreamReplica {
    /// Queues a put that arrived before its predecessor ([PIPE-2], [PIPE-3]). Returns the
    /// failure of this put, or the callers it displaced with theirs.
    mutating func enqueue(
        _ entry: Entry, route: Route, now: Instant, limits: ReplicaLimits
    ) -> (failure: PutOutcome?, displaced: [(Route, PutOutcome)]) {
        precondition(entry.id > tailID + 1)
        if var queued = queue[entry.id] {
            if queued.entry.writerID == entry.writerID && queued.entry.checksum == entry.checksum {
                // The same put again (the writer resends after its request timeout). The
                // oldest copies are the ones nobody waits for any more; without a bound, a
                // client resending one put could grow this list for as long as it waits.
                var displaced: [(Route, PutOutcome)] = []
                if queued.routes.count >= limits.queuedPutRoutesMax {
                    let error = WalleError(
                        .unavailable, "entry \(entry.id) was sent again; the newer request waits instead")
                    displaced.append((queued.routes.removeFirst(), .refused(.queuedPutRoutes, error)))
                }
                queued.routes.append(route)
                // The wait counts from the newest copy, like its timer (the writer still wants
                // it); `queuedPutsMax` bounds how many wait, whatever a replayer resends.
                queued.expiresAt = now + limits.queuedPutTimeout
                queue[entry.id] = queued
                return (nil, displaced)
            }
            // Different content at the same id: the newer writer's entry stays.
            if entry.writerID < queued.entry.writerID {
                return (.failed(WalleError(
                    .failedPrecondition, "entry \(entry.id) of writer \(queued.entry.writerID) is queued instead")), [])
            }
            if entry.writerID == queued.entry.writerID {
                // A writer writes each id once, so one of the two is not its own (a forged or
                // corrupt copy). Which one chains is known only when the predecessor arrives,
                // and the one that does not is dropped then: answer "retry", never a final
                // error, or anyone could close a writer by queuing a copy first.
                return (.failed(WalleError(
                    .unavailable, "another entry \(entry.id) of writer \(entry.writerID) waits here; try again")), [])
            }
            queue[entry.id] = QueuedPut(entry: entry, routes: [route], expiresAt: now + limits.queuedPutTimeout)
            let error = WalleError(
                .failedPrecondition, "entry \(entry.id) was replaced by newer writer \(entry.writerID)")
            return (nil, queued.routes.map { ($0, .failed(error)) })
        }
        guard queue.count < limits.queuedPutsMax else {
            return (.refused(.queuedPuts, WalleError(
                .resourceExhausted, "\(queue.count) puts are already waiting on \(uri)")), [])
        }
        queue[entry.id] = QueuedPut(entry: entry, routes: [route], expiresAt: now + limits.queuedPutTimeout)
        return (nil, [])
    }

    /// Takes the queued put that can be applied next, if any.
    mutating func dequeueNext() -> QueuedPut? {
        queue.removeValue(forKey: tailID + 1)
    }

    /// Removes a queued put whose time ran out (or that the tail has passed).
    mutating func expire(_ id: EntryID, now: Instant) -> QueuedPut? {
        guard let queued = queue[id], queued.expiresAt <= now || id <= tailID else { return nil }
        return queue.removeValue(forKey: id)
    }

    /// Queued puts at or below the tail can no longer be applied in order (a gap commit
    /// jumped past them).
    mutating func removeOvertakenQueued() -> [QueuedPut] {
        let tail = tailID
        return removeQueued { $0 <= tail }
    }

    /// Takes every queued put (the member left the stream, or its version moved).
    mutating func removeAllQueued() -> [QueuedPut] {
        removeQueued { _ in true }
    }

    /// Sorted by id so their answers go out in a fixed order.
    private mutating func removeQueued(where taken: (EntryID) -> Bool) -> [QueuedPut] {
        let ids = queue.keys.filter(taken).sorted()
        return ids.compactMap { queue.removeValue(forKey: $0) }
    }

    /// Records fetched entries below `gapEnd` (closes WS-4). The answer must end with entry
    /// `gapEnd` itself; walking down, each entry's checksum must be the one the entry above
    /// chains onto, which proves it whichever copy it came from (a peer's committed entry, a
    /// peer's or this member's kept one). The lowest entry's data is proven only by the link
    /// to its own predecessor, so it is taken in the next batch unless it ends the gap.
    /// Working downwards lets kept copies on several members add up to the whole range.
    mutating func applyBackfill(_ entries: [Entry], writes: inout [DiskOperation]) -> WalleError? {
        precondition(metadata.hasGap)
        guard let top = entries.last, top.id == metadata.gapEnd, top.checksum == metadata.gapEndChecksum else {
            return WalleError(.unavailable, "the answer does not end at committed entry \(metadata.gapEnd)")
        }
        var proven: [Entry] = []
        var above = top
        for entry in entries.dropLast().reversed() {
            guard entry.id + 1 == above.id, entry.id >= metadata.gapStart,
                above.chains(onto: entry.checksum)
            else { break }
            proven.append(entry)
            above = entry
        }
        let closes = above.id == metadata.gapStart && above.id < top.id
        if closes {
            guard isTrimPoint(above.id) || above.chains(onto: metadata.gapPreviousChecksum) else {
                return WalleError(.dataLoss, "backfilled entry \(above.id) does not chain onto \(above.id - 1)")
            }
        } else if !proven.isEmpty {
            proven.removeLast()
        }
        guard !proven.isEmpty else {
            return WalleError(.unavailable, "nothing usable below entry \(metadata.gapEnd)")
        }
        for entry in proven {
            // A kept live copy would win over the backfill table on reads: overwrite it.
            writes.append(.putEntry(uri, entry.id <= metadata.gapKeptEnd ? .live : .backfill, entry))
        }
        if closes {
            closeGap()
        } else {
            metadata.gapEnd = proven[proven.count - 1].id
            metadata.gapEndChecksum = proven[proven.count - 1].checksum
        }
        writes.append(.setMetadata(uri, metadata))
        return nil
    }
}
