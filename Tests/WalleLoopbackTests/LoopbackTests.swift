import Foundation
import NIOCore
import Testing
import WalleContracts
import WalleClient
import WalleCore
import WalleEnvironment
import WalleWire

#if canImport(Glibc)
    import Glibc
#endif

/// Real processes on loopback: `walle-node` on WiredTiger and TCP, `walle` and the client
/// library against them. Serialized: each test runs its own cluster and they would otherwise
/// fight over two cores.
@Suite("Loopback cluster", .serialized)
struct LoopbackTests {
    @Test("Three nodes from the built executables: create a stream, put, read back, status")
    func threeNodesTakeWrites() throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let list = ["--cluster", cluster.serverList]
        let created = try run("walle", ["create-stream", "/demo"] + list)
        #expect(created.status == 0, "create-stream: \(created.output)")
        let put = try run("walle", ["put", "/demo", "alpha", "beta", "gamma"] + list)
        #expect(put.status == 0)
        #expect(put.output.split(separator: "\n").sorted() == ["acked 1", "acked 2", "acked 3"])
        let read = try run("walle", ["read", "/demo"] + list)
        let texts = read.output.split(separator: "\n").map { $0.split(separator: "\t").last.map(String.init) ?? "" }
        #expect(texts == ["alpha", "beta", "gamma"], "read: \(read.output)")
        let status = try run("walle", ["status"] + list)
        #expect(status.output.contains("/demo v1 members [1, 2, 3]"), "status: \(status.output)")
        for id in cluster.ids { #expect(cluster.terminate(id) == 0, "node \(id) exits 0 on SIGTERM") }
    }

