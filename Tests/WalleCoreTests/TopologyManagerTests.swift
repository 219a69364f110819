import Testing
@testable import WalleCore
import WalleEnvironment

/// The topology manager on its own: writer events and status answers in, actions out.
@Suite("Topology manager: one change at a time, the waits before each")
struct TopologyManagerTests {
    let writer = WriterID(ts: 10, id: 7)
    let initial = Topology(
        version: 1, streams: [streamURI: StreamTopology(version: 1, members: [node(1), node(2), node(3)])])

    func makeManager() -> TopologyManager {
        TopologyManager(configuration: ManagerConfiguration(initial: initial), random: CountingRandom())
    }

    /// Claims the root stream at `tail` (Entry0 when nil) and returns the actions of the claim.
    func claim(_ manager: inout TopologyManager, tail: Entry = .zero) -> [ManagerAction] {
        #expect(manager.start().schedules(.claim))
        let claiming = manager.timerFired(.claim, writerCanClaim: true)
        #expect(claiming.contains { if case .claimRoot = $0 { true } else { false } })
        return manager.writerEvent(.claimed(writer, tail: tail))
    }

    /// A root entry holding `topology`.
    func rootEntry(_ topology: Topology) -> Entry {
        Entry(id: topology.version, writerID: writer, checksum: 0, data: topology.encoded())
    }

    /// A manager that holds `initial` committed, nothing pending.
    func claimedManager() -> TopologyManager {
        var manager = makeManager()
        _ = claim(&manager, tail: rootEntry(initial))
        return manager
    }

    func info(
        _ server: UInt64, version: UInt64 = 1, committed: EntryID = 10, tail: EntryID = 10, tailWriter: WriterID? = nil,
        gap: Bool = false
    ) -> WriterInfo {
        WriterInfo(
            writerID: writer, writerAddress: "w", leaseMilliseconds: 1_000, remainingLeaseMilliseconds: 500,
            streamVersion: version, server: node(server), committedID: committed, tailID: tail,
            tailWriterID: tailWriter ?? writer, hasGap: gap)
    }

    /// Answers the status call that is out with `infos`.
    func answer(
        _ manager: inout TopologyManager, _ actions: [ManagerAction], _ infos: [WriterInfo]
    ) -> [ManagerAction] {
        guard let (requestID, _) = actions.statusCall, let member = actions.statusTarget else {
            Issue.record("a status call is out")
            return []
        }
        return manager.statusAnswered(.response(requestID, .streamStatus(infos)), from: member) ?? []
    }

    @Test("A claim that finds the root stream empty writes the initial topology as version 1")
    func bootstrap() throws {
        var manager = makeManager()
        let actions = claim(&manager)
        guard case .putTopology(let bytes, let version)? = actions.first else {
            Issue.record("the claim of an empty root stream puts version 1: \(actions)")
            return
        }
        #expect(version == 1 && bytes == initial.encoded())
        let entry = rootEntry(initial)
        #expect(manager.topologyPut(entry).count == 1)
        #expect(!manager.isIdle)
        let committed = manager.writerEvent(.putAcknowledged(entry))
        #expect(committed.committedTopologies == [initial])
        #expect(manager.topology == initial && manager.isIdle)
    }

    @Test("Changes are made one at a time: the second is asked about only once the first is acknowledged")
    func oneChangeAtATime() {
        var manager = claimedManager()
        let ask = manager.enqueue([.add(streamURI, node(4)), .add(streamURI, node(5))])
        #expect(ask.statusCall?.uri == streamURI)
        let put = answer(&manager, ask, [info(1), info(2), info(3)])
        guard case .putTopology(let bytes, 2)? = put.first else {
            Issue.record("a majority at the current version lets the add go ahead: \(put)")
            return
        }
        let next = try? Topology.decode(bytes, entryID: 2)
        #expect(next?.streams[streamURI] == StreamTopology(version: 2, members: [node(1), node(2), node(3), node(4)]))
        #expect(put.statusCall == nil, "no second change is asked about while one is written")
        let entry = Entry(id: 2, writerID: writer, checksum: 0, data: bytes)
        _ = manager.topologyPut(entry)
        let after = manager.writerEvent(.putAcknowledged(entry))
        #expect(after.changes == [.add(streamURI, node(4))])
        #expect(after.statusCall != nil, "the next change is asked about after the acknowledgement")
        #expect(manager.pendingChanges == [.add(streamURI, node(5))])
    }

