import Testing
@testable import WalleCore
import WalleEnvironment

/// Trimming: the first entry in the topology, the manager's check against the committed id,
/// and a member's deletes, gap and reads (docs/protocol.md, "Trimming").
@Suite("Trimming: first entries in the topology, the manager, the members")
struct TrimTests {
    let base = TopologyManagerTests()
    let chainA = chain(from: .zero, count: 12, writer: writerA)
    let other = try! StreamURI("/test/other")

    func route(_ id: RequestID) -> Route { Route(node: NodeID(NodeID.clientBit | 5), requestID: id) }

    @Test("A topology with trims encodes, decodes to itself, and counts its bytes exactly")
    func encoding() throws {
        let streams = [
            streamURI: StreamTopology(version: 2, members: [node(1), node(2)]),
            other: StreamTopology(version: 1, members: [node(3)]),
        ]
        let address = try ServerAddress(parsing: "db1.example:7000")
        for topology in [
            Topology(version: 4, streams: streams, firstEntryIDs: [streamURI: 17]),
            Topology(
                version: 4, streams: streams, servers: [node(1): address], firstEntryIDs: [other: 1, streamURI: 9]),
            Topology(version: 4, streams: streams, servers: [node(1): address]),
        ] {
            let bytes = topology.encoded()
            #expect(try Topology.decode(bytes, entryID: 4) == topology)
            #expect(topology.encodedByteCount == bytes.count)
        }
        // Without trims or servers the bytes are those of a topology before either existed.
        let plain = Topology(version: 4, streams: streams)
        #expect(plain.encodedByteCount == plain.encoded().count)
        #expect(try Topology.decode(plain.encoded(), entryID: 4).firstEntryIDs.isEmpty)
    }