    @Test("The topology manager runs on the nodes: kill -9 the active one, another takes over, streams are created")
    func managerTakeover() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let client = try cluster.client()
        try await client.createStream(try StreamURI("/before"), members: client.serverIDs)
        let first = try await managerServer(client)
        #expect(cluster.log(first).contains("topology manager: holds /cluster/root"), "\(cluster.log(first))")
        cluster.kill9(first)
        // A standby claims once the dead manager's 1 s lease has run out; the request waits.
        let survivors = cluster.ids.filter { $0 != first }.map { NodeID($0) }
        let topology = try await client.topologyRequest(.createStream(try StreamURI("/after"), members: survivors))
        #expect(topology.streams[try StreamURI("/after")]?.members == survivors)
        #expect(topology.streams[try StreamURI("/before")] != nil, "the new manager kept the old versions")
        let second = try await managerServer(client)
        #expect(second != first)
        #expect(cluster.log(second).contains("topology manager: holds /cluster/root"))
        // Asked again, the same request is already so and answers at once.
        let again = try await client.topologyRequest(.createStream(try StreamURI("/after"), members: survivors))
        #expect(again.version == topology.version)
    }

    @Test("Membership from the CLI: add a member and remove one on a stream nobody writes; the data stays readable")
    func membershipFromTheCLI() throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let list = ["--cluster", cluster.serverList]
        #expect(try run("walle", ["create-stream", "/moved", "--members", "1,2"] + list).status == 0)
        #expect(try run("walle", ["put", "/moved", "a", "b"] + list).status == 0)
        let added = try run("walle", ["members", "/moved", "--add", "3"] + list)
        #expect(added.output.contains("/moved v2 members [1, 2, 3]"), "add: \(added.output)")
        // Nobody writes: the new member pulls the tail from its peers and backfills the rest
        // ([JOIN-1]), and only then can the removal be made (2 of the remaining [2, 3] settled).
        let removed = try run("walle", ["members", "/moved", "--remove", "1"] + list)
        #expect(removed.output.contains("/moved v3 members [2, 3]"), "remove: \(removed.output)")
        #expect(try run("walle", ["put", "/moved", "c"] + list).output == "acked 3\n")
        let read = try run("walle", ["read", "/moved"] + list)
        let texts = read.output.split(separator: "\n").map { $0.split(separator: "\t").last.map(String.init) ?? "" }
        #expect(texts == ["a", "b", "c"], "read: \(read.output)")
        let streams = try run("walle", ["streams"] + list)
        #expect(streams.output.contains("/moved v3 members [2, 3]"), "streams: \(streams.output)")
        let unknown = try run("walle", ["members", "/nowhere", "--add", "2"] + list)
        #expect(unknown.status == 1 && unknown.output.isEmpty)
    }

    @Test("A new server at a new address registers itself; the members learn where it is from the topology")
    func newServerJoinsThroughTheTopology() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let list = ["--cluster", cluster.serverList]
        #expect(try run("walle", ["create-stream", "/joined", "--members", "1,2,3"] + list).status == 0)
        #expect(try run("walle", ["put", "/joined", "a", "b"] + list).status == 0)
        // Node 4 is in nobody's --peers, nor in the client's --cluster.
        try cluster.startJoining(4)
        let added = try run("walle", ["members", "/joined", "--add", "4"] + list)
        #expect(added.output.contains("/joined v2 members [1, 2, 3, 4]"), "add: \(added.output)")
        let servers = try run("walle", ["servers"] + list)
        #expect(servers.output.contains("4 127.0.0.1:\(cluster.port(4)) /joined"), "servers: \(servers.output)")
        for id in cluster.ids {
            #expect(servers.output.contains("\(id) 127.0.0.1:\(cluster.port(id)) /cluster/root /joined"))
        }
        let removed = try run("walle", ["members", "/joined", "--remove", "3"] + list)
        #expect(removed.output.contains("/joined v3 members [1, 2, 4]"), "remove: \(removed.output)")
        #expect(try run("walle", ["put", "/joined", "c"] + list).output == "acked 3\n")
        // Node 4 serves all three: the coordinators reached it at the address it registered.
        let client = try cluster.client()
        _ = try await client.topology()
        let uri = try StreamURI("/joined")
        let texts = try await eventually(within: .seconds(30), every: .milliseconds(100)) { () async -> [String]? in
            let reply = await client.call(NodeID(4)) { .streamEntries($0, uri, start: 1, end: 4) }
            guard case .entries(let entries) = reply, entries.count == 3 else { return nil }
            return entries.map { String(decoding: $0.data, as: UTF8.self) }
        }
        #expect(texts == ["a", "b", "c"], "node 4 holds the stream")
        await client.close()
    }

    /// The server whose manager holds the root stream, from the writer address it claimed with.
    func managerServer(_ client: ClusterClient) async throws -> UInt64 {
        let info = try await client.writerStatus(ClusterClient.rootStream)
        let id = try #require(UInt64(info.writerAddress.replacingOccurrences(of: "manager@", with: "")))
        return id
    }

    @Test("kill -9 of one node during a put load, 10 times: every acknowledged entry survives")
    func killNineKeepsAcknowledged() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let client = try cluster.client()
        let uri = try StreamURI("/kill9")
        try await client.createStream(uri, members: client.serverIDs)
        let writer = try await client.writer(for: uri, lease: .seconds(1))
        _ = try await writer.claim()
        var acknowledged: [EntryID: Entry] = [:]
        for round in 0..<10 {
            let started = ContinuousClock.now
            let victim = cluster.ids[round % 3]
            let futures = (0..<300).map { index in writer.submit(Array("r\(round)-\(index)".utf8)) }
            // Kill while puts are in flight: some are acknowledged, some not yet.
            try await Task.sleep(for: .milliseconds(30))
            cluster.kill9(victim)
            for future in futures {
                let entry = try await future.get()
                acknowledged[entry.id] = entry
            }
            let acknowledgedAt = ContinuousClock.now
            try cluster.start(victim)
            try await expectHolds(client, server: NodeID(victim), uri: uri, acknowledged, round: round)
            print("kill -9 round \(round): node \(victim); puts acknowledged after \(acknowledgedAt - started), "
                + "restarted node serves them after \(ContinuousClock.now - acknowledgedAt)")
        }
        #expect(acknowledged.count == 3000)
        await writer.close()
        await client.close()
    }

    @Test(
        "Rolling restart: a node restarted every 10 s for 2 min; each round a new writer claims within lease + a few s")
    func rollingRestartClaims() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let client = try cluster.client()
        let uri = try StreamURI("/rolling")
        try await client.createStream(uri, members: client.serverIDs)
        let lease = Duration.seconds(2)
        var previous: StreamWriter?
        var claimTimes: [Duration] = []
        for round in 0..<12 {
            let roundStart = ContinuousClock.now
            let victim = cluster.ids[round % 3]
            cluster.kill9(victim)
            try cluster.start(victim)
            // The previous writer just stops (it may still hold its lease): the new one waits
            // it out on the members, restarted ones included.
            let writer = try await client.writer(for: uri, lease: lease)
            let claimStart = ContinuousClock.now
            _ = try await writer.claim()
            let claimTime = ContinuousClock.now - claimStart
            claimTimes.append(claimTime)
            let entry = try await writer.append(Array("round \(round)".utf8))
            print(
                "rolling restart round \(round): node \(victim) restarted; claim took \(claimTime), entry \(entry.id)")
            // With the restart waiting leaseMax (60 s), claims failed from the second round on.
            #expect(claimTime < lease + .seconds(8), "round \(round): claim took \(claimTime)")
            await previous?.close()
            previous = writer
            let next = roundStart + .seconds(10)
            if ContinuousClock.now < next { try await Task.sleep(until: next) }
        }
        await previous?.close()
        let read = try run("walle", ["read", uri.description, "--cluster", cluster.serverList])
        let texts = read.output.split(separator: "\n").map { $0.split(separator: "\t").last.map(String.init) ?? "" }
        #expect(texts == (0..<12).map { "round \($0)" }, "every round's entry, in order: \(read.output)")
        print("rolling restart: slowest claim \(claimTimes.max()!)")
        await client.close()
    }

    /// The restarted server catches up and serves every acknowledged entry, unchanged.
    private func expectHolds(
        _ client: ClusterClient, server: NodeID, uri: StreamURI, _ acknowledged: [EntryID: Entry], round: Int
    ) async throws {
        let last = acknowledged.keys.max()!
        var next: EntryID = 1
        // Until the restarted node has served everything, or a deadline far beyond what an
        // idle machine needs (a few seconds): a loaded CI machine is slow, not wrong.
        _ = try await eventually(within: .seconds(180), every: .milliseconds(50)) { () async -> Bool? in
            let start = next
            let reply = await client.call(server, timeout: .seconds(2)) {
                .streamEntries($0, uri, start: start, end: last + 1)
            }
            // Anything else: still recovering or catching up.
            if case .entries(let entries) = reply {
                for entry in entries {
                    let expected = acknowledged[entry.id]
                    #expect(
                        expected.map { entry.sameContent(as: $0) } ?? true, "round \(round): entry \(entry.id) changed")
                }
                next = entries.last!.id + 1
            }
            return next > last ? true : nil
        }
        #expect(next == last + 1, "round \(round): server \(server) served up to \(next - 1) of \(last)")
    }

    @Test("Writer fail-over between two client processes: the second fences the first, nothing acknowledged is lost")
    func writerFailover() throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let list = ["--cluster", cluster.serverList]
        #expect(try run("walle", ["create-stream", "/failover"] + list).status == 0)
        // The first writer keeps its stdin open: it stays the writer until it is fenced.
        let first = try WriterProcess(cluster, "/failover", name: "first")
        defer { first.kill() }
        first.write("a1\na2\na3\n")
        try first.waitForAck(3)
        // The second process claims: it waits out the first's lease, then commits after it.
        let second = try run("walle", ["put", "/failover", "b1"] + list)
        #expect(second.status == 0)
        #expect(second.output == "acked 4\n", "second writer: \(second.output)")
        // The fenced writer's next put fails and it exits non-zero.
        first.write("a4\n")
        try first.input.fileHandleForWriting.close()
        first.process.waitUntilExit()
        #expect(first.process.terminationStatus == 1)
        let read = try run("walle", ["read", "/failover"] + list)
        let texts = read.output.split(separator: "\n").map { $0.split(separator: "\t").last.map(String.init) ?? "" }
        #expect(texts == ["a1", "a2", "a3", "b1"], "read: \(read.output)")
    }

    @Test("Bad frames close that connection with a logged reason; the node serves everyone else")
    func badFrames() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let port = cluster.ports[1]!
        let hello = Wire.encode(.hello(NodeID(1 << 63 | 7)))
        let cases: [(String, [UInt8], String)] = [
            ("garbage", [0x05, 0, 0, 0, 0xEE, 1, 2, 3, 4], "unknownType"),
            ("oversized", [0xFF, 0xFF, 0xFF, 0xFF, 1], "oversized"),
            ("truncated", [10, 0, 0, 0, 1, 2, 3], "connection ended inside a frame"),
            ("no hello", Wire.encode(.message(.writerStatus(1, try StreamURI("/x")))), "a message before the hello"),
            ("bad stream name", hello + Wire.encode(.message(.writerStatus(1, try StreamURI("/x")))).map {
                $0 == UInt8(ascii: "x") ? UInt8(ascii: "X") : $0
            }, "only a-z 0-9"),
        ]
        for (name, bytes, reason) in cases {
            let socket = try connectTCP(port: port)
            defer { close(socket) }
            _ = bytes.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) }
            if name == "truncated" { shutdown(socket, Int32(SHUT_WR)) }
            #expect(readsUntilClosed(socket), "\(name): the node closes the connection")
            try waitFor("\(name) logged") { cluster.log(1).contains(reason) }
        }
        // Everyone else is still served.
        let client = try cluster.client()
        let reply = await client.call(NodeID(1)) { .writerStatus($0, ClusterClient.rootStream) }
        if case .failed(let error) = reply { Issue.record("node 1 stopped serving: \(error)") }
        await client.close()
    }

    @Test("Metrics and health: the node's series after puts; a busy metrics address exits 66")
    func metricsAndHealth() throws {
        let cluster = try LocalCluster(metrics: true)
        defer { cluster.stopAll() }
        try cluster.startAll()
        let list = ["--cluster", cluster.serverList]
        #expect(try run("walle", ["create-stream", "/observed"] + list).status == 0)
        #expect(try run("walle", ["put", "/observed", "one", "two", "three"] + list).status == 0)
        let port = cluster.metricsPorts[1]!
        let health = httpGet(port: port, "/health")
        #expect(health?.status == 200)
        #expect(health?.body.contains("\"serving\":true") == true, "health: \(String(describing: health))")
        // Gauges are sampled once a second; the put series appear on the coordinators.
        var text = ""
        try waitFor("the node's series") {
            text = cluster.ids.compactMap { httpGet(port: cluster.metricsPorts[$0]!, "/metrics")?.body }.joined()
            return text.contains("walle_put_duration_seconds_bucket") && text.contains("walle_streams 2")
        }
        for series in [
            "walle_fsync_duration_seconds_bucket", "walle_sync_entries_bucket", "walle_calls_in_flight",
            "walle_queued_puts", "walle_poll_waiters", "walle_timers", "walle_streams_with_gap", "walle_gap_entries",
            "walle_requests_refused_total{limit=\"queuedPutsMax\"}", "walle_frames_received_total",
        ] {
            #expect(text.contains(series), "no \(series) in the metrics")
        }
        #expect(httpGet(port: port, "/nothing")?.status == 404)
        // A second node on node 1's metrics port cannot start: exit 66, with the reason.
        let other = try LocalCluster(size: 1)
        let busy = try run("walle-node", [
            "--id", "1", "--listen", "127.0.0.1:\(other.ports[1]!)", "--data-dir", other.dataDirectory(1).path,
            "--peers", "1=127.0.0.1:\(other.ports[1]!)", "--metrics", "127.0.0.1:\(port)",
        ])
        #expect(busy.status == 66)
        let malformed = try run("walle-node", [
            "--id", "1", "--listen", "127.0.0.1:\(other.ports[1]!)", "--data-dir", other.dataDirectory(1).path,
            "--peers", "1=127.0.0.1:\(other.ports[1]!)", "--metrics", "nowhere",
        ])
        #expect(malformed.status == 64)
    }

    @Test("A data directory of another server, or one that is not a database, is refused with a clear error")
    func refusesForeignDirectories() throws {
        let cluster = try LocalCluster(size: 1)
        defer { cluster.stopAll() }
        try cluster.start(1)
        #expect(cluster.terminate(1) == 0)
        let wrongID = try run("walle-node", [
            "--id", "2", "--listen", "127.0.0.1:\(cluster.ports[1]!)", "--data-dir", cluster.dataDirectory(1).path,
            "--peers", "2=127.0.0.1:\(cluster.ports[1]!)",
        ])
        #expect(wrongID.status == 66)
        let junk = cluster.directory.appendingPathComponent("junk")
        try FileManager.default.createDirectory(at: junk, withIntermediateDirectories: true)
        try Data("not a database".utf8).write(to: junk.appendingPathComponent("notes.txt"))
        let notDatabase = try run("walle-node", [
            "--id", "1", "--listen", "127.0.0.1:\(cluster.ports[1]!)", "--data-dir", junk.path,
            "--peers", "1=127.0.0.1:\(cluster.ports[1]!)",
        ])
        #expect(notDatabase.status == 66)
        let badPeers = try run(
            "walle-node", ["--id", "1", "--listen", "127.0.0.1:1", "--data-dir", junk.path, "--peers", "one=x"])
        #expect(badPeers.status == 64)
    }
}

/// Reads until the other side closes (true) or 60 s pass (false): the node closes at once on
/// an idle machine; the deadline only catches one that never does.
func readsUntilClosed(_ socket: Int32) -> Bool {
    var buffer = [UInt8](repeating: 0, count: 4096)
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline {
        let count = recv(socket, &buffer, buffer.count, 0)
        if count == 0 { return true }
        if count < 0 { return errno == ECONNRESET }
    }
    return false
}

/// Polls `condition` until it holds; the deadline is generous because CI runs suites side by
/// side on two cores, and a condition, not a time, is what the tests wait for.
func waitFor(_ what: String, seconds: Double = 120, _ condition: () -> Bool) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return }
        usleep(20_000)
    }
    throw WalleError(.deadlineExceeded, "waited \(seconds) s for \(what)")
}
