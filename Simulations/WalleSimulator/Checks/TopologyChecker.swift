import WalleCore
import WalleEnvironment

/// Invariant 12: entry N of the topology stream is version N, each stream's version grows by
/// exactly one per change, consecutive member lists differ by at most one server; and (WS-2)
/// member lists of versions in concurrent use have intersecting majorities.
struct TopologyChecker {
    private var topologies: [UInt64: Topology] = [:]
    /// Each stream version's member list and when it was committed (first seen committed).
    private var streamVersions: [StreamURI: [UInt64: (members: [NodeID], committedAt: Int64)]] = [:]
    private var latestStreamVersion: [StreamURI: UInt64] = [:]

    /// A root entry new to L.
    mutating func committed(_ entry: Entry, by node: NodeID, now: Int64, verdict: Verdict) {
        let topology: Topology
        do {
            topology = try Topology.decode(entry.data, entryID: entry.id)
        } catch {
            verdict.fail(.topology, [node], "root entry \(entry.id): \(error)")
            return
        }
        topologies[entry.id] = topology
        for (uri, stream) in topology.streams where streamVersions[uri]?[stream.version] == nil {
            streamVersions[uri, default: [:]][stream.version] = (stream.members, now)
            latestStreamVersion[uri] = max(latestStreamVersion[uri] ?? 0, stream.version)
        }
        for (older, newer) in [(topologies[entry.id - 1], topology), (topology, topologies[entry.id + 1])] {
            guard let older, let newer else { continue }
            if let problem = Self.stepProblem(from: older, to: newer) {
                verdict.fail(.topology, [node], "v\(older.version) -> v\(newer.version): \(problem)")
            }
        }
    }

    /// Whether a round at `version` needs the WS-2 check: a version two or more ahead exists.
    func needsIntersection(_ uri: StreamURI, version: UInt64) -> Bool {
        guard let latest = latestStreamVersion[uri] else { return false }
        return latest >= version + 2
    }

    /// WS-2: a round at version h that went out after version g ≥ h + 2 was committed uses
    /// both at once (h and h + 1 always intersect: they differ by one member). `startedAfter`
    /// bounds the round's start in true time from below.
    func quorumReached(_ record: QuorumRecord, at node: NodeID, startedAfter: Int64, verdict: Verdict) {
        let uri = record.stream
        let h = record.streamVersion
        guard let latest = latestStreamVersion[uri], latest >= h + 2 else { return }
        for g in (h + 2)...latest {
            guard let (members, committedAt) = streamVersions[uri]?[g], committedAt < startedAfter,
                Self.majoritiesCanMiss(record.members, members)
            else { continue }
            verdict.fail(
                .topology, [node],
                "a round on \(uri) at v\(h) \(record.members.map(\.short)) reached a majority after v\(g) "
                    + "\(members.map(\.short)) was committed; majorities of the two need not intersect (WS-2)")
            return
        }
    }

    /// Whether some majority of `a` and some majority of `b` are disjoint.
    static func majoritiesCanMiss(_ a: [NodeID], _ b: [NodeID]) -> Bool {
        let shared = Set(a).intersection(b).count
        let needA = max(0, a.count / 2 + 1 - (a.count - shared))
        let needB = max(0, b.count / 2 + 1 - (b.count - shared))
        return needA + needB <= shared
    }

    static func stepProblem(from older: Topology, to newer: Topology) -> String? {
        for (uri, next) in newer.streams.sorted(by: { $0.key < $1.key }) {
            guard let previous = older.streams[uri] else {
                if next.version != 1 { return "\(uri) appears at version \(next.version)" }
                continue
            }
            if next.version == previous.version {
                if next.members != previous.members { return "\(uri) members changed without a version" }
            } else if next.version == previous.version + 1 {
                let changed = Set(next.members).symmetricDifference(previous.members)
                if changed.count > 1 { return "\(uri) changed \(changed.count) members at once" }
            } else {
                return "\(uri) went from version \(previous.version) to \(next.version)"
            }
        }
        return nil
    }
}
