import Testing
@testable import WalleCore
import WalleEnvironment
import WalleWire

let client = NodeID(NodeID.clientBit | 42)

/// Delivers `message` and returns the single answer it got.
func answer(_ core: inout ServerCore, _ message: Message, from source: NodeID, at time: Int64 = 5) -> Reply? {
    core.receive(message, from: source, at: at(time))
    return core.takeEffects().replies.first { $0.requestID == message.requestID }?.reply
}

@Suite("Boundary: every field from the network is checked")
struct BoundaryTests {
    /// One row per rule: the message, who sends it, the code, and words the error must contain.
    static let rows: [(String, Message, NodeID, WalleError.Code, String)] = {
        let w = WriterID(ts: 10, id: 1)
        let e1 = chain(from: .zero, count: 1, writer: w)[0]
        let h = header(9)
        return [
            ("lease 0", .claimWriter(9, streamURI, writerAddress: "a", leaseMilliseconds: 0),
                client, .invalidArgument, "lease 0ms"),
            ("negative lease", .claimWriter(9, streamURI, writerAddress: "a", leaseMilliseconds: Int64.min),
                client, .invalidArgument, "lease"),
            ("huge lease", .claimWriter(9, streamURI, writerAddress: "a", leaseMilliseconds: Int64.max),
                client, .invalidArgument, "lease"),
            ("empty address", .claimWriter(9, streamURI, writerAddress: "", leaseMilliseconds: 1000),
                client, .invalidArgument, "address"),
            ("long address",
                .claimWriter(9, streamURI, writerAddress: String(repeating: "a", count: 257), leaseMilliseconds: 1000),
                client, .invalidArgument, "257 bytes"),
            ("entry id 2^64-1",
                .putEntry(9, streamURI, committedID: 0, committedChecksum: 0,
                    Entry(id: .max, writerID: w, checksum: 1, data: [])),
                client, .invalidArgument, "entry id 18446744073709551615"),
            ("marker 2^64-2",
                .putEntry(9, streamURI, committedID: .max - 1, committedChecksum: 0,
                    Entry(id: 0, writerID: w, checksum: 0, data: [])),
                client, .invalidArgument, "committed id 18446744073709551614"),
            ("marker at its own entry (WS-10)",
                .putEntry(9, streamURI, committedID: 1, committedChecksum: e1.checksum, e1),
                client, .invalidArgument, "must be below the entry id"),
            ("zero writer (WS-9)",
                .putEntry(9, streamURI, committedID: 0, committedChecksum: 0,
                    Entry(id: 1, writerID: .zero, checksum: 1, data: [])),
                client, .invalidArgument, "zero writer id"),
            ("writer ts past 2262",
                .putEntry(9, streamURI, committedID: 0, committedChecksum: 0,
                    Entry(id: 1, writerID: WriterID(ts: .max, id: 1), checksum: 1, data: [])),
                client, .invalidArgument, "ts 18446744073709551615"),
            ("entry 0 with data",
                .putEntry(9, streamURI, committedID: 0, committedChecksum: 0,
                    Entry(id: 0, writerID: w, checksum: 0, data: [1])),
                client, .invalidArgument, "entry 0"),
            ("oversized entry",
                .putEntry(9, streamURI, committedID: 0, committedChecksum: 0,
                    Entry(id: 1, writerID: w, checksum: 1, data: [UInt8](repeating: 0, count: Entry.dataSizeMax + 1))),
                client, .invalidArgument, "1048577 bytes"),
            ("poll 2^63", .pollStream(9, streamURI, pollEntryID: 1 << 63), client, .invalidArgument, "poll entry id"),
            ("reversed range", .streamEntries(9, streamURI, start: 5, end: 2),
                client, .invalidArgument, "start 5 must be below end 2"),
            ("range from 2^64-1", .streamEntries(9, streamURI, start: .max, end: .max),
                client, .invalidArgument, "start"),
            ("NewWriter from a client", .newWriter(h, w, writerAddress: "impostor:1", leaseMilliseconds: 0),
                client, .permissionDenied, "NewWriter is a server-to-server message"),
            ("PutEntryInternal from a client",
                .putEntryInternal(h, .claimCommit, e1, committedID: 1, committedChecksum: e1.checksum),
                client, .permissionDenied, "PutEntryInternal"),
            ("ReadEntries from node 0", .readEntries(h, start: 0, end: 1), NodeID(0), .permissionDenied, "ReadEntries"),
            ("NewWriter with the zero writer", .newWriter(h, .zero, writerAddress: "a", leaseMilliseconds: 1000),
                node(2), .invalidArgument, "zero writer id"),
            ("stream version 2^64-1",
                .writerInfo(InternalHeader(requestID: 9, stream: streamURI, target: node(1), streamVersion: .max)),
                node(2), .invalidArgument, "stream version"),
            ("claim put with another marker",
                .putEntryInternal(h, .claimCommit, e1, committedID: 0, committedChecksum: 0),
                node(2), .invalidArgument, "commits its own entry"),
            ("empty re-stamp", .restampEntries(h, []), node(2), .invalidArgument, "at least one entry"),
            ("re-stamp with a hole", .restampEntries(h, [e1, Entry(id: 3, writerID: w, checksum: 1, data: [])]),
                node(2), .invalidArgument, "consecutive"),
            ("new stream with no members", .topologyRequest(9, .createStream(streamURI, members: [])),
                client, .invalidArgument, "members: 0 given"),
            ("new stream with 17 members",
                .topologyRequest(9, .createStream(streamURI, members: (1...17).map { node($0) })),
                client, .invalidArgument, "members: 17 given"),
            ("new stream naming a server twice",
                .topologyRequest(9, .createStream(streamURI, members: [node(1), node(2), node(1)])),
                client, .invalidArgument, "twice"),
            ("new stream with a client member",
                .topologyRequest(9, .createStream(streamURI, members: [node(1), client])),
                client, .invalidArgument, "not a server id"),
            ("new stream under /cluster/",
                .topologyRequest(9, .createStream(try! StreamURI("/cluster/root"), members: [node(1)])),
                client, .invalidArgument, "reserved for the cluster"),
            ("member 0", .topologyRequest(9, .addMember(streamURI, NodeID(0))), client, .invalidArgument, "member"),
            ("an address without a port",
                .topologyRequest(9, .registerServer(node(4), address: "db4")), client, .invalidArgument, "address"),
            ("a valid topology request to a server that runs no manager",
                .topologyRequest(9, .addMember(streamURI, node(4))), client, .unavailable,
                "does not run the topology manager"),
        ]
    }()