    @Test("A change waits for a majority of the members at the current stream version")
    func waitsForTheVersion() {
        var manager = claimedManager()
        let ask = manager.enqueue([.add(streamURI, node(4))])
        // Two of three answer from an older version, one is a stranger: not a majority.
        let refused = answer(&manager, ask, [info(1), info(2, version: 0), info(9)])
        #expect(refused.schedules(.retry) && refused.putVersion == nil)
        let again = manager.timerFired(.retry, writerCanClaim: false)
        #expect(again.statusCall != nil, "the retry asks again")
        // Strangers do not count toward the majority.
        #expect(answer(&manager, again, [info(1), info(8), info(9)]).putVersion == nil)
        let third = manager.timerFired(.retry, writerCanClaim: false)
        #expect(answer(&manager, third, [info(1), info(3), info(9)]).putVersion == 2)
    }

    @Test("A removal waits for the remaining members to hold the target, fixed at the first answer")
    func removalTargetIsFixed() {
        var manager = claimedManager()
        let ask = manager.enqueue([.remove(streamURI, node(3))])
        // All at the current version, tails at 10 but members 1 and 2 have a gap: not ready.
        let first = answer(&manager, ask, [info(1, gap: true), info(2, gap: true), info(3)])
        #expect(first.putVersion == nil)
        // The writer went on to 50: the target stays at 10, and members 1 and 2 at 12 suffice.
        let second = manager.timerFired(.retry, writerCanClaim: false)
        let put = answer(&manager, second, [info(1, tail: 12), info(2, tail: 12), info(3, tail: 50)])
        #expect(put.putVersion == 2, "the target is where the first answer put it, not the new tail")
    }

    @Test("A removal needs the newest writer's stamp on the remaining majority, not only the ids")
    func removalNeedsTheNewestStamp() {
        var manager = claimedManager()
        let newer = WriterID(ts: 20, id: 1)
        let ask = manager.enqueue([.remove(streamURI, node(3))])
        // Member 3 holds the newest writer's entries to 10; 1 and 2 hold ids to 10 from an older one.
        let put = answer(&manager, ask, [info(1), info(2), info(3, tailWriter: newer)])
        #expect(put.putVersion == nil)
    }

    @Test("The settled target ignores the tails of fenced writers")
    func settledIgnoresFencedTails() {
        let newest = WriterID(ts: 30, id: 1)
        let old = WriterID(ts: 5, id: 1)
        let target = TopologyManager.settled([
            info(1, committed: 8, tail: 40, tailWriter: old), info(2, committed: 8, tail: 12, tailWriter: newest),
            info(3, committed: 9, tail: 9, tailWriter: old),
        ])
        #expect(target == TopologyManager.SettledTarget(id: 12, newestWriter: newest))
    }

    @Test("A change whose version committed while its acknowledgement was lost is dropped on the next claim")
    func lostAcknowledgement() {
        var manager = makeManager()
        _ = manager.enqueue([.add(streamURI, node(4)), .remove(streamURI, node(1))])
        var done = initial
        done.version = 2
        done.streams[streamURI] = StreamTopology(version: 2, members: [node(1), node(2), node(3), node(4)])
        let actions = claim(&manager, tail: rootEntry(done))
        #expect(manager.pendingChanges == [.remove(streamURI, node(1))])
        #expect(actions.committedTopologies == [done])
        #expect(actions.statusCall != nil)
    }

    @Test("A closed writer gives up the claim; the next claim comes 50 to 500 ms later")
    func closedWriterClaimsAgain() {
        var manager = claimedManager()
        let ask = manager.enqueue([.add(streamURI, node(4))])
        let actions = manager.writerEvent(.closed(WalleError(.failedPrecondition, "fenced by a newer writer")))
        #expect(!manager.isClaimed)
        guard case .schedule(.claim, let delay)? = actions.first else {
            Issue.record("a closed writer schedules a claim: \(actions)")
            return
        }
        #expect(delay >= .milliseconds(50) && delay <= .milliseconds(500))
        // The status answer of the lost claim's round is no longer the manager's.
        #expect(answer(&manager, ask, [info(1), info(2), info(3)]).isEmpty)
        #expect(manager.timerFired(.claim, writerCanClaim: false).isEmpty, "a busy writer is not claimed again")
    }

