import Foundation
import Testing
import WalleCore
import WalleEnvironment
@testable import WalleSimulator

/// Seeds 1...200, each 10 simulated seconds, in 8 slices so they run in parallel. Limits are
/// drawn; the high load has its own test (in a debug build one such seed costs half a minute).
@Suite("Sweep")
struct SweepTests {
    static let slices = Array(0..<8)

    @Test("200 seeds pass every oracle", arguments: slices)
    func sweep(slice: Int) {
        var options = RunOptions()
        options.duration = .seconds(10)
        options.highLoad = false
        var acknowledged = 0
        for seed in UInt64(1 + slice * 25)...UInt64(25 + slice * 25) {
            let result = Simulation.run(seed: seed, options: options)
            #expect(
                result.passed, "\(result.summary)\nreplay: \(Simulation.replayCommand(seed: seed, options: options))")
            acknowledged += result.putsAcknowledged
        }
        #expect(acknowledged > 0, "the workload must actually write")
    }

    @Test("The high load with drawn limits: the first 4 such seeds pass")
    func highLoad() {
        var options = RunOptions()
        options.duration = .seconds(10)
        let seeds = (UInt64(1)...200).filter { Profile.draw(seed: $0, options: options).load.isHigh }.prefix(4)
        #expect(seeds.count == 4)
        var exhausted: Set<Refusal> = []
        for seed in seeds {
            let result = Simulation.run(seed: seed, options: options)
            #expect(
                result.passed, "\(result.summary)\nreplay: \(Simulation.replayCommand(seed: seed, options: options))")
            exhausted.formUnion(result.refusals.keys.filter { !$0.isTimeout })
        }
        #expect(!exhausted.isEmpty, "a high load reaches some limit")
    }

    /// `Seeds/regression.txt`: a seed per line, `high` after it when it needs the high load
    /// (the others run without, which a debug build needs to stay quick), `#` comments.
    static let regressionSeeds: [(seed: UInt64, highLoad: Bool)] = {
        guard let url = Bundle.module.url(forResource: "Seeds/regression", withExtension: "txt"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let words = line.split(separator: "#")[0].split(separator: " ")
            guard let first = words.first, let seed = UInt64(first) else { return nil }
            return (seed, words.dropFirst().contains("high"))
        }
    }()

    @Test("Regression seeds still pass", arguments: regressionSeeds.map(\.seed))
    func regressionSeed(seed: UInt64) throws {
        var options = RunOptions()
        options.highLoad = Self.regressionSeeds.first { $0.seed == seed }?.highLoad ?? false
        let result = Simulation.run(seed: seed, options: options)
        #expect(result.passed, "\(result.summary)\nreplay: \(Simulation.replayCommand(seed: seed, options: options))")
    }

    @Test("The regression list is there")
    func regressionListLoads() { #expect(Self.regressionSeeds.count >= 10) }
}

#if DEBUG
/// Each planted bug must be caught by the oracles within a bounded number of seeds. The seam
/// exists in debug builds only (release builds compile it out and refuse --plant).
@Suite("Planted bugs")
struct PlantedBugTests {
    @Test("Planted bugs are caught", arguments: [
        ("acknowledgeBeforeSync", "acknowledged-durability", 20),
        ("skipLeaseWait", "lease-exclusivity", 20),
        ("leaseMarginTooLarge", "lease-exclusivity", 100),
        // Hostile clients forge markers; a member that acts on one either answers OK where it
        // must refuse, or drops acknowledged entries that a later claim then misses.
        ("acceptForgedMarker", "hostile-acknowledged|writer-fencing", 20),
    ])
    func caught(bug: String, invariant: String, seedsMax: Int) throws {
        var options = RunOptions()
        options.duration = .seconds(30)
        try options.plant([bug])
        var found: (seed: UInt64, violation: Violation)?
        for seed in UInt64(1)...UInt64(seedsMax) {
            let result = Simulation.run(seed: seed, options: options)
            if let violation = result.violation {
                found = (seed, violation)
                break
            }
        }
        let caught = try #require(found, "\(bug) survived \(seedsMax) seeds")
        #expect(invariant.split(separator: "|").contains { $0 == caught.violation.invariant.rawValue })
        print("planted \(bug): caught by \(caught.violation.invariant) at seed \(caught.seed)")
    }

