import Foundation
import Testing
import WalleContracts
import WalleEnvironment
import WalleFuzz

@Suite("Core fuzzer")
struct CoreFuzzTests {
    @Test("200,000 fuzzed messages over 10 seeds: no trap, typed refusals, and real progress", arguments: 1...10)
    func noTrap(seed: Int) {
        let harness = CoreHarness(seed: UInt64(seed))
        harness.run(count: 20_000)
        #expect(harness.messages == 20_000)
        // Some of everything: refusals with a typed error, and messages that were accepted
        // and moved streams forward (the fuzzer reaches past the boundary).
        #expect(harness.refusals > 1_000)
        #expect(harness.refusals < harness.messages)
        let committed = harness.context.committed.values.map(\.id).max() ?? 0
        #expect(committed > 0, "no stream committed anything: the fuzzer stayed at the boundary")
    }

    #if DEBUG
        @Test(
            "The fuzzer finds the overflow the first fuzz script found, when it is planted back, and prints its frame")
        func findsPlantedOverflow() throws {
            let binary = try builtProduct("walle-fuzz")
            let process = Process()
            process.executableURL = binary
            process.arguments = ["core", "--seed", "1", "--messages", "200000", "--plant", "uncheckedMarkerBound"]
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = Pipe()
            try process.run()
            let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(
                process.terminationReason == .uncaughtSignal,
                "the planted overflow was not hit: \(output.suffix(500))")
            #expect(output.contains("the core trapped (signal "))
            let hex = try #require(output.split(separator: "\n").first { $0.hasPrefix("frame (hex): ") }?.dropFirst(13))
            #expect(hex.count > 20)
            #expect(output.contains("replay: walle-fuzz core --seed 1 --messages "))
        }
    #endif
}
