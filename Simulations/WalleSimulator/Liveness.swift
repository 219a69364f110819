import WalleCore
import WalleEnvironment

/// The liveness phase (invariants 10 and 14 in docs/simulation.md): after the faults heal,
/// within a bounded simulated time, every stream has a writer whose puts commit, and every
/// member of every stream holds the same committed id, no gap, and the same entries.
final class Liveness {
    unowned let world: World
    private(set) var healedAt: Int64?
    private(set) var convergedAt: Int64?
    /// Set when the deadline passed without convergence: what was still missing.
    private(set) var stuck: String?
    private var quiescing = false

    static let checkInterval: Int64 = 250_000_000

    init(world: World) { self.world = world }

    var isActive: Bool { healedAt != nil && convergedAt == nil && stuck == nil }

    func begin() {
        healedAt = world.trueNow
        world.schedule(at: world.trueNow + Liveness.checkInterval, .fault(.checkLiveness))
    }

    var deadline: Int64 { (healedAt ?? 0) + world.options.livenessTimeout.nanoseconds }

    /// The event queue ran dry or the run ended before the deadline check: report as stuck.
    func giveUp() {
        guard healedAt != nil, convergedAt == nil, stuck == nil else {
            if healedAt == nil { stuck = "the run ended before the heal" }
            return
        }
        stuck = whatIsMissing(since: healedAt!) ?? "ended before the last check"
    }

    func check() {
        guard isActive, let healedAt else { return }
        let missing = whatIsMissing(since: healedAt)
        if missing == nil {
            convergedAt = world.trueNow
            world.trace.line(
                world.trueNow,
                "liveness: converged \(Duration.nanoseconds(world.trueNow - healedAt).formattedMilliseconds)"
                    + " after heal")
            return
        }
        if world.trueNow >= deadline {
            stuck = missing
            world.trace.line(world.trueNow, "liveness: STUCK: \(missing!)")
            return
        }
        // Once every stream has a live writer, stop new puts so commits can settle everywhere.
        // A pending removal waits for commits to cover every tail, so puts go on until then.
        if !quiescing && world.manager.isIdle
            && world.workload.streams.allSatisfy({ world.oracle.lastAcknowledgedAt($0) ?? 0 > healedAt })
        {
            quiescing = true
            world.workload.quiesce()
        }
        world.schedule(at: world.trueNow + Liveness.checkInterval, .fault(.checkLiveness))
    }

    /// nil when converged; otherwise the first thing still missing, for the report.
    private func whatIsMissing(since healedAt: Int64) -> String? {
        guard world.manager.isIdle else { return "the topology manager still has changes to make" }
        if let problem = membersDisagree(World.rootStream) { return problem }
        for uri in world.workload.streams {
            guard let acknowledged = world.oracle.lastAcknowledgedAt(uri), acknowledged > healedAt else {
                return "\(uri): no put acknowledged since the heal"
            }
            guard world.writers.contains(where: { $0.uri == uri && $0.node.client.phase == .active }) else {
                return "\(uri): no active writer"
            }
            if let problem = membersDisagree(uri) { return problem }
        }
        return quiescing ? nil : "puts still running"
    }

    private func membersDisagree(_ uri: StreamURI) -> String? {
        let topologyMembers = world.manager.topology.streams[uri]?.members ?? []
        let members = world.servers.filter { $0.isUp && topologyMembers.contains($0.id) }
        for host in members
            where host.node.metadata(of: uri)?.topology.version != world.manager.topology.streams[uri]?.version
        {
            return "\(uri): \(host.id.short) is not at the stream's current version yet"
        }
        guard let first = members.first, let reference = first.node.metadata(of: uri) else {
            return "\(uri): no member is up"
        }
        let acknowledgedMax = world.oracle.highestAcknowledged(uri)
        for host in members {
            let metadata = host.node.metadata(of: uri)!
            if metadata.committedID != reference.committedID || metadata.committedID < acknowledgedMax {
                return "\(uri): \(host.id.short) committed \(metadata.committedID), "
                    + "\(first.id.short) \(reference.committedID), acknowledged \(acknowledgedMax)"
            }
            if metadata.hasGap {
                return "\(uri): \(host.id.short) still has the gap [\(metadata.gapStart), \(metadata.gapEnd))"
            }
        }
        return identicalData(uri, members: members, upTo: reference.committedID)
    }

    /// Every member holds every entry 1...C with the same checksum (invariant 10).
    private func identicalData(_ uri: StreamURI, members: [ServerHost], upTo committed: EntryID) -> String? {
        guard committed > 0 else { return nil }
        for id in 1...committed {
            var checksum: UInt64?
            for host in members {
                guard let entry = host.disk.current.streams[uri]?.entry(id) else {
                    return "\(uri): \(host.id.short) lacks entry \(id)"
                }
                if let checksum, checksum != entry.checksum {
                    return "\(uri): members differ at entry \(id)"
                }
                checksum = entry.checksum
            }
        }
        return nil
    }
}