    @Test("Out of range: a typed error that names the field, and nothing changes", arguments: rows.indices)
    func refused(_ index: Int) {
        let (name, message, source, code, words) = Self.rows[index]
        var core = makeServer()
        install(&core, WriterID(ts: 10, id: 1))
        let before = core.metadata(of: streamURI)
        let reply = answer(&core, message, from: source)
        #expect(reply?.errorCode == code, "\(name): \(String(describing: reply))")
        if case .failed(let error)? = reply { #expect(error.message.contains(words), "\(name): \(error.message)") }
        #expect(core.metadata(of: streamURI) == before, "\(name) changed the stream")
        #expect(core.window(of: streamURI) == [.zero], "\(name) changed the window")
    }

    @Test(
        "Regression (fuzzed frame, all 3 nodes died): a commit marker near 2^64 is refused; later wake-ups do not trap")
    func markerNearTwoToTheSixtyFour() throws {
        var core = makeServer()
        let writer = WriterID(ts: 10, id: 1)
        install(&core, writer)
        // The frame the fuzz script sent: a heartbeat whose marker is 2^64 − 2, and the same as
        // a server's PutEntryInternal. Both used to reach `fastForward`'s `marker.id + 1`.
        let beat = Entry(id: 0, writerID: writer, checksum: 0, data: [])
        let frame = Wire.encode(.message(.putEntry(3, streamURI, committedID: .max - 1, committedChecksum: 7, beat)))
        guard case .message(let decoded) = try Wire.decode(Array(frame.dropFirst(4))) else {
            Issue.record("not a message frame")
            return
        }
        #expect(answer(&core, decoded, from: client)?.errorCode == .invalidArgument)
        let internalPut = Message.putEntryInternal(header(4), .write, beat, committedID: .max, committedChecksum: 7)
        #expect(answer(&core, internalPut, from: node(2))?.errorCode == .invalidArgument)
        // The fast-forward timer would have fired here.
        core.wake(at: at(10_000))
        _ = core.takeEffects()
        #expect(core.metadata(of: streamURI)?.committedID == 0)
    }

    @Test("Regression (a client installed its writer on every member): NewWriter from a client is refused")
    func clientSentNewWriter() {
        var core = makeServer()
        let real = WriterID(ts: 10, id: 1)
        install(&core, real)
        let impostor = Message.newWriter(
            header(5), WriterID(ts: 99, id: 9), writerAddress: "impostor:1", leaseMilliseconds: 0)
        let reply = answer(&core, impostor, from: client)
        #expect(reply?.errorCode == .permissionDenied)
        #expect(core.metadata(of: streamURI)?.writerID == real, "the real writer stays installed")
        #expect(core.metadata(of: streamURI)?.writerAddress == "w")
    }

    @Test(
        "Regression (core fuzzer, seed 1): a full call table in a claim's fan-out fails the claim instead of trapping")
    func fullCallTableDuringClaim() {
        var configuration = ServerConfiguration()
        configuration.callsInFlightMax = 1
        var core = makeServer(configuration: configuration)
        let reply = answer(&core, .claimWriter(8, streamURI, writerAddress: "c", leaseMilliseconds: 1000), from: client)
        #expect(reply?.errorCode == .resourceExhausted)
    }

    @Test("An answer of the wrong shape counts as a failure (an .ok to WriterInfo cannot be merged)")
    func wrongShapedAnswer() {
        var core = makeServer()
        install(&core, WriterID(ts: 10, id: 1))
        core.receive(.writerStatus(6, streamURI), from: client, at: at(5))
        let calls = core.takeEffects().sends.filter { $0.target != node(1) }
        for call in calls { core.receive(.response(call.message.requestID, .ok), from: call.target, at: at(6)) }
        let effects = core.takeEffects()
        let replies = effects.replies.filter { $0.target == client }
        #expect(replies.count == 1)
        #expect(replies.first?.reply.errorCode == .invalidArgument)
    }
}

@Suite("Forged commit markers")
struct ForgedMarkerTests {
    @Test("A marker that differs from the same writer's entry is refused and drops nothing")
    func sameWriterMismatch() {
        var core = makeServer()
        let writer = WriterID(ts: 10, id: 1)
        _ = installWithEntries(&core, writer, count: 3)
        let beat = Entry(id: 0, writerID: writer, checksum: 0, data: [])
        let forged = Message.putEntryInternal(header(20), .write, beat, committedID: 2, committedChecksum: 0xBAD)
        #expect(answer(&core, forged, from: node(2))?.errorCode == .invalidArgument)
        #expect(core.window(of: streamURI)?.map(\.id) == [0, 1, 2, 3], "nothing dropped")
    }

