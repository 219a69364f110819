import ArgumentParser
import Dispatch
import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import WalleCore
import WalleSimulator

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run many seeds in parallel; print a summary and the replay command of every failure.")

    @Option(help: "How many seeds to run.") var seeds: Int = 100
    @Option(help: "The first seed.") var from: UInt64 = 1
    @Option(help: "Seeds run at once (default: every core).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Run only shard i of n (1-based), e.g. 2/4, for CI matrices.") var shard: String?
    @Option(help: "Write a JUnit XML report to this file.") var junit: String?
    @Flag(help: "Stop starting new seeds after the first failure (prints the lowest failing seed).")
    var failFast = false
    @Flag(help: "Fail (exit 4) when a must-reach coverage probe was reached by no seed.")
    var requireCoverage = false
    @OptionGroup var simulation: SimulationOptions

    func run() throws {
        guard seeds > 0 && seeds <= 10_000_000 else { throw ValidationError("--seeds must be between 1 and 10000000") }
        guard jobs > 0 && jobs <= 256 else { throw ValidationError("--jobs must be between 1 and 256") }
        let options = try simulation.runOptions()
        let seedList = try shardSeeds()
        keepLargeBuffersMapped()
        let progress = Progress(total: seedList.count, interactive: isatty(STDERR_FILENO) == 1)
        let tally = SweepTally()
        let start = DispatchTime.now()
        let (ran, checkpoint) = SweepRunner.run(
            seeds: seedList, jobs: jobs, options: options, failFast: failFast
        ) { result in
            tally.add(result)
            progress.tick(passed: result.passed)
        }
        let wallSeconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        progress.finish()
        printSummary(tally, wallSeconds: wallSeconds, options: options, checkpointMegabytes: checkpoint)
        if let junit { try writeJUnit(tally, seeds: seedList, ran: ran, to: junit, options: options) }
        if let first = tally.failures.first {
            print("first failing seed: \(first.seed) (\(first.kind))")
        }
        if tally.violations > 0 { throw ExitCode(ExitStatus.violation) }
        if tally.failed > 0 { throw ExitCode(ExitStatus.stuck) }
        if requireCoverage && !tally.missedMustReach.isEmpty { throw ExitCode(ExitStatus.coverage) }
    }

    func shardSeeds() throws -> SeedList {
        guard let shard else { return SeedList(first: from, stride: 1, count: seeds) }
        let parts = shard.split(separator: "/").compactMap { Int($0) }
        guard parts.count == 2, parts[1] > 0, parts[0] >= 1, parts[0] <= parts[1] else {
            throw ValidationError("--shard must look like i/n with 1 <= i <= n, got \"\(shard)\"")
        }
        let (index, count) = (parts[0], parts[1])
        let inShard = seeds >= index ? (seeds - index) / count + 1 : 0
        return SeedList(first: from + UInt64(index - 1), stride: UInt64(count), count: inShard)
    }

    func printSummary(_ tally: SweepTally, wallSeconds: Double, options: RunOptions, checkpointMegabytes: Int?) {
        print(
            "seeds:                  \(tally.seedsRun) (from \(from)\(shard.map { ", shard \($0)" } ?? "")), "
                + "jobs \(jobs)")
        print("passed / failed:        \(tally.seedsRun - tally.failed) / \(tally.failed)")
        print("claims, acked puts:     \(tally.claims), \(tally.putsAcknowledged)")
        print("events:                 \(tally.events)")
        print("wall time:              \(format(wallSeconds)) s")
        if let peak = peakResidentMegabytes(), let now = residentMegabytes() {
            print("peak memory:            \(peak) MB resident (\(now) MB at the end)")
            if let checkpoint = checkpointMegabytes, checkpoint > 0 {
                let change = Double(now - checkpoint) / Double(checkpoint) * 100
                print(
                    "memory after \(SweepRunner.memoryCheckpointSeeds) seeds:  \(checkpoint) MB resident; "
                        + "the end is \(change >= 0 ? "+" : "")\(format(change))% from it")
            }
        }
        print("seeds per minute:       \(format(Double(tally.seedsRun) / wallSeconds * 60))")
        print(
            "simulated s per wall s: \(format(tally.simulatedSeconds / wallSeconds)) (all jobs), "
                + "\(format(tally.simulatedSeconds / wallSeconds / Double(jobs))) per job")
        if let median = tally.convergenceMedianSeconds {
            print("convergence after heal: median \(format(median)) s, max \(format(tally.convergenceMaxSeconds)) s")
        }
        print("drawn limits, high load: \(tally.drawnLimitSeeds) seeds, \(tally.highLoadSeeds) seeds")
        print("long runs (120 s+):      \(tally.longRunSeeds) seeds, the longest \(tally.longestRunSeconds) s")
        print("fault kinds exercised (seeds with it / times):")
        for kind in FaultKind.allCases {
            let counts = tally.faults[kind] ?? SweepTally.Count()
            print(
                "  \(kind.rawValue.padding(toLength: 48, withPad: " ", startingAt: 0)) "
                    + "\(counts.seeds) / \(counts.times)")
        }
        print("refusals for load or time, by bound (seeds with it / times):")
        for limit in Refusal.allCases {
            let counts = tally.refusals[limit] ?? SweepTally.Count()
            print(
                "  \(limit.rawValue.padding(toLength: 48, withPad: " ", startingAt: 0)) "
                    + "\(counts.seeds) / \(counts.times)")
        }
        printCoverage(tally)
        for (kind, count) in tally.failureKinds.sorted(by: { $0.key < $1.key }) { print("failures: \(kind): \(count)") }
        for failure in tally.failures {
            print("FAIL seed \(failure.seed): \(failure.message)")
            print("  replay: \(Simulation.replayCommand(seed: failure.seed, options: options))")
        }
    }

    /// Which subtle branches the sweep took (`Probe`): seeds that reached each, then the
    /// unreached by name, must-reach first.
    func printCoverage(_ tally: SweepTally) {
        let reached = Probe.allCases.filter { tally.probeSeeds[$0.rawValue] > 0 }
        print("coverage: \(reached.count)/\(Probe.allCases.count) probes reached (seeds with it; * must reach):")
        for probe in Probe.allCases {
            let mark = probe.mustReach ? "*" : " "
            print("  \(mark) \(probe.name.padding(toLength: 46, withPad: " ", startingAt: 0)) "
                + "\(tally.probeSeeds[probe.rawValue])")
        }
        let missed = tally.missedMustReach
        let rare = Probe.allCases.filter { !$0.mustReach && tally.probeSeeds[$0.rawValue] == 0 }
        if !missed.isEmpty { print("coverage: MISSED must-reach: \(missed.map(\.name).joined(separator: ", "))") }
        if !rare.isEmpty { print("coverage: unreached (not required): \(rare.map(\.name).joined(separator: ", "))") }
    }

    /// Written as it goes: the report of a 100k-seed sweep is never in memory at once.
    func writeJUnit(_ tally: SweepTally, seeds: SeedList, ran: Int, to path: String, options: RunOptions) throws {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let file = FileHandle(forWritingAtPath: path)
        else {
            throw ValidationError("cannot write the JUnit report to \(path)")
        }
        defer { try? file.close() }
        let failuresBySeed = Dictionary(
            tally.allFailures.map { ($0.seed, $0) }, uniquingKeysWith: { first, _ in first })
        var chunk = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        chunk += "<testsuite name=\"walle-sim sweep\" tests=\"\(ran)\" failures=\(quote(tally.failed))>\n"
        for index in 0..<ran {
            let seed = seeds[index]
            chunk += "  <testcase classname=\"walle-sim\" name=\"seed \(seed)\" time=\"0\">\n"
            if let failure = failuresBySeed[seed] {
                chunk += "    <failure type=\"\(escape(failure.kind))\" message=\"\(escape(failure.message))\">"
                chunk += escape(Simulation.replayCommand(seed: seed, options: options)) + "</failure>\n"
            }
            chunk += "  </testcase>\n"
            if chunk.utf8.count > 1 << 16 {
                file.write(Data(chunk.utf8))
                chunk = ""
            }
        }
        chunk += "</testsuite>\n"
        file.write(Data(chunk.utf8))
    }

    func quote(_ value: Int) -> String { "\"\(value)\"" }
}

