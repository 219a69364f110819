import Foundation
import Testing
import WalleEnvironment

/// `walle trim` on a real cluster: the manager's check, the members' reads, the disk space
/// (the nodes log each compaction with the file's sizes), and a replacement after the trim.
@Suite("Trimming on loopback", .serialized)
struct TrimLoopbackTests {
    @Test("walle trim: past committed refused, reads below the first entry refused, files shrink, replace converges")
    func trimFromTheCLI() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let list = ["--cluster", cluster.serverList]
        #expect(try run("walle", ["create-stream", "/trimmed", "--members", "1,2,3"] + list).status == 0)
        // 3000 entries of 2 KB, about 6 MB on each member.
        let filler = String(repeating: "x", count: 2000)
        let lines = (1...3000).map { "e\($0)-\(filler)\n" }.joined()
        let put = try run("walle", ["put", "/trimmed"] + list, stdin: lines)
        #expect(put.status == 0 && put.output.contains("acked 3000\n"), "put: \(put.output.suffix(200))")
        // A clean restart in between: the members recover the stream before the trim.
        for id in cluster.ids {
            #expect(cluster.terminate(id) == 0)
            try cluster.start(id)
        }
        let before = cluster.ids.map { tableFileSize(cluster, $0) }
        #expect(before.allSatisfy { $0 > 4_000_000 }, "table files before the trim: \(before)")

        let past = try runCapturingErrors("walle", ["trim", "/trimmed", "100000"] + list)
        #expect(past.status == 1 && past.error.contains("past the committed id"), "trim 100000: \(past)")
        let trimmed = try run("walle", ["trim", "/trimmed", "2990"] + list)
        #expect(trimmed.output.contains("/trimmed v1 members [1, 2, 3] first 2990"), "trim: \(trimmed.output)")
        let kept = (2990...3000).map { "e\($0)" }
        for server in cluster.ids {
            let below = try await eventually {
                let read = try runCapturingErrors(
                    "walle", ["read", "/trimmed", "--from", "10", "--server", String(server)] + list)
                return read.status == 1 && read.error.contains("below its first entry 2990") ? read : nil
            }
            #expect(below != nil, "server \(server) refuses reads below the first entry")
            let read = try run("walle", ["read", "/trimmed", "--server", String(server)] + list)
            #expect(names(read.output) == kept, "server \(server): \(read.output.prefix(200))")
        }
        // The members delete in steps, then compact; each node logs the compaction with the
        // file's sizes (the line comes just after the file shrinks), so a failure here says
        // what WiredTiger did.
        let shrunk = try await eventually(within: .seconds(120)) {
            let sizes = cluster.ids.map { tableFileSize(cluster, $0) }
            let logged = compactionLines(cluster).values.allSatisfy {
                $0.contains { $0.contains("compacted table:live-trimmed") }
            }
            return logged && sizes.allSatisfy({ $0 < 1_000_000 }) ? sizes : nil
        }
        let after = cluster.ids.map { tableFileSize(cluster, $0) }
        let logs = compactionLines(cluster)
        #expect(shrunk != nil, "table files \(before) before the trim, \(after) after; logs: \(logs)")
        // A replacement after the trim backfills down to the first entry and serves it.
        try cluster.startJoining(4)
        let replaced = try run("walle", ["replace", "/trimmed", "3", "4"] + list)
        #expect(replaced.output.contains("removed 3: /trimmed members [1, 2, 4]"), "replace: \(replaced.output)")
        let joined = try await eventually {
            let read = try run("walle", ["read", "/trimmed", "--server", "4", "--to", "3001"] + list)
            return read.status == 0 && names(read.output) == kept ? read : nil
        }
        #expect(joined != nil, "node 4 serves 2990...3000")
        #expect(try run("walle", ["put", "/trimmed", "e3001"] + list).output == "acked 3001\n")
        let streams = try run("walle", ["streams"] + list)
        #expect(streams.output.contains("/trimmed v3 members [1, 2, 4] first 2990"), "streams: \(streams.output)")
    }

    /// The size of a node's live table file of `/trimmed`.
    func tableFileSize(_ cluster: LocalCluster, _ id: UInt64) -> Int {
        let path = cluster.dataDirectory(id).appendingPathComponent("live-trimmed.wt").path
        return ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    /// Each node's log lines about compaction.
    func compactionLines(_ cluster: LocalCluster) -> [UInt64: [Substring]] {
        Dictionary(uniqueKeysWithValues: cluster.ids.map { id in
            (id, cluster.log(id).split(separator: "\n").filter { $0.contains("compact") })
        })
    }

    /// The entry names (`e12`) of `walle read` lines, whose data is `e12-xxx...`.
    func names(_ output: String) -> [String] {
        output.split(separator: "\n").map { line in
            let data = line.split(separator: "\t").last.map(String.init) ?? ""
            return String(data.prefix { $0 != "-" })
        }
    }
}
