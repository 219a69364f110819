import Foundation
import Testing
import WalleCore
@testable import WalleSimulator

@Suite("Coverage probes")
struct CoverageTests {
    @Test("Probe sets hold every probe in one word, and names are unique kebab case")
    func probeSets() {
        #expect(Probe.allCases.count <= UInt64.bitWidth)
        var set = ProbeSet()
        set.insert(.gapCommitted)
        set.insert(.writerFenced)
        set.insert(.gapCommitted)
        #expect(set.count == 2 && set.contains(.writerFenced) && !set.contains(.fastForwarded))
        #expect(Array(set) == [.gapCommitted, .writerFenced])
        let names = Probe.allCases.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(Probe.gapCommitted.name == "gap-committed")
        #expect(names.allSatisfy { $0.allSatisfy { $0.isLowercase || $0 == "-" } })
    }

    /// The check can fail: a run without faults takes none of the branches only faults open,
    /// and faulty runs take them. The probes do not enter the trace, so hashes stay as they were.
    @Test("Faults open branches a quiet run never takes; probes leave the trace hash alone")
    func faultsReachMore() {
        var quiet = RunOptions()
        quiet.duration = .seconds(5)
        quiet.faults = false
        var faulty = RunOptions()
        faulty.duration = .seconds(5)
        faulty.highLoad = false
        let faultOnly: [Probe] = [.gapCommitted, .fastForwarded, .writerFenced]
        var reached = ProbeSet()
        for seed in UInt64(1)...4 {
            let result = Simulation.run(seed: seed, options: quiet)
            #expect(result.passed && result.probes.count > 0)
            #expect(!result.probes.contains(.gapCommitted), "seed \(seed) gap-committed without faults")
            let again = Simulation.run(seed: seed, options: faulty)
            #expect(again.traceHash == Simulation.run(seed: seed, options: faulty).traceHash)
            reached.formUnion(again.probes)
        }
        for probe in faultOnly { #expect(reached.contains(probe), "no faulty seed reached \(probe.name)") }
    }

    @Test("walle-sim sweep --require-coverage fails, naming what it missed")
    func requireCoverage() throws {
        let output = try runProcess(
            walleSimBinary(),
            ["sweep", "--seeds", "2", "--jobs", "1", "--duration", "3", "--no-faults", "--require-coverage"],
            expectStatus: 4)
        #expect(output.contains("coverage: MISSED must-reach:"))
        #expect(output.contains("gap-committed"))
    }
}
