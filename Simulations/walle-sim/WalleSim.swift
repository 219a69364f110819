import ArgumentParser
import Dispatch
import Foundation
import WalleCore
import WalleSimulator

/// Exit codes: 0 every seed passed; 1 a safety invariant broke; 2 the cluster did not
/// converge after the heal (liveness); 3 a seed ran differently in two processes; 64 bad
/// arguments.
enum ExitStatus {
    static let violation: Int32 = 1
    static let stuck: Int32 = 2
    static let nondeterministic: Int32 = 3
    /// The sweep passed but missed a must-reach coverage probe (`--require-coverage`).
    static let coverage: Int32 = 4
    static let usage: Int32 = 64
}

struct SimulationOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Simulated seconds of the fault phase per seed (default: 30, and 120 to 600 for one seed in a hundred; "
                + "giving it turns the long runs off)."))
    var duration: Int?

    @Flag(help: "No seed draws a long fault phase (120 to 600 s instead of --duration).")
    var noLongRuns = false

    @Option(help: "Simulated seconds the cluster has to converge after the heal.")
    var livenessTimeout: Int = 60

    @Flag(help: "Run without injected faults (clock drift stays).")
    var noFaults = false

    @Flag(help: "Let clock rates leave [0.75, 1.25]: lease overlaps are expected, write safety must hold.")
    var beyondModel = false

    @Flag(help: "Do not move replicas between live servers (moves are one of the default faults).")
    var noReplicaMoves = false

    @Flag(help: "Leave out the hostile clients (malformed, forged, stale and replayed requests).")
    var noHostile = false

    @Flag(help: "No targeted fault points (crash after a reply, around claim phases, lost completions, ...).")
    var noTargetedFaults = false

    @Flag(help: "Every targeted fault point on in every seed (the swarm turns each on in half of them).")
    var allTargetedFaults = false

    @Flag(help: "Only the client-history checker may fail a run (the server-side oracles still run, unheard).")
    var noServerOracles = false

    @Flag(help: "Every seed runs the base server limits and the usual load (no swarm-drawn limits).")
    var baseLimits = false

    @Flag(help: "No seed runs the high load (many writers, deep pipelines).")
    var noHighLoad = false

    @Option(
        name: .customLong("base-limit"),
        help: ArgumentHelp(
            "Keep this limit at its base value whatever the seed draws (repeatable): "
                + "\(LimitsProfile.names.joined(separator: ", "))."))
    var baseLimitNames: [String] = []

    @Option(help: "Replace one server (wipe it, start a new one) at this simulated second.")
    var replaceAt: Int?

    @Option(
        name: .customLong("plant"),
        help: "Plant a deliberate bug (debug builds): \(RunOptions.plantedBugNames.joined(separator: ", ")).")
    var plantedBugs: [String] = []

    func runOptions() throws -> RunOptions {
        let duration = self.duration ?? 30
        guard duration > 0 && duration <= 86_400 else {
            throw ValidationError("--duration must be between 1 and 86400 seconds, got \(duration)")
        }
        guard livenessTimeout > 0 && livenessTimeout <= 3600 else {
            throw ValidationError("--liveness-timeout must be between 1 and 3600 seconds, got \(livenessTimeout)")
        }
        var options = RunOptions()
        options.duration = .seconds(duration)
        options.longRuns = self.duration == nil && !noLongRuns
        options.livenessTimeout = .seconds(livenessTimeout)
        options.faults = !noFaults
        options.beyondModel = beyondModel
        options.replicaMoves = !noReplicaMoves
        options.hostileClients = !noHostile
        options.targetedFaults = !noTargetedFaults
        options.allTargetedFaults = allTargetedFaults
        options.serverOracles = !noServerOracles
        if noTargetedFaults && allTargetedFaults {
            throw ValidationError("--no-targeted-faults and --all-targeted-faults contradict each other")
        }
        options.drawnLimits = !baseLimits
        options.highLoad = !noHighLoad
        for name in baseLimitNames where !LimitsProfile.names.contains(name) {
            throw ValidationError("unknown limit \"\(name)\"; known: \(LimitsProfile.names.joined(separator: ", "))")
        }
        options.baseLimitNames = Set(baseLimitNames)
        if let replaceAt, replaceAt < 0 || replaceAt >= duration {
            throw ValidationError(
                "--replace-at must be within the fault phase [0, \(duration)) seconds, got \(replaceAt)")
        }
        options.replaceServerAt = replaceAt.map { .seconds($0) }
        do {
            try options.plant(plantedBugs)
        } catch {
            throw ValidationError(error.message)
        }
        return options
    }
}

@main
struct WalleSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "walle-sim",
        abstract: "Deterministic simulation of a WALLE cluster: run, sweep and replay seeds.",
        subcommands: [Run.self, Sweep.self, Replay.self],
        defaultSubcommand: Sweep.self)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one seed and print its result and trace hash.")

    @Option(help: "The seed to run.") var seed: UInt64
    @OptionGroup var simulation: SimulationOptions
    @Flag(help: "Run the seed again in a second process and compare trace hashes.")
    var checkDeterminism = false
    @Flag(help: "Print only the trace hash (used by --check-determinism).")
    var hashOnly = false

    func run() throws {
        let options = try simulation.runOptions()
        let result = Simulation.run(seed: seed, options: options)
        if hashOnly {
            print(String(result.traceHash, radix: 16))
            return
        }
        print(result.profile.description)
        print(result.summary)
        let probes = result.probes.map(\.name).joined(separator: " ")
        print("probes reached: \(result.probes.count)/\(Probe.allCases.count): \(probes)")
        if !result.passed {
            print("replay: \(Simulation.replayCommand(seed: seed, options: options))")
            throw ExitCode(result.violation != nil ? ExitStatus.violation : ExitStatus.stuck)
        }
        if checkDeterminism {
            let other = try hashInSecondProcess(seed: seed, options: options)
            let mine = String(result.traceHash, radix: 16)
            print("determinism: this process \(mine), second process \(other): \(mine == other ? "same" : "DIFFERENT")")
            if mine != other { throw ExitCode(ExitStatus.nondeterministic) }
        }
    }
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one seed and print its full trace.")

    @Option(help: "The seed to replay.") var seed: UInt64
    @OptionGroup var simulation: SimulationOptions

    func run() throws {
        let options = try simulation.runOptions()
        let result = Simulation.run(seed: seed, options: options) { print($0) }
        print(result.summary)
        if result.violation != nil { throw ExitCode(ExitStatus.violation) }
        if result.stuck != nil { throw ExitCode(ExitStatus.stuck) }
    }
}

/// Runs `walle-sim run --seed N --hash-only` as a child process and returns its hash.
func hashInSecondProcess(seed: UInt64, options: RunOptions) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    process.arguments = ["run", "--seed", String(seed), "--hash-only"] + Simulation.arguments(options)
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}