    @Test("Each change's growth is the difference of the encoded sizes, trims included")
    func growth() throws {
        let address = try ServerAddress(parsing: "10.0.0.1:7000")
        let streams = [streamURI: StreamTopology(version: 1, members: [node(1)])]
        let topologies = [
            Topology(version: 1, streams: streams),
            Topology(version: 1, streams: streams, servers: [node(1): address]),
            Topology(version: 1, streams: streams, firstEntryIDs: [streamURI: 3]),
        ]
        let changes: [TopologyChange] = [
            .trim(streamURI, firstEntryID: 5), .register(node(2), address: address),
            .create(other, members: [node(1)]),
        ]
        for topology in topologies {
            for change in changes where !change.isApplied(in: topology) {
                let next = TopologyManager.applying(change, to: topology)
                #expect(
                    next.encoded().count - topology.encoded().count == change.encodedGrowth(in: topology),
                    "\(change) over \(topology)")
            }
        }
    }

    @Test("A decoder refuses trims of unknown streams, first entry 0, disorder and empty tables")
    func hostileTrimTables() {
        var writer = ByteWriter()
        writer.u64(3)
        writer.u32(1)
        writer.string16(streamURI.rawValue)
        writer.u64(1)
        writer.u16(1)
        writer.u64(1)
        let head = writer.bytes
        func table(_ rows: [(String, UInt64)], servers: UInt32 = 0) -> [UInt8] {
            var tail = ByteWriter()
            tail.u32(servers)
            tail.u32(UInt32(rows.count))
            for (uri, first) in rows {
                tail.string16(uri)
                tail.u64(first)
            }
            return head + tail.bytes
        }
        #expect(throws: WalleError.self) { try Topology.decode(table([("/test/unknown", 4)]), entryID: 3) }
        #expect(throws: WalleError.self) { try Topology.decode(table([(streamURI.rawValue, 0)]), entryID: 3) }
        #expect(throws: WalleError.self) { try Topology.decode(table([]), entryID: 3) }
        var emptyServers = ByteWriter()
        emptyServers.u32(0)
        #expect(throws: WalleError.self) { try Topology.decode(head + emptyServers.bytes, entryID: 3) }
        let good = table([(streamURI.rawValue, 4)])
        #expect((try? Topology.decode(good, entryID: 3))?.firstEntryID(of: streamURI) == 4)
    }

    @Test("A trim waits for the status round, keeps the stream version, and is answered once acknowledged")
    func trimIsMade() {
        var manager = base.claimedManager()
        let ask = manager.request(route(1), .trim(streamURI, firstEntryID: 8))
        #expect(ask.statusCall != nil && ask.answers.isEmpty, "a trim asks for the committed ids first")
        let put = base.answer(&manager, ask, [base.info(1, committed: 10), base.info(2, committed: 6)])
        guard case .putTopology(let bytes, 2)? = put.first(where: \.isPut) else {
            Issue.record("the trim goes ahead: \(put)")
            return
        }
        let entry = Entry(id: 2, writerID: base.writer, checksum: 9, data: bytes)
        _ = manager.topologyPut(entry)
        let done = manager.writerEvent(.putAcknowledged(entry))
        #expect(done.answers.count == 1 && done.answers.first?.1.isEntry == true)
        #expect(manager.topology.firstEntryID(of: streamURI) == 8)
        #expect(manager.topology.streams[streamURI]?.version == 1, "a trim moves no stream version")
        // Lower or equal first entries are already so: answered at once, nothing queued.
        #expect(manager.request(route(2), .trim(streamURI, firstEntryID: 5)).answers.first?.1.isEntry == true)
        #expect(manager.pendingChanges.isEmpty)
    }

    @Test("A trim past every committed id a majority reports is refused with OutOfRange naming that id")
    func trimPastCommitted() {
        var manager = base.claimedManager()
        let ask = manager.request(route(1), .trim(streamURI, firstEntryID: 11))
        // One answer is not a majority of three: ask again, do not refuse yet.
        let early = base.answer(&manager, ask, [base.info(1, committed: 10)])
        #expect(early.answers.isEmpty && !early.contains(where: \.isPut))
        let again = manager.timerFired(.retry, writerCanClaim: false)
        let refused = base.answer(&manager, again, [base.info(1, committed: 10), base.info(2, committed: 9)])
        let error = refused.answers.first?.1
        #expect(error?.errorCode == .outOfRange)
        if case .failed(let failure)? = error {
            #expect(failure.message.contains("committed id 10"), "\(failure.message)")
        }
        #expect(manager.pendingChanges.isEmpty && manager.topology.firstEntryID(of: streamURI) == 0)
        #expect(manager.request(route(2), .trim(try! StreamURI("/nowhere"), firstEntryID: 2))
            .answers.first?.1.errorCode == .notFound)
        #expect(Boundary.checkTopologyRequest(.trim(streamURI, firstEntryID: 0))?.code == .invalidArgument)
    }

    /// A member of `/test/stream` holding entries 0...`committed`, all committed.
    func member(committed: Int) -> StreamReplica {
        var metadata = StreamMetadata(topology: StreamTopology(version: 1, members: [node(1), node(2), node(3)]))
        metadata.committedID = chainA[committed - 1].id
        return StreamReplica(uri: streamURI, metadata: metadata, window: [chainA[committed - 1]])
    }

    /// The ids below which each delete in `writes` removes entries.
    func deletes(_ writes: [DiskOperation]) -> [EntryID] {
        writes.compactMap { if case .deleteEntries(_, let below) = $0 { below } else { nil } }
    }

    @Test("A member deletes below the first entry in bounded steps, never its committed entry or above")
    func memberDeletes() {
        var replica = member(committed: 10)
        var writes: [DiskOperation] = []
        #expect(replica.trim(below: 8, writes: &writes))
        #expect(deletes(writes).isEmpty, "the trim itself deletes nothing: steps do, in the background")
        #expect(ServerCore.belowFirstEntry(replica, 7)?.message.contains("first entry 8") == true)
        #expect(ServerCore.belowFirstEntry(replica, 8) == nil)
        writes = []
        #expect(replica.trimStep(stepMax: 3, writes: &writes))
        #expect(replica.trimStep(stepMax: 3, writes: &writes))
        #expect(!replica.trimStep(stepMax: 3, writes: &writes), "three steps of 3 reach 8")
        #expect(deletes(writes) == [3, 6, 8])
        #expect(replica.metadata.trimmedBelow == 8 && !replica.needsTrimStep)
        #expect(!replica.trim(below: 4, writes: &writes), "a first entry never moves down")
        // A member behind the trim deletes up to its committed entry, and no further.
        var lagging = member(committed: 3)
        writes = []
        _ = lagging.trim(below: 6, writes: &writes)
        while lagging.trimStep(stepMax: 100, writes: &writes) {}
        #expect(deletes(writes) == [3], "a member behind the trim keeps its committed entry: \(writes)")
        #expect(ServerCore.belowFirstEntry(lagging, 5)?.code == .outOfRange)
        // A stream that holds only Entry0 (a member that just joined) is done at once, and
        // keeps Entry0: it is the committed entry a restart recovers from.
        var joined = StreamReplica(
            uri: streamURI, metadata: StreamMetadata(topology: StreamTopology(version: 1, members: [node(1)])),
            window: [.zero])
        writes = []
        _ = joined.trim(below: 1_000_000, writes: &writes)
        #expect(deletes(writes).isEmpty && !joined.needsTrimStep && joined.committedEntry == .zero, "\(writes)")
    }

    @Test("A gap starts at the first entry, closes at it without its predecessor, or closes by the trim")
    func gapAndTrim() {
        var replica = member(committed: 2)
        var writes: [DiskOperation] = []
        _ = replica.trim(below: 5, writes: &writes)
        #expect(replica.applyCommitted(chainA[9], writes: &writes) == .gapCommitted)
        #expect(replica.metadata.gapStart == 5 && replica.metadata.gapEnd == 10, "nothing below 5 is fetched")
        // A batch 5...10 closes the gap: entry 5 is proven by entry 6's link, entry 4 is gone.
        let batch = Array(chainA[4...9])
        #expect(replica.applyBackfill(batch, writes: &writes) == nil)
        #expect(!replica.metadata.hasGap)
        #expect(writes.contains { if case .putEntry(_, .backfill, let e) = $0 { e.id == 5 } else { false } })
        // A trim at or past the gap's end closes it without a fetch.
        var gapped = member(committed: 2)
        _ = gapped.applyCommitted(chainA[9], writes: &writes)
        #expect(gapped.metadata.gapStart == 3)
        _ = gapped.trim(below: 7, writes: &writes)
        #expect(gapped.metadata.gapStart == 7 && gapped.metadata.hasGap)
        _ = gapped.trim(below: 10, writes: &writes)
        #expect(!gapped.metadata.hasGap)
    }
}
