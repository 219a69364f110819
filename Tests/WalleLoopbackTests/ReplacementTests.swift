import Foundation
import Testing
import WalleClient
import WalleCore
import WalleEnvironment

/// Replacing a dead server with a new one, from the built executables, while a writer puts.
extension LoopbackTests {
    @Test("Replace a dead node under load: the new one acknowledges puts while it backfills, every copy ends equal")
    func replaceUnderLoad() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let list = ["--cluster", cluster.serverList]
        let client = try cluster.client()
        let uri = try StreamURI("/replaced")
        try await client.createStream(uri, members: client.serverIDs)
        let writer = try await client.writer(for: uri, lease: .seconds(1))
        _ = try await writer.claim()
        // Enough data below the join point that the backfill takes a while: 64 entries of 512 KiB.
        let load = PutLoad(writer: writer)
        for _ in 0..<64 { _ = try await writer.submit(Array(repeating: 7, count: 512 << 10)).get() }
        load.start()

        cluster.kill9(3)
        try FileManager.default.removeItem(at: cluster.dataDirectory(3))
        try cluster.startJoining(4)
        let joinedAt = try await client.poll(uri, from: 0).id
        // The manager's node dies while the replacement runs; another root member takes over and
        // the request, asked again, completes. Node 3 is dead, so only 1 or 2 can hold it.
        let replace = Task.detached { try run("walle", ["replace", "/replaced", "3", "4"] + list) }
        // Sampled from the start: the backfill of 32 MiB may end before the replacement does.
        let gapWatch = Task { try await self.nodeTakesPutsWithGap(client, uri, joinedAt: joinedAt) }
        let manager = try await managerServer(client, other: 3)
        try await Task.sleep(for: .milliseconds(300))
        cluster.kill9(manager)
        try cluster.start(manager)
        let replaced = try await replace.value
        #expect(replaced.status == 0 && replaced.output.contains("removed 3: /replaced members [1, 2, 4]"),
            "replace: \(replaced.output)")
        #expect(cluster.log(manager).contains("topology manager"), "the restarted node runs a manager again")

        // Node 4 took live puts while it still had a gap below them.
        let sawLivePutsWithGap = try await gapWatch.value
        #expect(sawLivePutsWithGap, "node 4 acknowledged new entries while its backfill ran")
        // The writer, created when the members were 1, 2 and 3, followed the topology itself.
        var followed: [NodeID] = []
        for _ in 0..<50 where followed != [NodeID(1), NodeID(2), NodeID(4)] {
            followed = await writer.members
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(followed == [NodeID(1), NodeID(2), NodeID(4)], "the writer routes to \(followed)")
        let root = try run("walle", ["replace", "/cluster/root", "3", "4"] + list)
        #expect(root.output.contains("members [1, 2, 4]"), "root: \(root.output)")
        let acknowledged = await load.stop()
        #expect(acknowledged.count > 100, "puts went on throughout: \(acknowledged.count)")

        // Every member's copy, read one server at a time, is the same and holds every acknowledged entry.
        let copies = try await equalCopies(cluster, uri: uri, servers: [1, 2, 4], through: acknowledged.keys.max()!)
        #expect(copies.count == 3 && Set(copies.values).count == 1, "copies differ: \(copies.mapValues(\.count))")
        let lines = copies[4]?.split(separator: "\n") ?? []
        for (id, entry) in acknowledged {
            let line = lines.first { $0.hasPrefix("\(id)\t") }
            #expect(line?.hasSuffix("\t" + String(decoding: entry.data, as: UTF8.self)) == true, "entry \(id)")
        }
        await writer.close()
        await client.close()
    }

    /// The server that runs the active manager, once it is not `dead` (a standby takes over
    /// when the dead one's root lease runs out).
    private func managerServer(_ client: ClusterClient, other dead: UInt64) async throws -> UInt64 {
        let manager = try await eventually(within: .seconds(30), every: .milliseconds(100)) { () async -> UInt64? in
            guard let manager = try? await managerServer(client), manager != dead else { return nil }
            return manager
        }
        if let manager { return manager }
        throw WalleError(.deadlineExceeded, "no root member other than \(dead) took the manager over in 30 s")
    }

    /// Samples the stream's status until node 4 reports a committed id beyond the join point
    /// while it still has a gap; false if its backfill finished first.
    private func nodeTakesPutsWithGap(
        _ client: ClusterClient, _ uri: StreamURI, joinedAt: EntryID
    ) async throws -> Bool {
        let seen = try await eventually(within: .seconds(60), every: .milliseconds(20)) { () async -> Bool? in
            guard let info = try? await client.streamStatus(uri).first(where: { $0.server == NodeID(4) }),
                info.committedID > joinedAt
            else { return nil }
            return info.hasGap
        }
        return seen ?? false
    }

    /// `walle read URI --server ID` for each server, once each has committed `last`.
    private func equalCopies(
        _ cluster: LocalCluster, uri: StreamURI, servers: [UInt64], through last: EntryID
    ) async throws -> [UInt64: String] {
        var copies: [UInt64: String] = [:]
        for server in servers {
            copies[server] = try await eventually(within: .seconds(120)) { () throws -> String? in
                let read = try run(
                    "walle", ["read", uri.rawValue, "--server", String(server), "--to", String(last + 1),
                        "--cluster", cluster.serverList])
                return read.status == 0 && read.output.split(separator: "\n").count == Int(last) ? read.output : nil
            }
        }
        return copies
    }
}

/// Puts small entries in batches of 20 until stopped, keeping what was acknowledged.
final class PutLoad: @unchecked Sendable {
    let writer: StreamWriter
    private var task: Task<[EntryID: Entry], Never>?
    private let stopped = NSLock()
    private var isStopped = false

    init(writer: StreamWriter) { self.writer = writer }

    func start() {
        task = Task { [self] in
            var acknowledged: [EntryID: Entry] = [:]
            var round = 0
            while !stopped.withLock({ isStopped }) {
                let futures = (0..<20).map { index in writer.submit(Array("load \(round)-\(index)".utf8)) }
                for future in futures {
                    if let entry = try? await future.get() { acknowledged[entry.id] = entry }
                }
                round += 1
            }
            return acknowledged
        }
    }

    func stop() async -> [EntryID: Entry] {
        stopped.withLock { isStopped = true }
        return await task?.value ?? [:]
    }
}