    @Test("A status call that times out asks the next member; a stale timeout does nothing")
    func statusTimeout() {
        var manager = claimedManager()
        let first = manager.enqueue([.add(streamURI, node(4))])
        guard let (id, _) = first.statusCall, let firstTarget = first.statusTarget else {
            Issue.record("a status call is out")
            return
        }
        let second = manager.timerFired(.statusTimeout(id), writerCanClaim: false)
        #expect(second.statusTarget != nil && second.statusTarget != firstTarget)
        #expect(manager.timerFired(.statusTimeout(id), writerCanClaim: false).isEmpty)
        let late = manager.statusAnswered(.response(id, .streamStatus([])), from: firstTarget)
        #expect(late == nil, "the timed-out call's answer is not taken")
    }

    @Test("A root entry that does not decode, or a topology over one entry, is reported and not written")
    func invalidTopologies() {
        var manager = makeManager()
        let garbage = Entry(id: 3, writerID: writer, checksum: 0, data: [1, 2, 3])
        #expect(claim(&manager, tail: garbage).isInvalid)

        var huge = initial
        // About 100 bytes a stream: 12,000 streams are over the 1 MiB an entry holds.
        let name = String(repeating: "x", count: 64)
        for index in 0..<12_000 {
            huge.streams[try! StreamURI("/big/\(name)_\(index)")] =
                StreamTopology(version: 1, members: [node(1), node(2), node(3)])
        }
        var big = TopologyManager(configuration: ManagerConfiguration(initial: huge), random: CountingRandom())
        let actions = claim(&big)
        #expect(actions.isInvalid && actions.putVersion == nil)
    }

    @Test("A refused put is tried again, and a removal keeps its target")
    func refusedPut() {
        var manager = claimedManager()
        let ask = manager.enqueue([.remove(streamURI, node(3))])
        let put = answer(&manager, ask, [info(1), info(2), info(3)])
        #expect(put.putVersion == 2)
        #expect(manager.topologyPutRefused().schedules(.retry))
        let again = manager.timerFired(.retry, writerCanClaim: false)
        // The target (10) holds: members 1 and 2 at 10 are enough even though 3 is now at 90.
        #expect(answer(&manager, again, [info(1), info(2), info(3, tail: 90)]).putVersion == 2)
    }
}

/// Requests to the manager: answered once the version that makes them is acknowledged.
@Suite("Topology manager: requests from operators and clients")
struct TopologyManagerRequestTests {
    let base = TopologyManagerTests()
    let operatorNode = NodeID(NodeID.clientBit | 5)
    let newStream = try! StreamURI("/orders/new")

    func route(_ id: RequestID) -> Route { Route(node: operatorNode, requestID: id) }

    @Test("A manager that holds no claim answers Unavailable")
    func unclaimed() {
        var manager = base.makeManager()
        #expect(manager.request(route(1), .fetch).answers.first?.1.errorCode == .unavailable)
    }

    @Test("Fetch answers the claimed root entry at once")
    func fetch() {
        var manager = base.claimedManager()
        let answers = manager.request(route(1), .fetch).answers
        #expect(answers.count == 1 && answers.first?.0 == route(1))
        guard case .entry(let entry)? = answers.first?.1 else {
            Issue.record("fetch answers an entry: \(answers)")
            return
        }
        #expect((try? Topology.decode(entry.data, entryID: entry.id)) == base.initial)
    }

    @Test("A new stream is written at once and answered only after its version is acknowledged; a retry joins it")
    func createStream() throws {
        var manager = base.claimedManager()
        let members = [node(3), node(1), node(2)]
        let first = manager.request(route(1), .createStream(newStream, members: members))
        guard case .putTopology(let bytes, 2)? = first.first(where: \.isPut) else {
            Issue.record("a new stream needs no status round: \(first)")
            return
        }
        #expect(first.answers.isEmpty, "no answer before the acknowledgement")
        let other = Route(node: NodeID(NodeID.clientBit | 6), requestID: 2)
        #expect(manager.request(other, .createStream(newStream, members: members)).isEmpty, "a second request joins")
        let entry = Entry(id: 2, writerID: base.writer, checksum: 9, data: bytes)
        #expect(manager.topologyPut(entry).answers.isEmpty)
        let done = manager.writerEvent(.putAcknowledged(entry))
        #expect(done.answers.map { $0.0 } == [route(1), other])
        #expect(manager.topology.streams[newStream] == StreamTopology(version: 1, members: members))
        // Asked again: the same members answer at once, other members are refused.
        #expect(manager.request(route(3), .createStream(newStream, members: members)).answers.first?.1.isEntry == true)
        let changed = manager.request(route(4), .createStream(newStream, members: [node(1)]))
        #expect(changed.answers.first?.1.errorCode == .failedPrecondition)
    }

