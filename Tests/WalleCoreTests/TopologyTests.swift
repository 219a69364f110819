import Testing
@testable import WalleCore
import WalleEnvironment

@Suite("Topology")
struct TopologyTests {
    let other = try! StreamURI("/b")

    @Test("Encoding round-trips, and entry N must hold version N ([TOPO-1])")
    func roundTrip() throws {
        let topology = Topology(version: 3, streams: [
            streamURI: StreamTopology(version: 2, members: [node(3), node(1)]),
            other: StreamTopology(version: 1, members: [node(2)]),
        ])
        let bytes = topology.encoded()
        #expect(try Topology.decode(bytes, entryID: 3) == topology)
        #expect(throws: WalleError.self) { try Topology.decode(bytes, entryID: 4) }
        #expect(throws: WalleError.self) { try Topology.decode(Array(bytes.dropLast()), entryID: 3) }
        #expect(try Topology.decode([], entryID: 0) == .empty)
    }

    @Test("A member refuses requests from the previous stream version (WS-2)")
    func previousVersionRefused() {
        var core = makeServer()
        var topology = Topology(
            version: 2, streams: [streamURI: StreamTopology(version: 2, members: [node(1), node(2), node(3)])])
        core.apply(topology)
        _ = core.takeEffects()
        let stale = InternalHeader(requestID: 1, stream: streamURI, target: node(1), streamVersion: 1)
        core.receive(.writerInfo(stale), from: node(2), at: at(1))
        #expect(core.takeEffects().replies.first?.reply.errorCode == .notFound)
        let next = InternalHeader(requestID: 2, stream: streamURI, target: node(1), streamVersion: 3)
        core.receive(.writerInfo(next), from: node(2), at: at(1))
        #expect(core.takeEffects().replies.first?.reply.errorCode == nil, "the next version is accepted")
        // Leaving the stream drops it, tables and all (WS-6).
        topology.version = 3
        topology.streams[streamURI] = StreamTopology(version: 3, members: [node(2), node(3), node(4)])
        core.apply(topology)
        let effects = core.takeEffects()
        #expect(core.metadata(of: streamURI) == nil)
        #expect(effects.contains {
            if case .disk(.write(let ops)) = $0 {
                return ops.contains { if case .dropStream = $0 { return true } else { return false } }
            } else {
                return false
            }
        })
    }

    @Test("An older stream version in a lagging answer never undoes a newer one")
    func olderVersionIgnored() {
        var core = makeServer()
        core.apply(Topology(
            version: 5, streams: [streamURI: StreamTopology(version: 3, members: [node(1), node(2), node(3)])]))
        core.apply(Topology(
            version: 6, streams: [streamURI: StreamTopology(version: 2, members: [node(2), node(3), node(4)])]))
        #expect(core.metadata(of: streamURI)?.topology.version == 3)
    }

    @Test("A member that joins an idle stream pulls the committed tail from a peer and backfills below it ([JOIN-1])")
    func joinPullsTail() {
        var core = ServerCore(
            id: node(4), configuration: ServerConfiguration(), recovered: RecoveredState(streams: []),
            random: CountingRandom(), time: at(0))
        core.apply(Topology(
            version: 2, streams: [streamURI: StreamTopology(version: 2, members: [node(1), node(2), node(4)])]))
        let probes = core.takeEffects().sends.filter { if case .writerInfo = $0.message { true } else { false } }
        #expect(Set(probes.map(\.target)) == [node(1), node(2)], "one WriterInfo per peer")
        let committed = chain(from: .zero, count: 5, writer: writerA)
        func info(_ server: UInt64, committed id: EntryID) -> WriterInfo {
            WriterInfo(
                writerID: writerA, writerAddress: "w", leaseMilliseconds: 1000, remainingLeaseMilliseconds: 0,
                streamVersion: 2, server: node(server), committedID: id, tailID: id, tailWriterID: writerA)
        }
        // A peer that has committed nothing is no reason to pull.
        let second = probes.first { $0.target == node(2) }!
        core.receive(.response(second.message.requestID, .writerInfo(info(2, committed: 0))), from: node(2), at: at(1))
        #expect(core.takeEffects().sends.isEmpty)
        let first = probes.first { $0.target == node(1) }!
        core.receive(.response(first.message.requestID, .writerInfo(info(1, committed: 5))), from: node(1), at: at(2))
        let pulls = core.takeEffects().sends
        #expect(pulls.count == 1 && pulls.first?.target == node(1))
        guard case .readEntries(let pullHeader, 5, 6)? = pulls.first?.message else {
            Issue.record("expected ReadEntries [5, 6) to node 1, got \(pulls)")
            return
        }
        core.receive(.response(pullHeader.requestID, .entries([committed[4]])), from: node(1), at: at(3))
        let applied = core.takeEffects()
        let backfill = (applied + settle(&core, applied, at: 4)).sends
        #expect(core.metadata(of: streamURI)?.committedID == 5, "the pulled entry is committed here")
        #expect(core.metadata(of: streamURI)?.hasGap == true, "with a gap below it")
        guard let ask = backfill.first, case .readEntries(let header, let start, 6) = ask.message else {
            Issue.record("expected a backfill ReadEntries up to 6, got \(backfill)")
            return
        }
        core.receive(
            .response(header.requestID, .entries(Array(committed[Int(start - 1)...]))), from: ask.target, at: at(5))
        _ = settle(&core, core.takeEffects(), at: 6)
        #expect(core.metadata(of: streamURI)?.hasGap == false, "the backfill closed the gap")
    }

    @Test("A joined member whose probes failed pulls the tail after a StreamStatus round it coordinates ([JOIN-1])")
    func statusRoundPullsTail() throws {
        var core = ServerCore(
            id: node(4), configuration: ServerConfiguration(), recovered: RecoveredState(streams: []),
            random: CountingRandom(), time: at(0))
        core.apply(Topology(
            version: 2, streams: [streamURI: StreamTopology(version: 2, members: [node(1), node(2), node(4)])]))
        for probe in core.takeEffects().sends {
            let failure = Reply.failed(WalleError(.unavailable, "down"))
            core.receive(.response(probe.message.requestID, failure), from: probe.target, at: at(1))
        }
        #expect(core.takeEffects().sends.isEmpty, "a failed probe is not retried")
        core.receive(.streamStatus(30, streamURI), from: node(NodeID.clientBit | 9), at: at(10))
        let asks = core.takeEffects().sends.filter { if case .writerInfo = $0.message { true } else { false } }
        #expect(asks.count == 3)
        var last: [Effect] = []
        for ask in asks {
            let committed: EntryID = ask.target == node(1) ? 5 : ask.target == node(2) ? 3 : 0
            let info = WriterInfo(
                writerID: writerA, writerAddress: "w", leaseMilliseconds: 1000, remainingLeaseMilliseconds: 0,
                streamVersion: 2, server: ask.target, committedID: committed, tailID: committed,
                tailWriterID: writerA)
            core.receive(.response(ask.message.requestID, .writerInfo(info)), from: ask.target, at: at(11))
            last = core.takeEffects()
        }
        let pulls = last.sends.filter {
            if case .readEntries(_, 5, 6) = $0.message { true } else { false }
        }
        #expect(pulls.count == 1 && pulls.first?.target == node(1), "entry 5 from the furthest peer: \(last.sends)")
    }

    @Test("A root entry that is not a topology of its own version is refused, from a client or a server ([TOPO-2])")
    func rootEntriesAreTopologies() throws {
        let root = try StreamURI("/cluster/root")
        var configuration = ServerConfiguration()
        configuration.topologySource = TopologySource(rootStream: root, rootMembers: [node(1), node(2), node(3)])
        var core = makeServer(configuration: configuration)
        core.createStream(root, topology: StreamTopology(version: 1, members: [node(1), node(2), node(3)]))
        _ = core.takeEffects()
        let valid = Topology(version: 1, streams: [root: StreamTopology(version: 1, members: [node(1)])]).encoded()
        func entry(_ data: [UInt8], id: EntryID = 1) -> Entry {
            Entry(id: id, writerID: writerA, checksum: chainChecksum(previous: 0, data: data), data: data)
        }
        func internalPut(_ entry: Entry, requestID: RequestID) -> Reply? {
            let header = InternalHeader(requestID: requestID, stream: root, target: node(1), streamVersion: 1)
            let put = Message.putEntryInternal(header, .write, entry, committedID: 0, committedChecksum: 0)
            core.receive(put, from: node(2), at: at(1))
            return core.takeEffects().replies.first?.reply
        }
        let garbage = internalPut(entry([0xFF, 0x01, 0x02]), requestID: 1)
        #expect(garbage?.errorCode == .invalidArgument)
        #expect("\(String(describing: garbage))".contains("root entry 1 is not a topology"))
        #expect(internalPut(entry(valid, id: 2), requestID: 2)?.errorCode == .invalidArgument, "version 1 in entry 2")
        #expect(internalPut(entry(valid), requestID: 3)?.errorCode != .invalidArgument, "a topology passes")
        let client = node(NodeID.clientBit | 9)
        let put = Message.putEntry(4, root, committedID: 0, committedChecksum: 0, entry([7, 7, 7]))
        core.receive(put, from: client, at: at(2))
        #expect(core.takeEffects().replies.first?.reply.errorCode == .invalidArgument, "a client's put too")
        let restamp = InternalHeader(requestID: 5, stream: root, target: node(1), streamVersion: 1)
        core.receive(.restampEntries(restamp, [entry([1, 2])]), from: node(2), at: at(3))
        #expect(core.takeEffects().replies.first?.reply.errorCode == .invalidArgument, "and a re-stamp")
    }
}
