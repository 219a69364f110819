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
        // Measured on these seeds: no quiet run catches a writer up or expires a queued put.
        let faultOnly: [Probe] = [.writerCaughtUp, .queuedPutExpired]
        var reached = ProbeSet()
        for seed in UInt64(1)...4 {
            let result = Simulation.run(seed: seed, options: quiet)
            #expect(result.passed && result.probes.count > 0)
            for probe in faultOnly { #expect(!result.probes.contains(probe), "seed \(seed), no faults: \(probe.name)") }
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

@Suite("Targeted faults")
struct TargetedFaultTests {
    @Test("The swarm turns each point on in some seeds and off in others; the switch turns them all off")
    func swarm() {
        let profiles = (UInt64(1)...200).map { Profile.draw(seed: $0, options: RunOptions()).targeted }
        #expect(profiles.contains { $0.crashAfterReply } && profiles.contains { !$0.crashAfterReply })
        #expect(profiles.contains { $0.claimPhases } && profiles.contains { !$0.claimPhases })
        #expect(profiles.contains { $0.completionLoss } && profiles.contains { !$0.completionLoss })
        #expect(profiles.contains { $0.groupCommitStalls } && profiles.contains { !$0.groupCommitStalls })
        #expect(profiles.contains { $0.serverPausesPerMinute > 0 })
        #expect(profiles.contains { $0.serverPausesPerMinute == 0 })
        var off = RunOptions()
        off.targetedFaults = false
        #expect((UInt64(1)...50).allSatisfy { Profile.draw(seed: $0, options: off).targeted.isOff })
        var all = RunOptions()
        all.allTargetedFaults = true
        #expect((UInt64(1)...50).allSatisfy {
            let targeted = Profile.draw(seed: $0, options: all).targeted
            return targeted.crashAfterReply && targeted.claimPhases && targeted.completionLoss
                && targeted.groupCommitStalls && targeted.serverPausesPerMinute > 0
        })
    }

    /// The second process gets every option from `Simulation.arguments`: before, it missed the
    /// targeted ones and reported a different hash for the same run.
    @Test("run --check-determinism passes the targeted options to its second process")
    func checkDeterminismForwardsOptions() throws {
        let output = try runProcess(
            walleSimBinary(), ["run", "--seed", "1", "--duration", "3", "--all-targeted-faults", "--check-determinism"])
        #expect(output.contains(": same"), "\(output.suffix(200))")
    }

    /// Each point strikes at its moment (a crash right after a reply with writes unsynced, a
    /// claim phase, a completion, a group sync, a pause) and the cluster still passes.
    @Test("With every point on, every kind strikes in a few seeds and the seeds pass")
    func strikes() {
        var options = RunOptions()
        options.duration = .seconds(10)
        options.highLoad = false
        options.allTargetedFaults = true
        let kinds: [FaultKind] = [
            .targetedCrashAfterReply, .targetedClaimPhase, .targetedCompletionLoss, .targetedGroupCommitStall,
            .serverPause,
        ]
        var struck: Set<FaultKind> = []
        for seed in UInt64(1)...4 {
            let result = Simulation.run(seed: seed, options: options)
            let replay = Simulation.replayCommand(seed: seed, options: options)
            #expect(result.passed, "\(result.summary)\nreplay: \(replay)")
            struck.formUnion(kinds.filter { (result.faults[$0] ?? 0) > 0 })
        }
        #expect(struck == Set(kinds), "struck: \(struck.map(\.rawValue))")
    }
}
