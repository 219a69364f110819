import Testing
@testable import WalleCore
import WalleEnvironment

func address(_ text: String) -> ServerAddress { try! ServerAddress(parsing: text) }

@Suite("Servers and their addresses in the topology ([MEM-1])")
struct RegistrationTests {
    let base = TopologyManagerTests()

    @Test("Addresses: names, IPv4 and bracketed IPv6 parse and print back; anything else is refused")
    func addresses() {
        for text in ["db1.example.com:7001", "127.0.0.1:1", "[::1]:65535", "localhost:7000", "[fe80::1:2]:9"] {
            #expect((try? ServerAddress(parsing: text))?.description == text, "\(text)")
        }
        let tooLong = String(repeating: "a", count: 260) + ":1"
        let bad = [
            "", "host", "host:", ":7001", "host:0", "host:65536", "host:123456", "a b:1", "[::1:7001", "[]:1",
            "héllo:1", "host:+1", "host:-1", "[::g]:1", "a_b:1", tooLong,
        ]
        for text in bad {
            #expect(throws: WalleError.self, "\(text)") { try ServerAddress(parsing: text) }
        }
        #expect(Boundary.checkTopologyRequest(.registerServer(node(4), address: "db4"))?.code == .invalidArgument)
        #expect(Boundary.checkTopologyRequest(.registerServer(NodeID(0), address: "db4:1"))?.code == .invalidArgument)
    }

    @Test("The server table round-trips; a topology without one encodes as before the table existed")
    func encoding() throws {
        let plain = base.initial
        var registered = plain
        registered.servers = [node(2): address("db2:7002"), node(1): address("[::1]:7001")]
        let bytes = registered.encoded()
        #expect(try Topology.decode(bytes, entryID: 1) == registered)
        #expect(bytes.count == registered.encodedByteCount && plain.encoded().count == plain.encodedByteCount)
        #expect(Array(bytes.prefix(plain.encoded().count)) == plain.encoded(), "the table is appended")
        #expect(try Topology.decode(plain.encoded(), entryID: 1).servers.isEmpty)
    }

    @Test("A server table that lies is refused: empty, out of order, twice, a client's id, a bad address, short")
    func hostileTables() {
        func table(_ rows: [(UInt64, String)], count: UInt32? = nil) -> [UInt8] {
            var writer = ByteWriter()
            writer.raw(base.initial.encoded())
            writer.u32(count ?? UInt32(rows.count))
            for (id, text) in rows {
                writer.u64(id)
                writer.string16(text)
            }
            return writer.bytes
        }
        let lies: [[UInt8]] = [
            table([]), table([(2, "a:1"), (1, "b:1")]), table([(1, "a:1"), (1, "b:1")]),
            table([(NodeID.clientBit | 1, "a:1")]), table([(0, "a:1")]), table([(1, "nohost")]),
            table([(1, "a:1")], count: 5), table([(1, "a:1")], count: UInt32.max),
        ]
        for bytes in lies {
            #expect(throws: WalleError.self) { try Topology.decode(bytes, entryID: 1) }
        }
        #expect((try? Topology.decode(table([(1, "a:1"), (2, "b:2")]), entryID: 1))?.servers.count == 2)
    }

    @Test("A server registers itself at once, without a status round; nobody else may register it")
    func register() {
        var manager = base.claimedManager()
        let server = Route(node: node(4), requestID: 1)
        let put = manager.request(server, .registerServer(node(4), address: "db4:7004"))
        guard case .putTopology(let bytes, 2)? = put.first(where: \.isPut) else {
            Issue.record("a registration is written at once: \(put)")
            return
        }
        #expect(put.statusCall == nil && put.answers.isEmpty)
        let entry = Entry(id: 2, writerID: base.writer, checksum: 9, data: bytes)
        _ = manager.topologyPut(entry)
        let done = manager.writerEvent(.putAcknowledged(entry))
        #expect(done.answers.count == 1 && done.answers.first?.0 == server && done.answers.first?.1.isEntry == true)
        #expect(manager.topology.servers == [node(4): address("db4:7004")])
        #expect(manager.topology.streams == base.initial.streams, "no stream's version moves")
        #expect(manager.request(server, .registerServer(node(4), address: "db4:7004")).answers.first?.1.isEntry == true)
        let impostor = Route(node: node(5), requestID: 2)
        let refused = manager.request(impostor, .registerServer(node(4), address: "evil:1"))
        #expect(refused.answers.first?.1.errorCode == .permissionDenied)
        let malformed = manager.request(server, .registerServer(node(4), address: "db4"))
        #expect(malformed.answers.first?.1.errorCode == .invalidArgument)
        #expect(manager.isIdle)
    }

