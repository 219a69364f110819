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
}
