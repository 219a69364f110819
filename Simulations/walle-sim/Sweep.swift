import ArgumentParser
import Dispatch
import Foundation
import WalleSimulator

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run many seeds in parallel; print a summary and the replay command of every failure.")

    @Option(help: "How many seeds to run.") var seeds: Int = 100
    @Option(help: "The first seed.") var from: UInt64 = 1
    @Option(help: "Seeds run at once (default: every core).") var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    @OptionGroup var simulation: SimulationOptions

    func run() throws {
        guard seeds > 0 && seeds <= 10_000_000 else { throw ValidationError("--seeds must be between 1 and 10000000") }
        guard jobs > 0 && jobs <= 256 else { throw ValidationError("--jobs must be between 1 and 256") }
        let options = try simulation.runOptions()
        let seedList = (0..<UInt64(seeds)).map { from + $0 }
        let progress = Progress(total: seeds, interactive: isatty(STDOUT_FILENO) == 1)
        let start = DispatchTime.now()
        let results = SweepRunner.run(seeds: seedList, jobs: jobs, options: options) { progress.tick(passed: $0.passed) }
        let wallSeconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        progress.finish()
        let failures = results.filter { !$0.passed }
        let simulatedSeconds = results.reduce(0.0) { $0 + Double($1.simulatedDuration.nanoseconds) / 1e9 }
        let events = results.reduce(UInt64(0)) { $0 + $1.events }
        let acknowledged = results.reduce(0) { $0 + $1.putsAcknowledged }
        let claims = results.reduce(0) { $0 + $1.claims }
        print("seeds:                 \(seeds) (from \(from)), jobs \(jobs)")
        print("passed / failed:       \(seeds - failures.count) / \(failures.count)")
        print("claims, acked puts:    \(claims), \(acknowledged)")
        print("events:                \(events)")
        print("wall time:             \(format(wallSeconds)) s")
        print("seeds per second:      \(format(Double(seeds) / wallSeconds))")
        print("simulated s per wall s: \(format(simulatedSeconds / wallSeconds)) (all jobs), \(format(simulatedSeconds / wallSeconds / Double(jobs))) per job")
        var byInvariant: [String: Int] = [:]
        for failure in failures { byInvariant[failure.violation!.invariant, default: 0] += 1 }
        for (invariant, count) in byInvariant.sorted(by: { $0.key < $1.key }) {
            print("failures: \(invariant): \(count)")
        }
        for failure in failures.prefix(20) {
            print("FAIL seed \(failure.seed): \(failure.violation!)")
            print("  replay: \(Simulation.replayCommand(seed: failure.seed, options: options))")
        }
        if !failures.isEmpty { throw ExitCode(ExitStatus.violation) }
    }
}

func format(_ value: Double) -> String { String(format: "%.1f", value) }

/// Runs seeds on `jobs` threads; results come back in seed order whatever the finishing order.
enum SweepRunner {
    static func run(seeds: [UInt64], jobs: Int, options: RunOptions, onResult: @escaping @Sendable (RunResult) -> Void) -> [RunResult] {
        let box = ResultBox(count: seeds.count)
        let next = Counter()
        DispatchQueue.concurrentPerform(iterations: min(jobs, seeds.count)) { _ in
            while let index = next.take(below: seeds.count) {
                let result = Simulation.run(seed: seeds[index], options: options)
                box.set(index, result)
                onResult(result)
            }
        }
        return box.results()
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func take(below limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [RunResult?]

    init(count: Int) { storage = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ result: RunResult) {
        lock.lock()
        storage[index] = result
        lock.unlock()
    }

    func results() -> [RunResult] { storage.map { $0! } }
}

/// A progress line on a terminal; a plain line every 10% otherwise.
final class Progress: @unchecked Sendable {
    private let lock = NSLock()
    private let total: Int
    private let interactive: Bool
    private var done = 0
    private var failed = 0

    init(total: Int, interactive: Bool) {
        self.total = total
        self.interactive = interactive
    }

    func tick(passed: Bool) {
        lock.lock()
        defer { lock.unlock() }
        done += 1
        if !passed { failed += 1 }
        if interactive {
            FileHandle.standardError.write("\r\(done)/\(total) seeds, \(failed) failed".data(using: .utf8)!)
        } else if done % max(1, total / 10) == 0 || done == total {
            FileHandle.standardError.write("\(done)/\(total) seeds, \(failed) failed\n".data(using: .utf8)!)
        }
    }

    func finish() {
        if interactive { FileHandle.standardError.write("\n".data(using: .utf8)!) }
    }
}