    @Test("Unknown bug names are refused with the list of known ones")
    func unknownBug() {
        var options = RunOptions()
        #expect(throws: WalleError.self) { try options.plant(["noSuchBug"]) }
    }
}
#endif

@Suite("Faults")
struct FaultTests {
    @Test("Node replacement under load: the new node takes live writes at once and ends identical")
    func replacementUnderLoad() throws {
        var options = RunOptions()
        options.duration = .seconds(20)
        options.faults = false
        options.replaceServerAt = .seconds(12)
        var replaced = 0
        var acknowledgedWhileBackfilling = 0
        for seed in UInt64(1)...6 {
            let result = Simulation.run(seed: seed, options: options)
            // Convergence includes every member of every stream, the new one too, holding
            // the same entries 1...C with no gap.
            #expect(result.passed, "\(result.summary)")
            guard result.faults[.nodeReplacement] == 1 else { continue }
            replaced += 1
            #expect(result.convergence != nil)
            // A five-server cluster may wipe a server that holds only the root stream.
            guard result.joinedStreams > 0 else { continue }
            acknowledgedWhileBackfilling += result.liveAcksDuringBackfill
            let firstAck = try #require(
                result.firstLiveAckAfterJoin, "seed \(seed): the new node never took a live write")
            #expect(firstAck < .seconds(15), "seed \(seed): first live write \(firstAck) after joining")
            print("replacement seed \(seed): first live write \(firstAck.formattedMilliseconds) after the join")
        }
        #expect(replaced == 6, "every seed replaces one server")
        // Joining at the tail: somewhere the new node takes live writes while its gap is
        // still being backfilled.
        #expect(acknowledgedWhileBackfilling > 0)
        print("replacement: \(acknowledgedWhileBackfilling) live puts acknowledged by new nodes while backfilling")
    }

    @Test("Beyond the time model: write safety holds; lease overlaps are reported, not failures")
    func beyondModel() {
        var options = RunOptions()
        options.duration = .seconds(15)
        options.beyondModel = true
        var overlaps = 0
        for seed in UInt64(1)...12 {
            let result = Simulation.run(seed: seed, options: options)
            #expect(result.violation == nil, "\(result.summary)")
            overlaps += result.faults[.leaseViolationBeyondModel] ?? 0
        }
        print("beyond the model: \(overlaps) expected lease overlaps in 12 seeds")
    }

    @Test("Every fault kind runs somewhere in 60 seeds")
    func everyFaultKind() {
        var options = RunOptions()
        options.duration = .seconds(10)
        options.highLoad = false
        var seen: Set<FaultKind> = []
        var refusals: Set<Refusal> = []
        for seed in UInt64(1)...60 {
            let result = Simulation.run(seed: seed, options: options)
            #expect(result.passed, "\(result.summary)")
            seen.formUnion(result.faults.filter { $0.value > 0 }.keys)
            refusals.formUnion(result.refusals.keys)
        }
        // Lease overlaps need --beyond-model.
        let expected = Set(FaultKind.allCases).subtracting([.leaseViolationBeyondModel])
        #expect(expected.isSubset(of: seen), "never ran: \(expected.subtracting(seen).map(\.rawValue).sorted())")
        // Swarm-drawn limits: the refusal paths of full queues and tables run too.
        let exhausted = refusals.filter { !$0.isTimeout }
        #expect(exhausted.count >= 3, "full tables and queues reached: \(exhausted.map(\.rawValue).sorted())")
    }
}
