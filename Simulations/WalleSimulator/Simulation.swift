public import WalleCore
import WalleEnvironment

/// The outcome of one seed.
public struct RunResult: Sendable {
    public var seed: UInt64
    public var profile: Profile
    public var traceHash: UInt64
    public var violation: Violation?
    public var simulatedDuration: Duration
    public var events: UInt64
    public var claims: Int
    public var putsIssued: Int
    public var putsAcknowledged: Int
    public var committedEntries: Int
    public var oracleObservations: Int
    /// The cluster did not converge after the heal: what was still missing.
    public var stuck: String?
    /// Simulated time from the heal to convergence.
    public var convergence: Duration?
    public var faults: [FaultKind: Int]
    /// Requests the servers refused for load or time, by the bound that refused.
    public var refusals: [Refusal: Int]
    /// Puts a replacement server acknowledged while it still had a gap to backfill.
    public var liveAcksDuringBackfill: Int
    /// Workload streams a replacement server joined, and the slowest time from such a join
    /// to the new member's first acknowledgement of a live put.
    public var joinedStreams: Int
    public var firstLiveAckAfterJoin: Duration?
    /// The coverage probes some node reached (`Probe`).
    public var probes: ProbeSet

    public var passed: Bool { violation == nil && stuck == nil }

    public var summary: String {
        let convergedText = convergence.map { " converged=\($0.formattedMilliseconds)" } ?? ""
        let status = violation.map { "FAILED \($0)" } ?? stuck.map { "STUCK \($0)" } ?? "ok\(convergedText)"
        return "seed \(seed) \(status) trace=\(hex16(traceHash)) events=\(events) claims=\(claims) "
            + "puts=\(putsAcknowledged)/\(putsIssued) committed=\(committedEntries)"
    }
}

public enum Simulation {
    /// Runs one seed to the end (or to the first violation). `printer` receives the trace.
    public static func run(seed: UInt64, options: RunOptions, printer: ((String) -> Void)? = nil) -> RunResult {
        var options = options
        options.printTrace = printer != nil
        let world = World(seed: seed, options: options)
        world.trace.printer = printer
        world.trace.line(0, "seed \(seed): \(world.profile)")
        world.runEvents()
        if world.oracle.violation == nil { world.oracle.finish() }
        if world.oracle.violation == nil { world.finishHistory() }
        if world.oracle.violation == nil && world.liveness.convergedAt == nil && world.liveness.stuck == nil {
            world.liveness.giveUp()
        }
        world.trace.mix(world.oracle.violation == nil ? 1 : 2)
        return RunResult(
            seed: seed, profile: world.profile, traceHash: world.trace.hash,
            violation: world.oracle.violation, simulatedDuration: .nanoseconds(world.trueNow),
            events: world.trace.eventCount, claims: world.workload.claimsSucceeded,
            putsIssued: world.workload.putsIssued, putsAcknowledged: world.oracle.acknowledgedCount,
            committedEntries: world.oracle.committedCount, oracleObservations: world.oracle.observations,
            stuck: world.liveness.stuck,
            convergence: world.liveness.convergedAt.map { .nanoseconds($0 - world.liveness.healedAt!) },
            faults: world.faultCounts,
            refusals: world.refusalCounts,
            liveAcksDuringBackfill: world.oracle.replacementStats.liveAcksDuringBackfill,
            joinedStreams: world.oracle.replacementStats.joinedStreams,
            firstLiveAckAfterJoin: world.oracle.replacementStats.firstLiveAckAfterJoin.map { .nanoseconds($0) },
            probes: world.probesReached)
    }

    /// The one command that replays a seed exactly.
    public static func replayCommand(seed: UInt64, options: RunOptions) -> String {
        (["swift run walle-sim replay --seed \(seed)"] + arguments(options)).joined(separator: " ")
    }

    /// The command-line options that give `options`, each one that differs from the default:
    /// what a replay and `run --check-determinism`'s second process pass, so no option can be
    /// left out of one and not the other.
    public static func arguments(_ options: RunOptions) -> [String] {
        var arguments: [String] = []
        if options.duration != .seconds(30) {
            arguments += ["--duration", String(options.duration.milliseconds / 1000)]
        } else if !options.longRuns {
            arguments.append("--no-long-runs")
        }
        if options.livenessTimeout != .seconds(60) {
            arguments += ["--liveness-timeout", String(options.livenessTimeout.milliseconds / 1000)]
        }
        if !options.faults { arguments.append("--no-faults") }
        if options.beyondModel { arguments.append("--beyond-model") }
        if !options.replicaMoves { arguments.append("--no-replica-moves") }
        if !options.hostileClients { arguments.append("--no-hostile") }
        if !options.targetedFaults { arguments.append("--no-targeted-faults") }
        if options.allTargetedFaults { arguments.append("--all-targeted-faults") }
        if !options.serverOracles { arguments.append("--no-server-oracles") }
        if !options.drawnLimits { arguments.append("--base-limits") }
        if !options.highLoad { arguments.append("--no-high-load") }
        for name in options.baseLimitNames.sorted() { arguments += ["--base-limit", name] }
        if let at = options.replaceServerAt { arguments += ["--replace-at", String(at.milliseconds / 1000)] }
        for bug in options.plantedBugs.map(\.rawValue).sorted() { arguments += ["--plant", bug] }
        return arguments
    }
}
