import Foundation
import Testing

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
        let first = try WriterProcess(cluster, "/polite", name: "first")
        defer { first.kill() }
        first.write("a1\na2\n")
        try first.waitForAck(2)

        // A polite writer gives up after 3 s: the first one renewed its lease all along.
        let started = Date()
        let refused = try run("walle", ["put", "/polite", "b0", "--wait", "3"] + list)
        #expect(refused.status != 0 && !refused.output.contains("acked"), "polite put: \(refused.output)")
        #expect(Date().timeIntervalSince(started) >= 3, "it waited its patience out")
        first.write("a3\n")
        try first.waitForAck(3)

        // The first writer finishes; once its lease has run out the polite one claims.
        try first.input.fileHandleForWriting.close()
        first.process.waitUntilExit()
        #expect(first.process.terminationStatus == 0, "the first writer was not fenced")
        let second = try run("walle", ["put", "/polite", "b1", "--wait", "20"] + list)
        #expect(second.status == 0 && second.output == "acked 4\n", "second writer: \(second.output)")
        let read = try run("walle", ["read", "/polite"] + list)
        let texts = read.output.split(separator: "\n").map { $0.split(separator: "\t").last.map(String.init) ?? "" }
        #expect(texts == ["a1", "a2", "a3", "b1"], "read: \(read.output)")
    }
}
