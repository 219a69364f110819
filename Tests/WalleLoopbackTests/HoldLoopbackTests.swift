import Foundation
import Testing
import WalleContracts

#if canImport(Glibc)
    import Glibc
#endif

/// `walle hold` and `walle put --no-claim`: scripts append through one held writer.
@Suite("Holding a writer on loopback", .serialized)
struct HoldLoopbackTests {
    @Test("Puts with --no-claim share the held writer; another stream is refused; a fenced holder ends with 1")
    func holdAndPut() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let list = ["--cluster", cluster.serverList]
        #expect(try run("walle", ["create-stream", "/held"] + list).status == 0)
        let socket = cluster.directory.appendingPathComponent("held.sock").path
        let holder = try startHolder(socket, list)
        defer { if holder.isRunning { kill(holder.processIdentifier, SIGKILL) } }

        let first = try run("walle", ["put", "/held", "--no-claim", "--socket", socket, "a", "b", "c"])
        #expect(first.status == 0 && first.output == "acked 1\nacked 2\nacked 3\n", "first: \(first)")
        let second = try run("walle", ["put", "/held", "--no-claim", "--socket", socket], stdin: "d\ne\n")
        #expect(second.status == 0 && second.output == "acked 4\nacked 5\n", "second: \(second)")
        // One claim for both scripts: the same writer stamps every entry.
        let read = try run("walle", ["read", "/held"] + list)
        let writers = Set(read.output.split(separator: "\n").map { $0.split(separator: "\t")[1] })
        #expect(read.output.split(separator: "\n").count == 5 && writers.count == 1, "read: \(read.output)")

        let other = try runCapturingErrors("walle", ["put", "/other", "--no-claim", "--socket", socket, "x"])
        #expect(other.status == 1 && other.error.contains("this holder holds /held"), "other: \(other)")

        // SIGTERM: what it took is committed, the socket goes, the exit is clean.
        kill(holder.processIdentifier, SIGTERM)
        holder.waitUntilExit()
        #expect(holder.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: socket))
        let gone = try runCapturingErrors("walle", ["put", "/held", "--no-claim", "--socket", socket, "x"])
        #expect(gone.status == 1 && gone.error.contains("no holder at"), "gone: \(gone)")

        // A claim elsewhere fences a holder: its next entry fails, and it ends with 1.
        let fenced = try startHolder(socket, list)
        defer { if fenced.isRunning { kill(fenced.processIdentifier, SIGKILL) } }
        #expect(try run("walle", ["put", "/held", "f"] + list).output == "acked 6\n")
        let refused = try runCapturingErrors("walle", ["put", "/held", "--no-claim", "--socket", socket, "g"])
        #expect(refused.status == 1 && refused.error.contains("the holder at"), "refused: \(refused)")
        fenced.waitUntilExit()
        #expect(fenced.terminationStatus == 1)
    }

    /// `walle hold /held` on `socket`, once it listens.
    func startHolder(_ socket: String, _ list: [String]) throws -> Process {
        let holder = Process()
        holder.executableURL = try builtProduct("walle")
        holder.arguments = ["hold", "/held", "--socket", socket] + list
        holder.standardError = FileHandle.nullDevice
        try holder.run()
        try waitFor("the holder's socket") { FileManager.default.fileExists(atPath: socket) || !holder.isRunning }
        return holder
    }
}