func format(_ value: Double) -> String { String(format: "%.1f", value) }

/// The process's peak resident set (VmHWM in /proc/self/status), in MB: a sweep's memory must
/// not grow with its seed count.
func peakResidentMegabytes() -> Int? { procStatusMegabytes("VmHWM:") }

/// Hands the heap's free pages back to the system after a seed. Without it glibc keeps what a
/// peak needed: one long seed (600 simulated seconds) left a 20,000-seed sweep at 190 MB at
/// its end against 113 MB for 1,000 seeds, with nothing live, and resident memory then says
/// nothing about growth per seed. A few milliseconds per seed of hundreds.
func releaseFreedMemory() {
    #if canImport(Glibc)
        if let trim = mallocTrim { _ = trim(0) }
    #endif
}

/// Keeps large buffers (a seed's simulated disks) in their own mappings, returned whole when
/// freed. glibc otherwise raises its mmap threshold each time such a buffer is freed, up to
/// 32 MiB, and later ones then come from the heap, where a few small live blocks among
/// them keep whole pages resident after the seed is gone.
func keepLargeBuffersMapped() {
    #if canImport(Glibc)
        let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD in malloc.h
        if let option = mallocOption { _ = option(mmapThreshold, 256 << 10) }
    #endif
}

#if canImport(Glibc)
    // Looked up at run time: Swift's Glibc module leaves out malloc.h.
    private let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    }()
    private let mallocOption: (@convention(c) (Int32, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
    }()
#endif

/// The process's resident set now (VmRSS), in MB.
func residentMegabytes() -> Int? { procStatusMegabytes("VmRSS:") }

private func procStatusMegabytes(_ field: String) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
        let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
    else { return nil }
    return kilobytes / 1024
}

