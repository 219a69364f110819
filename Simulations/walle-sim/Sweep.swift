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
    @Option(help: "Run only shard i of n (1-based), e.g. 2/4, for CI matrices.") var shard: String?
    @Option(help: "Write a JUnit XML report to this file.") var junit: String?
    @Flag(help: "Stop starting new seeds after the first failure (prints the lowest failing seed).")
    var failFast = false
    @OptionGroup var simulation: SimulationOptions

    func run() throws {
        guard seeds > 0 && seeds <= 10_000_000 else { throw ValidationError("--seeds must be between 1 and 10000000") }
        guard jobs > 0 && jobs <= 256 else { throw ValidationError("--jobs must be between 1 and 256") }
        let options = try simulation.runOptions()
        let seedList = try shardSeeds()
        let progress = Progress(total: seedList.count, interactive: isatty(STDERR_FILENO) == 1)
        let start = DispatchTime.now()
        let results = SweepRunner.run(seeds: seedList, jobs: jobs, options: options, failFast: failFast) {
            progress.tick(passed: $0.passed)
        }
        let wallSeconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        progress.finish()
        printSummary(results, wallSeconds: wallSeconds, options: options)
        if let junit { try writeJUnit(results, to: junit, options: options) }
        if let first = results.first(where: { !$0.passed }) {
            print("first failing seed: \(first.seed) (\(failureKind(first)))")
        }
        if results.contains(where: { $0.violation != nil }) { throw ExitCode(ExitStatus.violation) }
        if results.contains(where: { $0.stuck != nil }) { throw ExitCode(ExitStatus.stuck) }
    }

    func shardSeeds() throws -> [UInt64] {
        let all = (0..<UInt64(seeds)).map { from + $0 }
        guard let shard else { return all }
        let parts = shard.split(separator: "/").compactMap { Int($0) }
        guard parts.count == 2, parts[1] > 0, parts[0] >= 1, parts[0] <= parts[1] else {
            throw ValidationError("--shard must look like i/n with 1 <= i <= n, got \"\(shard)\"")
        }
        return all.enumerated().filter { $0.offset % parts[1] == parts[0] - 1 }.map(\.element)
    }

    func printSummary(_ results: [RunResult], wallSeconds: Double, options: RunOptions) {
        let failures = results.filter { !$0.passed }
        let simulatedSeconds = results.reduce(0.0) { $0 + Double($1.simulatedDuration.nanoseconds) / 1e9 }
        let events = results.reduce(UInt64(0)) { $0 + $1.events }
        let converged = results.compactMap(\.convergence).map { Double($0.nanoseconds) / 1e9 }.sorted()
        print("seeds:                  \(results.count) (from \(from)\(shard.map { ", shard \($0)" } ?? "")), jobs \(jobs)")
        print("passed / failed:        \(results.count - failures.count) / \(failures.count)")
        print("claims, acked puts:     \(results.reduce(0) { $0 + $1.claims }), \(results.reduce(0) { $0 + $1.putsAcknowledged })")
        print("events:                 \(events)")
        print("wall time:              \(format(wallSeconds)) s")
        if let peak = peakResidentMegabytes() { print("peak memory:            \(peak) MB resident") }
        print("seeds per minute:       \(format(Double(results.count) / wallSeconds * 60))")
        print("simulated s per wall s: \(format(simulatedSeconds / wallSeconds)) (all jobs), \(format(simulatedSeconds / wallSeconds / Double(jobs))) per job")
        if !converged.isEmpty {
            print("convergence after heal: median \(format(converged[converged.count / 2])) s, max \(format(converged.last!)) s")
        }
        print("fault kinds exercised (seeds with it / times):")
        for kind in FaultKind.allCases {
            let seedsWith = results.filter { ($0.faults[kind] ?? 0) > 0 }.count
            let total = results.reduce(0) { $0 + ($1.faults[kind] ?? 0) }
            print("  \(kind.rawValue.padding(toLength: 48, withPad: " ", startingAt: 0)) \(seedsWith) / \(total)")
        }
        var byKind: [String: Int] = [:]
        for failure in failures { byKind[failureKind(failure), default: 0] += 1 }
        for (kind, count) in byKind.sorted(by: { $0.key < $1.key }) { print("failures: \(kind): \(count)") }
        for failure in failures.prefix(20) {
            print("FAIL seed \(failure.seed): \(failure.violation.map(\.description) ?? "liveness: \(failure.stuck!)")")
            print("  replay: \(Simulation.replayCommand(seed: failure.seed, options: options))")
        }
    }

    func failureKind(_ result: RunResult) -> String {
        result.violation?.invariant ?? "liveness"
    }

    func writeJUnit(_ results: [RunResult], to path: String, options: RunOptions) throws {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        let failures = results.filter { !$0.passed }.count
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuite name=\"walle-sim sweep\" tests=\"\(results.count)\" failures=\(quote(failures))>\n"
        for result in results {
            xml += "  <testcase classname=\"walle-sim\" name=\"seed \(result.seed)\" time=\"0\">\n"
            if !result.passed {
                let message = result.violation.map(\.description) ?? "liveness: \(result.stuck!)"
                xml += "    <failure type=\"\(escape(failureKind(result)))\" message=\"\(escape(message))\">"
                xml += escape(Simulation.replayCommand(seed: result.seed, options: options)) + "</failure>\n"
            }
            xml += "  </testcase>\n"
        }
        xml += "</testsuite>\n"
        try xml.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func quote(_ value: Int) -> String { "\"\(value)\"" }
}

func format(_ value: Double) -> String { String(format: "%.1f", value) }

/// The process's peak resident set (VmHWM in /proc/self/status), in MB: a sweep's memory must
/// not grow with its seed count.
func peakResidentMegabytes() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
        let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
    else { return nil }
    return kilobytes / 1024
}

/// Runs seeds on `jobs` threads; results come back in seed order whatever the finishing order.
enum SweepRunner {
    static func run(
        seeds: [UInt64], jobs: Int, options: RunOptions, failFast: Bool = false,
        onResult: @escaping @Sendable (RunResult) -> Void
    ) -> [RunResult] {
        let box = ResultBox(count: seeds.count)
        let next = Counter()
        DispatchQueue.concurrentPerform(iterations: min(jobs, seeds.count)) { _ in
            while let index = next.take(below: seeds.count) {
                let result = Simulation.run(seed: seeds[index], options: options)
                box.set(index, result)
                onResult(result)
                if failFast && !result.passed { next.stop() }
            }
        }
        return box.results()
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    private var stopped = false

    func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
    }

    func take(below limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < limit, !stopped else { return nil }
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

    /// The seeds that ran, in seed order (a fail-fast sweep leaves the rest out).
    func results() -> [RunResult] { storage.compactMap { $0 } }
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