    @Test("Once servers register, a member change that names an unregistered server is refused with Unavailable")
    func unregisteredMembers() throws {
        var initial = base.initial
        initial.servers = [node(1): address("a:1"), node(2): address("b:2"), node(3): address("c:3")]
        var manager = TopologyManager(configuration: ManagerConfiguration(initial: initial), random: CountingRandom())
        _ = base.claim(&manager, tail: base.rootEntry(initial))
        let route = Route(node: NodeID(NodeID.clientBit | 5), requestID: 1)
        #expect(manager.request(route, .addMember(streamURI, node(4))).answers.first?.1.errorCode == .unavailable)
        let create = manager.request(route, .createStream(try StreamURI("/new"), members: [node(1), node(4)]))
        #expect(create.answers.first?.1.errorCode == .unavailable)
        #expect(manager.isIdle, "nothing was queued")
        // Registered, the same add goes ahead to its status round.
        let put = manager.request(Route(node: node(4), requestID: 2), .registerServer(node(4), address: "d:4"))
        guard case .putTopology(let bytes, 2)? = put.first(where: \.isPut) else {
            Issue.record("the registration is written: \(put)")
            return
        }
        let entry = Entry(id: 2, writerID: base.writer, checksum: 9, data: bytes)
        _ = manager.topologyPut(entry)
        _ = manager.writerEvent(.putAcknowledged(entry))
        #expect(manager.request(route, .addMember(streamURI, node(4))).statusCall != nil)
    }

    @Test("The size check counts what a registration adds: the table's count first, a changed address's difference")
    func registrationSize() {
        var topology = base.initial
        for change: TopologyChange in [
            .register(node(7), address: address("h:1")), .register(node(7), address: address("longer.example:2")),
            .register(node(8), address: address("[::1]:3")),
        ] {
            let next = TopologyManager.applying(change, to: topology)
            #expect(next.encoded().count == topology.encodedByteCount + change.encodedGrowth(in: topology), "\(change)")
            topology = next
        }
    }

    /// Server 4, not a root member, that advertises `db4:7004`.
    func registeringServer() -> ServerCore {
        var configuration = ServerConfiguration()
        configuration.deepChecksEnabled = true
        configuration.topologySource = TopologySource(
            rootStream: try! StreamURI("/cluster/root"), rootMembers: [node(1), node(2), node(3)])
        configuration.advertisedAddress = address("db4:7004")
        return ServerCore(
            id: node(4), configuration: configuration, recovered: RecoveredState(streams: []),
            random: CountingRandom(), time: at(0))
    }

    func registrations(_ effects: [Effect]) -> [(RequestID, NodeID)] {
        effects.sends.compactMap { send in
            guard case .topologyRequest(let id, .registerServer(node(4), "db4:7004")) = send.message else { return nil }
            return (id, send.target)
        }
    }

    @Test("A server asks one root member at a time until the topology lists its address; a refusal moves on")
    func serverRegisters() {
        var core = registeringServer()
        let plain = base.initial
        core.apply(plain)
        let first = registrations(core.takeEffects())
        #expect(first.count == 1)
        guard let (firstID, firstMember) = first.first else { return }
        // An answer from another node, or under another id, is not the registration's.
        core.receive(.response(firstID, .failed(WalleError(.unavailable, "no"))), from: node(9), at: at(1))
        core.receive(.response(firstID + 1, .failed(WalleError(.unavailable, "no"))), from: firstMember, at: at(1))
        #expect(registrations(core.takeEffects()).isEmpty)
        let notManager = WalleError(.unavailable, "not the manager")
        core.receive(.response(firstID, .failed(notManager)), from: firstMember, at: at(2))
        #expect(registrations(core.takeEffects()).isEmpty, "the next try waits")
        core.wake(at: at(200))
        let second = registrations(core.takeEffects())
        #expect(second.count == 1 && second.first?.1 != firstMember, "the next root member is asked")
        // No answer: the deadline asks the next one.
        core.wake(at: at(1300))
        let third = registrations(core.takeEffects())
        #expect(third.count == 1 && third.first?.1 != second.first?.1)
        guard let (thirdID, thirdMember) = third.first else { return }
        core.receive(.response(thirdID, .entry(base.rootEntry(plain))), from: thirdMember, at: at(1301))
        core.wake(at: at(5000))
        #expect(registrations(core.takeEffects()).isEmpty, "registered: nothing more is asked")
    }

    @Test("A topology that lists another address for the server makes it register again; the host learns the table")
    func serverCorrectsItsAddress() {
        var core = registeringServer()
        var listed = base.initial
        listed.version = 2
        listed.servers = [node(1): address("a:1"), node(4): address("db4:7004")]
        core.apply(listed)
        let effects = core.takeEffects()
        #expect(registrations(effects).isEmpty, "listed already")
        #expect(effects.contains { if case .servers(let table) = $0 { table == listed.servers } else { false } })
        var wrong = listed
        wrong.version = 3
        wrong.servers[node(4)] = address("evil:1")
        core.apply(wrong)
        let again = core.takeEffects()
        #expect(registrations(again).count == 1, "a wrong address is put right by the server itself")
        #expect(again.contains { if case .servers(let table) = $0 { table == wrong.servers } else { false } })
        var same = wrong
        same.version = 4
        core.apply(same)
        let reported = core.takeEffects().contains { if case .servers = $0 { true } else { false } }
        #expect(!reported, "reported on change only")
    }
}