    @Test("Adds and removes are checked against the topology: unknown stream, already so, last member, bad id")
    func membershipRequests() {
        var manager = base.claimedManager()
        #expect(manager.request(route(1), .addMember(newStream, node(4))).answers.first?.1.errorCode == .notFound)
        #expect(manager.request(route(2), .addMember(streamURI, node(2))).answers.first?.1.isEntry == true)
        #expect(manager.request(route(3), .removeMember(streamURI, node(9))).answers.first?.1.isEntry == true)
        let client = manager.request(route(4), .addMember(streamURI, operatorNode))
        #expect(client.answers.first?.1.errorCode == .invalidArgument)
        var single = TopologyManager(
            configuration: ManagerConfiguration(initial: Topology(
                version: 1, streams: [streamURI: StreamTopology(version: 1, members: [node(1)])])),
            random: CountingRandom())
        _ = base.claim(&single, tail: base.rootEntry(single.configuration.initial))
        let last = single.request(route(5), .removeMember(streamURI, node(1)))
        #expect(last.answers.first?.1.errorCode == .failedPrecondition)
        #expect(manager.pendingChanges.isEmpty, "no refused request was queued")
    }

    @Test("An add waits for the status round and its acknowledgement before it is answered")
    func addIsAnsweredAfterAcknowledgement() {
        var manager = base.claimedManager()
        let ask = manager.request(route(1), .addMember(streamURI, node(4)))
        #expect(ask.statusCall != nil && ask.answers.isEmpty)
        let put = base.answer(&manager, ask, [base.info(1), base.info(2), base.info(3)])
        guard case .putTopology(let bytes, 2)? = put.first(where: \.isPut) else {
            Issue.record("the add goes ahead: \(put)")
            return
        }
        let entry = Entry(id: 2, writerID: base.writer, checksum: 9, data: bytes)
        #expect(manager.topologyPut(entry).answers.isEmpty)
        let done = manager.writerEvent(.putAcknowledged(entry))
        #expect(done.answers.count == 1 && done.answers.first?.1.isEntry == true)
    }

    @Test("A lost claim tells the waiting requests to ask again")
    func lostClaim() {
        var manager = base.claimedManager()
        _ = manager.request(route(1), .addMember(streamURI, node(4)))
        let closed = manager.writerEvent(.closed(WalleError(.failedPrecondition, "fenced")))
        #expect(closed.answers.map { $0.0 } == [route(1)])
        #expect(closed.answers.first?.1.errorCode == .unavailable)
    }

