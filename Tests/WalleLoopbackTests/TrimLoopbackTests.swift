import Foundation
import Testing
import WalleEnvironment

/// `walle trim` on a real cluster: the manager's check, the members' reads, a member that joins
/// after the trim.
@Suite("Trimming on loopback", .serialized)
struct TrimLoopbackTests {
    @Test("walle trim: past the committed id refused; below the first entry OutOfRange on every member; a new member starts there")
    func trimFromTheCLI() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let list = ["--cluster", cluster.serverList]
        #expect(try run("walle", ["create-stream", "/trimmed", "--members", "1,2,3"] + list).status == 0)
        let values = (1...40).map { "e\($0)" }
        #expect(try run("walle", ["put", "/trimmed"] + values + list).status == 0)
        let past = try runCapturingErrors("walle", ["trim", "/trimmed", "100"] + list)
        #expect(past.status == 1 && past.error.contains("past the committed id"), "trim 100: \(past)")
        let trimmed = try run("walle", ["trim", "/trimmed", "30"] + list)
        #expect(trimmed.output.contains("/trimmed v1 members [1, 2, 3] first 30"), "trim 30: \(trimmed.output)")
        let kept = (30...40).map { "e\($0)" }
        for server in cluster.ids {
            let below = try await eventually {
                let read = try runCapturingErrors(
                    "walle", ["read", "/trimmed", "--from", "10", "--server", String(server)] + list)
                return read.status == 1 && read.error.contains("below its first entry 30") ? read : nil
            }
            #expect(below != nil, "server \(server) refuses reads below the first entry")
            #expect(texts(try run("walle", ["read", "/trimmed", "--server", String(server)] + list).output) == kept)
        }
        // A member that joins after the trim backfills down to the first entry and serves it.
        try cluster.startJoining(4)
        let added = try run("walle", ["members", "/trimmed", "--add", "4"] + list)
        #expect(added.output.contains("/trimmed v2 members [1, 2, 3, 4] first 30"), "add: \(added.output)")
        let joined = try await eventually {
            let read = try run("walle", ["read", "/trimmed", "--server", "4", "--to", "41"] + list)
            return read.status == 0 && texts(read.output) == kept ? read : nil
        }
        #expect(joined != nil, "node 4 serves 30...40")
        #expect(try run("walle", ["put", "/trimmed", "e41"] + list).output == "acked 41\n")
        let streams = try run("walle", ["streams"] + list)
        #expect(streams.output.contains("/trimmed v2 members [1, 2, 3, 4] first 30"), "streams: \(streams.output)")
    }

    /// The data column of `walle read` lines.
    func texts(_ output: String) -> [String] {
        output.split(separator: "\n").map { $0.split(separator: "\t").last.map(String.init) ?? "" }
    }

    /// `attempt` every 200 ms until it returns a value or 30 s have passed.
    func eventually<T>(_ attempt: () throws -> T?) async throws -> T? {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let value = try attempt() { return value }
            try await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }
}
