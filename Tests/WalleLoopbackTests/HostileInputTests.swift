import Foundation
import Testing
import WalleContracts
import WalleClient
import WalleEnvironment
import WalleWire

#if canImport(Glibc)
    import Glibc
#endif

/// Hostile input against real nodes: a client that sends what only servers may send, and the
/// TCP fuzzer (`walle-fuzz cluster`) as a client and as a server. Part of the serialized
/// loopback suite: two clusters at once starve each other on two cores.
extension LoopbackTests {
    @Test("Regression: a client connection sending NewWriter gets PermissionDenied, is closed, and installs nothing")
    func clientSentNewWriter() throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let list = ["--cluster", cluster.serverList]
        #expect(try run("walle", ["create-stream", "/guarded"] + list).status == 0)
        #expect(try run("walle", ["put", "/guarded", "real"] + list).status == 0)
        for id in cluster.ids {
            let socket = try connectTCP(port: cluster.ports[id]!)
            defer { close(socket) }
            let header = InternalHeader(
                requestID: 5, stream: try StreamURI("/guarded"), target: NodeID(id), streamVersion: 1)
            let impostor = Message.newWriter(
                header, WriterID(ts: .max >> 1, id: 9), writerAddress: "impostor:1", leaseMilliseconds: 0)
            let bytes = Wire.encode(.hello(NodeID(NodeID.clientBit | 99))) + Wire.encode(.message(impostor))
            _ = bytes.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) }
            let frames = readFramesUntilClosed(socket)
            let refusal = frames.compactMap { frame -> WalleError? in
                if case .message(.response(5, .failed(let error))) = frame { return error } else { return nil }
            }.first
            #expect(refusal?.code == .permissionDenied, "node \(id) answered \(frames)")
            try waitFor("node \(id) logs the refusal") {
                cluster.log(id).contains("NewWriter is a server-to-server message")
            }
        }
        let writer = try run("walle", ["writer", "/guarded"] + list)
        #expect(writer.status == 0)
        #expect(!writer.output.contains("impostor"), "writer: \(writer.output)")
    }

    @Test(
        "100,000 fuzzed frames, as a client and as a server: every node lives and the data written before is unchanged")
    func fuzzedFrames() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stopAll() }
        try cluster.startAll()
        let list = ["--cluster", cluster.serverList]
        #expect(try run("walle", ["create-stream", "/fuzzed"] + list).status == 0)
        let lines = (1...50).map { "entry-\($0)" }.joined(separator: "\n") + "\n"
        #expect(try run("walle", ["put", "/fuzzed"] + list, stdin: lines).status == 0)
        let before = try run("walle", ["read", "/fuzzed", "--to", "51"] + list)
        #expect(before.output.split(separator: "\n").count == 50)
        for (identity, seed) in [("client", "1"), ("server", "2")] {
            let fuzz = try run("walle-fuzz", [
                "cluster", "--cluster", cluster.serverList, "--frames", "50000", "--identity", identity, "--seed", seed,
                "--stream", "/fuzzed",
            ])
            #expect(fuzz.status == 0, "fuzzing as a \(identity): \(fuzz.output)")
        }
        for id in cluster.ids { #expect(cluster.isRunning(id), "node \(id) died: \(cluster.log(id).suffix(2000))") }
        // Every member's own copy, asked directly. The fuzzer's TopologyRequests are valid
        // requests from a client, so some of its adds and removals of /fuzzed's members are
        // made: the members are the topology's now (a re-added member pulls the tail from its
        // peers and backfills). Its TopologyRequests may trim /fuzzed too (a client may): the
        // check starts at the stream's first entry. A forged server may have sent anything
        // (mutual TLS is what keeps servers honest), but the committed entries never change.
        let client = try cluster.client()
        let uri = try StreamURI("/fuzzed")
        let (members, first) = try await currentMembers(uri, client)
        let written = before.output.split(separator: "\n").map { $0.split(separator: "\t").last.map(String.init) ?? "" }
            .dropFirst(Int(min(first, 51)) - 1)
        let checked = cluster.ids.filter { members.contains(NodeID($0)) }
        print("members of /fuzzed after the fuzzing: \(members.map(\.rawValue)), first entry \(first)")
        #expect(!checked.isEmpty, "no server of the cluster is left a member of /fuzzed: \(members)")
        for id in checked where !written.isEmpty {
            var texts: [String] = []
            var refusal = "none"
            _ = try await eventually(within: .seconds(120), every: .milliseconds(50)) { () async -> Bool? in
                let start = first + EntryID(texts.count)
                let reply = await client.call(NodeID(id), timeout: .seconds(2)) {
                    .streamEntries($0, uri, start: start, end: 51)
                }
                if case .entries(let entries) = reply {
                    texts += entries.map { String(decoding: $0.data, as: UTF8.self) }
                } else {
                    // A fuzzer posing as a server may have registered a false address for
                    // it, which the server puts right: read the topology again, as clients do.
                    refusal = "\(reply)"
                    _ = try? await client.topology()
                }
                return texts.count >= written.count ? true : nil
            }
            #expect(
                texts == Array(written), "node \(id) serves other entries \(first)...50 after the fuzzing (\(refusal))")
        }
        await client.close()
    }

    /// The members and the first entry (1 if never trimmed) of `uri` in the committed topology;
    /// asked again for up to 60 s while the manager that answers changes hands.
    private func currentMembers(
        _ uri: StreamURI, _ client: ClusterClient
    ) async throws -> (members: [NodeID], first: EntryID) {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do {
                let topology = try await client.topology()
                return (topology.streams[uri]?.members ?? [], max(1, topology.firstEntryID(of: uri)))
            } catch {
                if ContinuousClock.now > deadline { throw error }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}

/// Reads frames until the other side closes the connection (or 60 s pass).
func readFramesUntilClosed(_ socket: Int32) -> [Frame] {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline {
        let count = recv(socket, &buffer, buffer.count, 0)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    var frames: [Frame] = []
    while bytes.count >= 4 {
        let length = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        guard bytes.count >= 4 + length, let frame = try? Wire.decode(Array(bytes[4..<(4 + length)])) else { break }
        frames.append(frame)
        bytes.removeFirst(4 + length)
    }
    return frames
}
