import WalleCore
import WalleEnvironment

/// Invariant 2, acknowledged durability: a member answers OK to a PutEntryInternal only once
/// the entry is durable on its disk, and at the end of a run every acknowledged put is
/// durable on some server that was not replaced.
struct DurabilityChecker {
    /// One server-to-server call, as the member's answer names it.
    struct CallKey: Hashable {
        var coordinator: NodeID
        var member: NodeID
        var requestID: RequestID
    }

    /// PutEntryInternal calls whose answer has not been seen yet.
    private var internalPuts: [CallKey: DurableEntryKey] = [:]

    mutating func putSent(_ key: CallKey, _ uri: StreamURI, _ entry: Entry) {
        internalPuts[key] = DurableEntryKey(uri: uri, id: entry.id, checksum: entry.checksum)
    }

    /// A member's answer to a call: the put it acknowledged, if the call was a put and the
    /// answer OK.
    mutating func answered(_ key: CallKey, _ reply: Reply) -> DurableEntryKey? {
        guard let put = internalPuts.removeValue(forKey: key), case .ok = reply else { return nil }
        return put
    }

    func acknowledged(_ put: DurableEntryKey, by key: CallKey, isDurable: Bool, verdict: Verdict) {
        guard !isDurable else { return }
        verdict.fail(
            .acknowledgedDurability, [key.member, key.coordinator],
            "\(key.member) acknowledged \(put.uri) entry \(put.id) before it was durable")
    }

    /// End of run: `holdsDurably(uri, entry)` says whether a server not replaced holds it.
    /// Entries below a stream's first entry were trimmed: nothing at or above it may be lost.
    func finish(
        _ uris: [StreamURI], acknowledged: AckLedger, firstEntryIDs: [StreamURI: EntryID],
        holdsDurably: (StreamURI, Entry) -> Bool, verdict: Verdict
    ) {
        for uri in uris {
            let first = max(1, firstEntryIDs[uri] ?? 0)
            for entry in acknowledged.sorted(uri) where entry.id >= first && !holdsDurably(uri, entry) {
                verdict.fail(
                    .acknowledgedDurability, [],
                    "\(uri) entry \(entry.id) was acknowledged but no server holds it durably")
            }
        }
    }
}

/// What must hold right after a member is removed: WS-3, every committed entry is still on a
/// majority of the remaining members (live or backfill table), or one more lost disk loses
/// acknowledged data; and the newest claim's stamp is on a majority (claim-stamp-quorum).
struct RemovalChecker {
    /// `images`: what each remaining member holds of the stream (nil: nothing); `first`: the
    /// stream's first entry, below which entries were trimmed.
    func membersHoldCommitted(
        _ uri: StreamURI, _ members: [NodeID], images: [DiskImage.StreamImage?], log: CommittedLog,
        from first: EntryID, verdict: Verdict
    ) {
        let majority = members.count / 2 + 1
        for (id, checksum) in log.sorted(uri) where id > 0 && id >= first {
            let holders = images.filter { $0?.entry(id)?.checksum == checksum }
            if holders.count < majority {
                verdict.fail(
                    .acknowledgedDurability, members,
                    "after a removal only \(holders.count) of \(members.count) members of \(uri) "
                        + "hold committed entry \(id) (WS-3)")
                return
            }
        }
    }

    /// A majority of the remaining members must carry the newest claim's stamp (or a newer
    /// one) on a tail at or above its claimed tail: a later claim sees one of them, and the
    /// stamp is what fences an older writer's unacknowledged entries above that tail. Seeds
    /// 9760 and 11348 lost it when one of a claim's two holders was removed.
    func membersHoldNewestClaim(
        _ uri: StreamURI, _ members: [NodeID], images: [DiskImage.StreamImage?], claims: ClaimLedger,
        verdict: Verdict
    ) {
        guard let newest = claims.newest(uri) else { return }
        let holders = images.filter { stream in
            guard let stream, let tailID = stream.live.keys.max(), let tail = stream.live[tailID] else { return false }
            return tail.id >= newest.tail.id && tail.writerID >= newest.writer
        }
        if holders.count < members.count / 2 + 1 {
            verdict.fail(
                .claimStampQuorum, members,
                "after a removal only \(holders.count) of \(members.count) members of \(uri) "
                    + "carry \(newest.writer)'s claim of tail \(newest.tail.id)")
        }
    }
}