    @Test(
        "A marker from a newer writer over an older writer's entry drops nothing until a peer's committed copy matches")
    func newerWriterMismatchFetchesFirst() {
        var core = makeServer()
        let old = WriterID(ts: 10, id: 1)
        let stale = installWithEntries(&core, old, count: 2)
        let new = WriterID(ts: 20, id: 2)
        install(&core, new, requestID: 30)
        let beat = Entry(id: 0, writerID: new, checksum: 0, data: [])
        // Forged (or true, the member cannot tell yet): the member keeps its entries and asks peers.
        core.receive(
            .putEntryInternal(header(31), .write, beat, committedID: 2, committedChecksum: 0xF00),
            from: node(2), at: at(5))
        let first = core.takeEffects()
        let reply = (first + settle(&core, first, at: 5)).replies.first { $0.requestID == 31 }?.reply
        #expect(reply?.isOK == true)
        #expect(core.window(of: streamURI)?.map(\.id) == [0, 1, 2], "the marker alone drops nothing")
        core.wake(at: at(1_000))
        let fetches = core.takeEffects().sends.filter {
            if case .readEntries = $0.message { return true } else { return false }
        }
        #expect(fetches.count == 2, "fetches entry 2 from both peers")
        // A peer's committed entry 2 is the old one: the marker was forged, and it is dropped.
        for fetch in fetches {
            core.receive(.response(fetch.message.requestID, .entries([stale[1]])), from: fetch.target, at: at(1_001))
        }
        _ = core.takeEffects()
        core.wake(at: at(5_000))
        #expect(core.takeEffects().sends.filter {
            if case .readEntries = $0.message { return true } else { return false }
        }.isEmpty)
        #expect(core.window(of: streamURI)?.map(\.id) == [0, 1, 2])
    }
}