    @Test("Requests are decided against the topology the queued changes will make")
    func decidedAgainstTheQueue() {
        var manager = base.claimedManager()
        _ = manager.request(route(1), .removeMember(streamURI, node(3)))
        _ = manager.request(route(2), .removeMember(streamURI, node(2)))
        // With 3 and 2 on their way out, 1 is the last member: refused now, not stuck later.
        let last = manager.request(route(3), .removeMember(streamURI, node(1)))
        #expect(last.answers.first?.1.errorCode == .failedPrecondition)
        // Adding 3 back while its removal waits is a change of its own, made after it.
        #expect(manager.request(route(4), .addMember(streamURI, node(3))).answers.isEmpty)
        #expect(manager.pendingChanges == [
            .remove(streamURI, node(3)), .remove(streamURI, node(2)), .add(streamURI, node(3)),
        ])
    }

    @Test("A status answer counts only from the member asked; a retry replaces its own wait")
    func forgedAnswerAndRetries() {
        var manager = base.claimedManager()
        let ask = manager.request(route(1), .addMember(streamURI, node(4)))
        guard let (id, _) = ask.statusCall, let member = ask.statusTarget else {
            Issue.record("a status call is out")
            return
        }
        let all = [base.info(1), base.info(2), base.info(3)]
        #expect(manager.statusAnswered(.response(id, .streamStatus(all)), from: operatorNode) == nil)
        for retry in 2...20 { _ = manager.request(route(RequestID(retry)), .addMember(streamURI, node(4))) }
        let put = manager.statusAnswered(.response(id, .streamStatus(all)), from: member) ?? []
        guard case .putTopology(let bytes, 2)? = put.first(where: \.isPut) else {
            Issue.record("the member's own answer lets the add go ahead: \(put)")
            return
        }
        let entry = Entry(id: 2, writerID: base.writer, checksum: 9, data: bytes)
        _ = manager.topologyPut(entry)
        let done = manager.writerEvent(.putAcknowledged(entry)).answers
        #expect(done.map { $0.0 } == [route(20)], "one wait per asking node, the newest")
    }

    @Test("A lost claim drops the changes requests asked for, and keeps the host's own")
    func lostClaimDropsRequestedChanges() {
        var manager = base.claimedManager()
        _ = manager.enqueue([.add(streamURI, node(5))])
        _ = manager.request(route(1), .addMember(streamURI, node(4)))
        _ = manager.writerEvent(.closed(WalleError(.failedPrecondition, "fenced")))
        #expect(manager.pendingChanges == [.add(streamURI, node(5))])
    }

    @Test("A change that would make the topology over one entry is refused with ResourceExhausted")
    func oversizedTopology() throws {
        // About 235 bytes a stream: 4,450 streams of 16 members come close to the 1 MiB limit.
        let members = (1...16).map { node(UInt64($0)) }
        var near = base.initial
        let name = String(repeating: "x", count: 80)
        for index in 0..<4_450 {
            near.streams[try StreamURI("/big/\(name)_\(index)")] = StreamTopology(version: 1, members: members)
        }
        var manager = TopologyManager(configuration: ManagerConfiguration(initial: near), random: CountingRandom())
        _ = base.claim(&manager, tail: base.rootEntry(near))
        var refused: Reply?
        for index in 0..<200 where refused == nil {
            let uri = try StreamURI("/more/\(name)_\(index)")
            let request = manager.request(route(RequestID(index)), .createStream(uri, members: members))
            if let put = request.first(where: \.isPut), case .putTopology(let bytes, let version) = put {
                let entry = Entry(id: version, writerID: base.writer, checksum: 1, data: bytes)
                _ = manager.topologyPut(entry)
                _ = manager.writerEvent(.putAcknowledged(entry))
            }
            refused = request.answers.first { $0.1.errorCode == .resourceExhausted }?.1
        }
        #expect(refused != nil, "the topology never filled")
        #expect(manager.isIdle, "the refused change is not left in the queue")
    }

    @Test("The size check counts the bytes each change adds, the same as encoding would")
    func encodedSizeArithmetic() throws {
        let topology = base.initial
        #expect(topology.encodedByteCount == topology.encoded().count)
        #expect(Topology.empty.encodedByteCount == Topology.empty.encoded().count)
        let changes: [TopologyChange] = [
            .add(streamURI, node(4)), .remove(streamURI, node(2)),
            .create(try StreamURI("/sized/stream_two"), members: [node(1), node(2)]),
        ]
        for change in changes {
            let next = TopologyManager.applying(change, to: topology)
            #expect(next.encoded().count == topology.encodedByteCount + change.encodedGrowth(in: topology), "\(change)")
        }
    }

    @Test("The queue is bounded: past pendingChangesMax a request is refused with ResourceExhausted")
    func queueBound() throws {
        var configuration = ManagerConfiguration(initial: base.initial)
        configuration.pendingChangesMax = 2
        var manager = TopologyManager(configuration: configuration, random: CountingRandom())
        _ = base.claim(&manager, tail: base.rootEntry(base.initial))
        for index in 0..<2 {
            let uri = try StreamURI("/bound/s\(index)")
            _ = manager.request(route(RequestID(index)), .createStream(uri, members: [node(1)]))
        }
        let refused = manager.request(route(9), .createStream(try StreamURI("/bound/s9"), members: [node(1)]))
        #expect(refused.answers.first?.1.errorCode == .resourceExhausted)
        #expect(manager.pendingChanges.count == 2)
    }
}

/// Every root member of a real cluster runs a manager; all but the writer stand by.
@Suite("Topology manager: standing by until the root lease runs out")
struct TopologyManagerStandbyTests {
    let base = TopologyManagerTests()
    let root = try! StreamURI("/cluster/root")
    let rootMembers = [node(1), node(2), node(3)]

    func standby() -> TopologyManager {
        var configuration = ManagerConfiguration(initial: base.initial)
        configuration.claimPolicy = .whenLeaseExpired(root: root, members: rootMembers)
        var manager = TopologyManager(configuration: configuration, random: CountingRandom())
        _ = manager.start()
        return manager
    }

