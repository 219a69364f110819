import WalleCore
import WalleEnvironment

/// The liveness phase (invariants 10 and 14 in docs/simulation.md): after the faults heal,
/// within a bounded simulated time, every stream has a writer whose puts commit, and every
/// member of every stream holds the same committed id, no gap, and the same entries, and the
/// clients route by the current member lists.
final class Liveness {
    private let agenda: Agenda
    private let trace: Trace
    private let livenessTimeout: Duration
    private let cluster: Cluster
    private unowned let topologyView: any TopologyView
    private unowned let acknowledgements: any AcknowledgementView
    private unowned let workload: any WorkloadControl
    private(set) var healedAt: Int64?
    private(set) var convergedAt: Int64?
    /// Set when the deadline passed without convergence: what was still missing.
    private(set) var stuck: String?
    private var quiescing = false

    static let checkInterval: Int64 = 250_000_000

    init(
        agenda: Agenda, trace: Trace, livenessTimeout: Duration, cluster: Cluster, topology: any TopologyView,
        acknowledgements: any AcknowledgementView, workload: any WorkloadControl
    ) {
        self.agenda = agenda
        self.trace = trace
        self.livenessTimeout = livenessTimeout
        self.cluster = cluster
        self.topologyView = topology
        self.acknowledgements = acknowledgements
        self.workload = workload
    }

    var isActive: Bool { healedAt != nil && convergedAt == nil && stuck == nil }

    func begin() {
        healedAt = agenda.trueNow
        agenda.schedule(at: agenda.trueNow + Liveness.checkInterval, .fault(.checkLiveness))
    }

    var deadline: Int64 { (healedAt ?? 0) + livenessTimeout.nanoseconds }

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
            convergedAt = agenda.trueNow
            trace.line(
                agenda.trueNow,
                "liveness: converged \(Duration.nanoseconds(agenda.trueNow - healedAt).formattedMilliseconds)"
                    + " after heal")
            return
        }
        if agenda.trueNow >= deadline {
            stuck = missing
            trace.line(agenda.trueNow, "liveness: STUCK: \(missing!)")
            return
        }
        // Once every stream has a live writer, stop new puts so commits can settle everywhere.
        // A pending removal waits for commits to cover every tail, so puts go on until then.
        if !quiescing && topologyView.isIdle
            && workload.streams.allSatisfy({ acknowledgements.lastAcknowledgedAt($0) ?? 0 > healedAt })
        {
            quiescing = true
            workload.quiesce()
        }
        agenda.schedule(at: agenda.trueNow + Liveness.checkInterval, .fault(.checkLiveness))
    }

    /// nil when converged; otherwise the first thing still missing, for the report.
    private func whatIsMissing(since healedAt: Int64) -> String? {
        guard topologyView.isIdle else { return "the topology manager still has changes to make" }
        if let problem = membersDisagree(World.rootStream) { return problem }
        for uri in workload.streams {
            guard let acknowledged = acknowledgements.lastAcknowledgedAt(uri), acknowledged > healedAt else {
                return "\(uri): no put acknowledged since the heal"
            }
            guard cluster.writers.contains(where: { $0.uri == uri && $0.node.client.phase == .active }) else {
                return "\(uri): no active writer"
            }
            if let problem = membersDisagree(uri) { return problem }
            if let problem = clientsBehind(uri) { return problem }
        }
        return quiescing ? nil : "puts still running"
    }

    /// Clients follow the topology themselves: every reader, and every active writer, routes
    /// by the stream's current member list.
    private func clientsBehind(_ uri: StreamURI) -> String? {
        let members = topologyView.topology.streams[uri]?.members ?? []
        for reader in cluster.readers where reader.streams[uri]?.members != members {
            let known = reader.streams[uri]?.members ?? []
            return "\(uri): \(reader.id.short) reads from \(known), the topology has \(members)"
        }
        for writer in cluster.writers where writer.uri == uri && writer.node.client.phase == .active {
            guard writer.node.client.servers != members else { continue }
            return "\(uri): \(writer.id.short) writes to \(writer.node.client.servers), the topology has \(members)"
        }
        return nil
    }

    private func membersDisagree(_ uri: StreamURI) -> String? {
        let topologyMembers = topologyView.topology.streams[uri]?.members ?? []
        let members = cluster.servers.filter { $0.isUp && topologyMembers.contains($0.id) }
        for host in members
            where host.node.metadata(of: uri)?.topology.version != topologyView.topology.streams[uri]?.version
        {
            return "\(uri): \(host.id.short) is not at the stream's current version yet"
        }
        guard let first = members.first, let reference = first.node.metadata(of: uri) else {
            return "\(uri): no member is up"
        }
        let acknowledgedMax = acknowledgements.highestAcknowledged(uri)
        let firstEntry = topologyView.topology.firstEntryID(of: uri)
        for host in members {
            let metadata = host.node.metadata(of: uri)!
            if metadata.committedID != reference.committedID || metadata.committedID < acknowledgedMax {
                return "\(uri): \(host.id.short) committed \(metadata.committedID), "
                    + "\(first.id.short) \(reference.committedID), acknowledged \(acknowledgedMax)"
            }
            if metadata.hasGap {
                return "\(uri): \(host.id.short) still has the gap [\(metadata.gapStart), \(metadata.gapEnd))"
            }
            if metadata.firstEntryID != firstEntry {
                return "\(uri): \(host.id.short) has first entry \(metadata.firstEntryID), the topology \(firstEntry)"
            }
        }
        return identicalData(uri, members: members, from: max(1, firstEntry), upTo: reference.committedID)
    }

    /// Every member holds every entry from the first (1 if not trimmed) to C with the same
    /// checksum (invariant 10).
    private func identicalData(
        _ uri: StreamURI, members: [ServerHost], from first: EntryID, upTo committed: EntryID
    ) -> String? {
        guard committed >= first else { return nil }
        for id in first...committed {
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
