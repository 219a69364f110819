import WalleCore
import WalleEnvironment

/// Not an invariant: proof that a replacement server serves live writes at once. Counts the
/// entries replacements acknowledged while still backfilling a gap, and the slowest time from
/// a join to the new member's first live acknowledgement.
struct ReplacementStats {
    /// Replacement servers and when each started.
    private(set) var replacements: [NodeID: Int64] = [:]
    /// When a replacement server became a member of a workload stream (the add committed).
    private var joins: [DurableEntryKey: Int64] = [:]
    private var firstAckSeen: Set<DurableEntryKey> = []
    private(set) var liveAcksDuringBackfill = 0
    private(set) var joinedStreams = 0
    private(set) var firstLiveAckAfterJoin: Int64?

    mutating func replaced(_ node: NodeID, at now: Int64) { replacements[node] = now }

    mutating func joined(_ node: NodeID, _ uri: StreamURI, at now: Int64) {
        guard replacements[node] != nil, uri != World.rootStream else { return }
        joins[Self.key(node, uri)] = now
        joinedStreams += 1
    }

    /// `member` acknowledged a durable put of `uri`; `hasGap`: while it still backfills.
    mutating func acknowledged(by member: NodeID, _ uri: StreamURI, hasGap: () -> Bool, at now: Int64) {
        let join = Self.key(member, uri)
        guard let joinedAt = joins[join] else { return }
        if hasGap() { liveAcksDuringBackfill += 1 }
        if firstAckSeen.insert(join).inserted {
            firstLiveAckAfterJoin = max(firstLiveAckAfterJoin ?? 0, now - joinedAt)
        }
    }

    private static func key(_ node: NodeID, _ uri: StreamURI) -> DurableEntryKey {
        DurableEntryKey(uri: uri, id: node.rawValue, checksum: 0)
    }
}