    func probeID(_ actions: [ManagerAction]) -> (RequestID, NodeID)? {
        for case .send(.writerStatus(let id, let uri), let target) in actions where uri == root { return (id, target) }
        return nil
    }

    func info(remaining: Int64, writer: WriterID = WriterID(ts: 5, id: 1)) -> Reply {
        .writerInfo(WriterInfo(
            writerID: writer, writerAddress: "manager@2", leaseMilliseconds: 1_000,
            remainingLeaseMilliseconds: remaining, streamVersion: 1))
    }

    @Test("A standing-by manager probes instead of claiming, and looks again when a live lease would end")
    func liveLease() {
        var manager = standby()
        let first = manager.timerFired(.claim, writerCanClaim: true)
        guard let (id, member) = probeID(first) else {
            Issue.record("the claim timer probes: \(first)")
            return
        }
        #expect(!first.contains { if case .claimRoot = $0 { true } else { false } })
        let forged = manager.statusAnswered(.response(id, info(remaining: 0)), from: node(9))
        #expect(forged == nil, "only the member asked")
        let later = manager.statusAnswered(.response(id, info(remaining: 700)), from: member) ?? []
        guard case .schedule(.claim, let delay)? = later.first else {
            Issue.record("a live lease schedules the next probe: \(later)")
            return
        }
        #expect(delay >= .milliseconds(700) && delay <= .milliseconds(950))
        #expect(!manager.isClaimed)
    }

    @Test("A lease that ran out, or no writer at all, makes the manager claim")
    func expiredLease() {
        for reply in [info(remaining: 0), info(remaining: -40), info(remaining: 900, writer: .zero)] {
            var manager = standby()
            guard let (id, member) = probeID(manager.timerFired(.claim, writerCanClaim: true)) else {
                Issue.record("no probe")
                continue
            }
            let actions = manager.statusAnswered(.response(id, reply), from: member) ?? []
            #expect(actions.contains { if case .claimRoot = $0 { true } else { false } }, "\(reply)")
        }
    }

    @Test("A probe that times out or is refused moves on to another root member")
    func probeTimeout() {
        var manager = standby()
        guard let (id, target) = probeID(manager.timerFired(.claim, writerCanClaim: true)) else {
            Issue.record("no probe")
            return
        }
        #expect(manager.timerFired(.probeTimeout(id), writerCanClaim: true).contains {
            if case .schedule(.claim, _) = $0 { true } else { false }
        })
        #expect(manager.statusAnswered(.response(id, info(remaining: 0)), from: target) == nil, "a stale answer")
        guard let (next, other) = probeID(manager.timerFired(.claim, writerCanClaim: true)) else {
            Issue.record("no second probe")
            return
        }
        #expect(other != target)
        let down = Reply.failed(WalleError(.unavailable, "down"))
        let refused = manager.statusAnswered(.response(next, down), from: other) ?? []
        #expect(refused.contains { if case .schedule(.claim, _) = $0 { true } else { false } })
    }
}

extension ManagerAction {
    var isPut: Bool {
        if case .putTopology = self { return true }
        return false
    }
}

extension Reply {
    var isEntry: Bool {
        if case .entry = self { return true }
        return false
    }
}

extension Array where Element == ManagerAction {
    var answers: [(Route, Reply)] { compactMap { if case .answer(let r, let reply) = $0 { (r, reply) } else { nil } } }

    var statusCall: (RequestID, uri: StreamURI)? {
        for case .send(.streamStatus(let id, let uri), _) in self { return (id, uri) }
        return nil
    }

    var statusTarget: NodeID? {
        for case .send(.streamStatus, let target) in self { return target }
        return nil
    }

    var putVersion: UInt64? {
        for case .putTopology(_, let version) in self { return version }
        return nil
    }

    var committedTopologies: [Topology] { compactMap { if case .topologyCommitted(let t) = $0 { t } else { nil } } }

    var changes: [TopologyChange] { compactMap { if case .changeCommitted(let c, _) = $0 { c } else { nil } } }

    var isInvalid: Bool { contains { if case .invalid = $0 { true } else { false } } }

    func schedules(_ timer: ManagerTimer) -> Bool {
        contains { if case .schedule(timer, _) = $0 { true } else { false } }
    }
}
