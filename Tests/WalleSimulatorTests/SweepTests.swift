import Foundation
import Testing
import WalleEnvironment
@testable import WalleSimulator

/// Seeds 1...200, each 10 simulated seconds, in 8 slices so they run in parallel.
@Suite("Sweep")
struct SweepTests {
    static let slices = Array(0..<8)

    @Test("200 seeds pass every oracle", arguments: slices)
    func sweep(slice: Int) {
        var options = RunOptions()
        options.duration = .seconds(10)
        var acknowledged = 0
        for seed in UInt64(1 + slice * 25)...UInt64(25 + slice * 25) {
            let result = Simulation.run(seed: seed, options: options)
            #expect(result.passed, "\(result.summary)\nreplay: \(Simulation.replayCommand(seed: seed, options: options))")
            acknowledged += result.putsAcknowledged
        }
        #expect(acknowledged > 0, "the workload must actually write")
    }

    @Test("Regression seeds still pass")
    func regressionSeeds() throws {
        let url = try #require(Bundle.module.url(forResource: "Seeds/regression", withExtension: "txt"))
        let seeds = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
            .compactMap { line -> UInt64? in
                let text = line.split(separator: "#")[0].trimmingCharacters(in: .whitespaces)
                return UInt64(text)
            }
        #expect(!seeds.isEmpty)
        for seed in seeds {
            let result = Simulation.run(seed: seed, options: RunOptions())
            #expect(result.passed, "\(result.summary)")
        }
    }
}

/// Each planted bug must be caught by the oracles within a bounded number of seeds.
@Suite("Planted bugs")
struct PlantedBugTests {
    @Test("Planted bugs are caught", arguments: [
        ("acknowledgeBeforeSync", "acknowledged-durability", 20),
        ("skipLeaseWait", "lease-exclusivity", 20),
        ("leaseMarginTooLarge", "lease-exclusivity", 100),
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
        #expect(caught.violation.invariant == invariant)
        print("planted \(bug): caught by \(caught.violation.invariant) at seed \(caught.seed)")
    }

    @Test("Unknown bug names are refused with the list of known ones")
    func unknownBug() {
        var options = RunOptions()
        #expect(throws: WalleError.self) { try options.plant(["noSuchBug"]) }
    }
}
