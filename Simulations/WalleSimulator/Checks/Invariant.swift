import WalleCore
import WalleEnvironment

/// The invariants the simulator checks (docs/simulation.md, "Invariants"). The raw values are
/// what violations, sweep summaries, JUnit reports and the planted-bug tests name: keep them.
public enum Invariant: String, CaseIterable, Sendable, CustomStringConvertible {
    case committedImmutability = "committed-immutability"
    case acknowledgedDurability = "acknowledged-durability"
    case chainValidity = "chain-validity"
    case claimMonotonicity = "claim-monotonicity"
    case writerFencing = "writer-fencing"
    case leaseExclusivity = "lease-exclusivity"
    case serverReads = "server-reads"
    case committedIDMonotonic = "committed-id-monotonic"
    case writerIDsNeverDecrease = "writer-ids-never-decrease"
    case topology = "topology"
    case claimStampQuorum = "claim-stamp-quorum"
    case hostileAcknowledged = "hostile-acknowledged"
    case writerClosedUnfenced = "writer-closed-unfenced"
    /// What clients saw, against a model of the log (`HistoryChecker`).
    case clientHistory = "client-history"

    public var description: String { rawValue }
}

/// A broken invariant: which one, when (true time), who was involved, and what was seen.
public struct Violation: Sendable, CustomStringConvertible {
    public var invariant: Invariant
    public var time: Duration
    public var nodes: [NodeID]
    public var detail: String

    public var description: String {
        let nodeList = nodes.map(\.short).joined(separator: ", ")
        return "\(invariant.rawValue) at \(time.formattedMilliseconds) on [\(nodeList)]: \(detail)"
    }
}

/// Where every checker reports. It keeps the first violation only: the run stops there, and a
/// second report would name a consequence, not the cause. Outside the time model
/// (`beyondModel`) leases may overlap, so a lease-exclusivity report is counted, not kept.
final class Verdict {
    private(set) var violation: Violation?
    let beyondModel: Bool
    private let trace: Trace
    private let now: () -> Int64
    private let countBeyondModel: () -> Void

    init(beyondModel: Bool, trace: Trace, now: @escaping () -> Int64, countBeyondModel: @escaping () -> Void) {
        self.beyondModel = beyondModel
        self.trace = trace
        self.now = now
        self.countBeyondModel = countBeyondModel
    }

    /// `--no-server-oracles`: only the client-history checker may fail a run.
    var serverOraclesOff = false

    func fail(_ invariant: Invariant, _ nodes: [NodeID], _ detail: String) {
        guard violation == nil, !serverOraclesOff || invariant == .clientHistory else { return }
        if invariant == .leaseExclusivity && beyondModel {
            countBeyondModel()
            trace.line(now(), "oracle: expected beyond the model: \(detail)")
            return
        }
        let violation = Violation(invariant: invariant, time: .nanoseconds(now()), nodes: nodes, detail: detail)
        self.violation = violation
        trace.line(now(), "oracle: VIOLATION \(violation)")
    }
}
