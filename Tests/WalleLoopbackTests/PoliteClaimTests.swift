import Foundation
import Testing
import WalleContracts

#if canImport(Glibc)
    import Glibc
#endif

/// `walle put --wait`: WaitAndClaim from the built executables.
extension LoopbackTests {
    @Test("put --wait leaves a live writer alone, and claims once that writer has stopped")
    func politeClaim() throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let list = ["--cluster", cluster.serverList]
        #expect(try run("walle", ["create-stream", "/polite"] + list).status == 0)
        // The first writer keeps its stdin open, and so its lease alive, until the test closes it.
        let first = Process()
        first.executableURL = try builtProduct("walle")
        first.arguments = ["put", "/polite", "--lease", "1000"] + list
        let input = Pipe()
        let output = cluster.directory.appendingPathComponent("first.out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        first.standardInput = input
        first.standardOutput = try FileHandle(forWritingTo: output)
        try first.run()
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        input.fileHandleForWriting.write(Data("a1\na2\n".utf8))
        try waitFor("the first writer's acks") {
            (try? String(contentsOf: output, encoding: .utf8))?.contains("acked 2") ?? false
        }

        // A polite writer gives up after 3 s: the first one renewed its lease all along.
        let started = Date()
        let refused = try run("walle", ["put", "/polite", "b0", "--wait", "3"] + list)
        #expect(refused.status != 0 && !refused.output.contains("acked"), "polite put: \(refused.output)")
        #expect(Date().timeIntervalSince(started) >= 3, "it waited its patience out")
        input.fileHandleForWriting.write(Data("a3\n".utf8))
        try waitFor("the first writer, still the writer, acknowledges a3") {
            (try? String(contentsOf: output, encoding: .utf8))?.contains("acked 3") ?? false
        }

        // The first writer finishes; once its lease has run out the polite one claims.
        try input.fileHandleForWriting.close()
        first.waitUntilExit()
        #expect(first.terminationStatus == 0, "the first writer was not fenced")
        let second = try run("walle", ["put", "/polite", "b1", "--wait", "20"] + list)
        #expect(second.status == 0 && second.output == "acked 4\n", "second writer: \(second.output)")
        let read = try run("walle", ["read", "/polite"] + list)
        let texts = read.output.split(separator: "\n").map { $0.split(separator: "\t").last.map(String.init) ?? "" }
        #expect(texts == ["a1", "a2", "a3", "b1"], "read: \(read.output)")
    }
}