/// The seeds of a sweep or of one shard, computed rather than listed.
struct SeedList: Sendable {
    var first: UInt64
    var stride: UInt64
    var count: Int

    subscript(index: Int) -> UInt64 { first + UInt64(index) * stride }
}

/// What a sweep keeps of its seeds: sums, counts, a histogram of convergence times and the
/// failures. Nothing in it grows with the number of passing seeds: the histogram has one cell
/// per 100 ms up to the liveness timeout, and refusal and fault kinds are fixed sets. Each
/// failure keeps its seed, kind and a message of at most `messageCharactersMax` characters (the JUnit
/// report names every failing seed), and nothing of its world.
final class SweepTally: @unchecked Sendable {
    struct Count {
        var seeds = 0
        var times = 0
    }

    struct Failure {
        static let messageCharactersMax = 300
        var seed: UInt64
        /// The invariant violated, or "liveness".
        var kind: String
        var message: String

        init(_ result: RunResult) {
            seed = result.seed
            kind = result.violation?.invariant.rawValue ?? "liveness"
            let full = result.violation.map(\.description) ?? "liveness: \(result.stuck ?? "did not converge")"
            message = full.count <= Self.messageCharactersMax
                ? full : String(full.prefix(Self.messageCharactersMax)) + "…"
        }
    }

    static let failuresPrintedMax = 20
    static let convergenceBucketSeconds = 0.1

    private let lock = NSLock()
    private(set) var seedsRun = 0
    private(set) var failed = 0
    private(set) var violations = 0
    private(set) var claims = 0
    private(set) var putsAcknowledged = 0
    private(set) var events: UInt64 = 0
    private(set) var simulatedSeconds = 0.0
    private(set) var drawnLimitSeeds = 0
    private(set) var highLoadSeeds = 0
    private(set) var longRunSeeds = 0
    private(set) var longestRunSeconds: Int64 = 0
    private(set) var faults: [FaultKind: Count] = [:]
    private(set) var refusals: [Refusal: Count] = [:]
    private(set) var failureKinds: [String: Int] = [:]
    /// Seeds that reached each probe, by `Probe.rawValue`.
    private(set) var probeSeeds = [Int](repeating: 0, count: Probe.allCases.count)
    private(set) var allFailures: [Failure] = []
    private var convergenceBuckets: [Int: Int] = [:]
    private var convergenceCount = 0
    private(set) var convergenceMaxSeconds = 0.0

    /// The lowest-seeded failures, at most `failuresPrintedMax`, in seed order.
    var failures: [Failure] { Array(allFailures.sorted { $0.seed < $1.seed }.prefix(Self.failuresPrintedMax)) }

    func add(_ result: RunResult) {
        lock.lock()
        defer { lock.unlock() }
        seedsRun += 1
        claims += result.claims
        putsAcknowledged += result.putsAcknowledged
        events += result.events
        simulatedSeconds += Double(result.simulatedDuration.nanoseconds) / 1e9
        if !result.profile.limits.drawn.isEmpty { drawnLimitSeeds += 1 }
        if result.profile.load.isHigh { highLoadSeeds += 1 }
        let seconds = result.profile.duration.milliseconds / 1000
        if seconds >= Int64(Profile.longRunSeconds.lowerBound) { longRunSeeds += 1 }
        longestRunSeconds = max(longestRunSeconds, seconds)
        for (kind, times) in result.faults where times > 0 {
            faults[kind, default: Count()].seeds += 1
            faults[kind, default: Count()].times += times
        }
        for probe in result.probes { probeSeeds[probe.rawValue] += 1 }
        for (what, times) in result.refusals {
            refusals[what, default: Count()].seeds += 1
            refusals[what, default: Count()].times += times
        }
        if let convergence = result.convergence {
            let seconds = Double(convergence.nanoseconds) / 1e9
            convergenceBuckets[Int(seconds / Self.convergenceBucketSeconds), default: 0] += 1
            convergenceCount += 1
            convergenceMaxSeconds = max(convergenceMaxSeconds, seconds)
        }
        guard !result.passed else { return }
        failed += 1
        if result.violation != nil { violations += 1 }
        let failure = Failure(result)
        failureKinds[failure.kind, default: 0] += 1
        allFailures.append(failure)
    }

    /// Must-reach probes no seed reached.
    var missedMustReach: [Probe] { Probe.allCases.filter { $0.mustReach && probeSeeds[$0.rawValue] == 0 } }

    /// The median convergence time, to the histogram's 100 ms.
    var convergenceMedianSeconds: Double? {
        guard convergenceCount > 0 else { return nil }
        var seen = 0
        for bucket in convergenceBuckets.keys.sorted() {
            seen += convergenceBuckets[bucket]!
            if seen * 2 > convergenceCount { return Double(bucket) * Self.convergenceBucketSeconds }
        }
        return nil
    }
}

/// Runs seeds on `jobs` threads and hands each result to `onResult` as it finishes; keeps
/// none. Returns how many seeds ran (all of them, or a prefix after a fail-fast stop) and the
/// resident memory read at the checkpoint barrier, if the sweep reached it.
enum SweepRunner {
    /// After this many seeds the sweep reads its resident memory; the end of a long sweep is held
    /// against that reading (it must not grow with the seed count).
    static let memoryCheckpointSeeds = 1000

    static func run(
        seeds: SeedList, jobs: Int, options: RunOptions, failFast: Bool = false,
        onResult: @escaping @Sendable (RunResult) -> Void
    ) -> (ran: Int, checkpointMegabytes: Int?) {
        let next = Counter(barrier: memoryCheckpointSeeds) { residentMegabytes() }
        DispatchQueue.concurrentPerform(iterations: max(1, min(jobs, seeds.count))) { _ in
            while let index = next.take(below: seeds.count) {
                let result = Simulation.run(seed: seeds[index], options: options)
                releaseFreedMemory()
                onResult(result)
                if failFast && !result.passed { next.stop() }
                next.finished()
            }
        }
        return (next.taken, next.barrierReading)
    }
}

/// Hands out seed indexes. No index at or past `barrier` is handed out until every index below
/// it has finished, and then `read` runs once: a reading taken there has no seed live, the same
/// as the reading at the sweep's end, so the two compare like with like. (Read while another
/// job's seed was live, the checkpoint said 31 MB and the end 23 MB of a 20,000-seed sweep.) The
/// wait costs at most one seed's run per job, once per sweep.
final class Counter: @unchecked Sendable {
    private let condition = NSCondition()
    private var value = 0
    private var done = 0
    private var stopped = false
    private let barrier: Int
    private let read: () -> Int?
    private var reading: Int?

    init(barrier: Int, read: @escaping () -> Int?) {
        precondition(barrier > 0)
        self.barrier = barrier
        self.read = read
    }

    /// How many indexes were handed out (each one ran to its end).
    var taken: Int {
        condition.lock()
        defer { condition.unlock() }
        return value
    }

    /// The reading at the barrier, or nil if the sweep had fewer seeds than the barrier.
    var barrierReading: Int? {
        condition.lock()
        defer { condition.unlock() }
        return reading
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    func take(below limit: Int) -> Int? {
        condition.lock()
        defer { condition.unlock() }
        // Bounded: each wait ends when a live seed finishes, and at most `jobs - 1` are live.
        while value == barrier && done < barrier && !stopped { condition.wait() }
        guard value < limit, !stopped else { return nil }
        value += 1
        return value - 1
    }

    /// A handed-out index has finished (its memory released).
    func finished() {
        condition.lock()
        defer { condition.unlock() }
        done += 1
        assert(done <= value)
        if done == barrier {
            reading = read()
            condition.broadcast()
        }
    }
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
            // With the resident memory now, so one long sweep shows whether it grows.
            let memory = residentMegabytes().map { ", \($0) MB resident" } ?? ""
            FileHandle.standardError.write("\(done)/\(total) seeds, \(failed) failed\(memory)\n".data(using: .utf8)!)
        }
    }

    func finish() {
        if interactive { FileHandle.standardError.write("\n".data(using: .utf8)!) }
    }
}
