import Testing
@testable import WalleCore
import WalleEnvironment

/// A writer follows the topology itself: nothing hands it a member list.
@Suite("Writer client: following the topology")
struct FollowTopologyTests {
    let root = try! StreamURI("/cluster/root")
    let rootMembers = [node(1), node(2), node(3)]

    func instant(_ ms: Int64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }

    func followingWriter() -> WriterClient {
        var configuration = WriterConfiguration(address: "c", lease: .seconds(1))
        configuration.topologySource = TopologySource(rootStream: root, rootMembers: rootMembers)
        return WriterClient(
            id: node(100), uri: streamURI, servers: [node(1), node(2), node(3)], configuration: configuration)
    }

    /// The polls of the round just sent, by target.
    func polls(_ effects: [Effect]) -> [NodeID: (RequestID, EntryID)] {
        var polls: [NodeID: (RequestID, EntryID)] = [:]
        for send in effects.sends {
            if case .pollStream(let requestID, let uri, let from) = send.message, uri == root {
                polls[send.target] = (requestID, from)
            }
        }
        return polls
    }

    func rootEntry(_ topology: Topology) -> Reply {
        .entry(Entry(id: topology.version, writerID: writerA, checksum: 1, data: topology.encoded()))
    }

    @Test("The first claim starts long polls of every root member; a newer stream version moves routing")
    func followsMembers() {
        var client = followingWriter()
        client.claim(now: instant(0))
        let round = polls(client.takeEffects())
        #expect(Set(round.keys) == Set(rootMembers) && round.values.allSatisfy { $0.1 == 1 }, "round: \(round)")

        let moved = Topology(version: 4, streams: [
            root: StreamTopology(version: 1, members: rootMembers),
            streamURI: StreamTopology(version: 3, members: [node(1), node(2), node(4)]),
        ])
        let (requestID, _) = round[node(2)]!
        client.receive(.response(requestID, rootEntry(moved)), from: node(2), now: instant(10))
        #expect(client.servers == [node(1), node(2), node(4)])
        let next = polls(client.takeEffects())
        #expect(next.count == 3 && next.values.allSatisfy { $0.1 == 5 }, "the next round asks for version 5")

        // A lagging root member's older topology, with an older stream version, changes nothing.
        let older = Topology(version: 5, streams: [
            root: StreamTopology(version: 1, members: rootMembers),
            streamURI: StreamTopology(version: 2, members: [node(1), node(2), node(3)]),
        ])
        client.receive(.response(next[node(3)]!.0, rootEntry(older)), from: node(3), now: instant(20))
        #expect(client.servers == [node(1), node(2), node(4)], "an older stream version never undoes a newer one")
    }

    @Test("A late poll answer is nobody's: it neither routes nor closes the writer")
    func lateAnswers() {
        var client = followingWriter()
        client.claim(now: instant(0))
        let round = polls(client.takeEffects())
        let moved = Topology(version: 2, streams: [streamURI: StreamTopology(version: 2, members: [node(5)])])
        client.receive(.response(round[node(1)]!.0, rootEntry(moved)), from: node(1), now: instant(1))
        _ = client.takeEffects()
        // The round is over: node 2's answer, a final refusal, comes late.
        let refusal = WalleError(.invalidArgument, "late")
        client.receive(.response(round[node(2)]!.0, .failed(refusal)), from: node(2), now: instant(2))
        #expect(client.phase == .claiming, "a late poll answer does not close the writer")
        #expect(client.servers == [node(5)])
    }

    @Test("A round nobody answers is given up at its deadline and started again")
    func roundTimeout() {
        var client = followingWriter()
        client.claim(now: instant(0))
        #expect(polls(client.takeEffects()).count == 3)
        let deadline = instant(0) + client.configuration.topologyRoundTimeout
        #expect(client.followerWakeAt == deadline)
        client.wake(now: deadline)
        #expect(polls(client.takeEffects()).count == 3, "a new round at once")
    }

    @Test("A changed server table goes to the host as an effect")
    func serversEffect() {
        var client = followingWriter()
        client.claim(now: instant(0))
        let round = polls(client.takeEffects())
        let table = [node(1): address("db1:7001"), node(4): address("db4:7004")]
        let topology = Topology(
            version: 2, streams: [streamURI: StreamTopology(version: 1, members: rootMembers)], servers: table)
        client.receive(.response(round[node(1)]!.0, rootEntry(topology)), from: node(1), now: instant(1))
        let reported = client.takeEffects().contains {
            if case .servers(let servers) = $0 { servers == table } else { false }
        }
        #expect(reported)
    }
}

/// The follower alone, as a reader runs it: nothing but polls in, topologies out.
@Suite("Topology follower")
struct TopologyFollowerTests {
    let root = try! StreamURI("/cluster/root")

    func instant(_ ms: Int64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }

    func follower() -> TopologyFollower {
        TopologyFollower(
            TopologySource(rootStream: root, rootMembers: [node(1), node(2)]), requestIDBase: 0,
            roundTimeout: .seconds(6), retryDelay: .milliseconds(200))
    }

    func requestID(_ poll: TopologyFollower.Poll) -> RequestID {
        guard case .pollStream(let requestID, _, _) = poll.message else { return 0 }
        return requestID
    }

    /// The version a poll asks for (nil: not a poll of the root stream).
    func version(_ poll: TopologyFollower.Poll) -> EntryID? {
        guard case .pollStream(_, let uri, let from) = poll.message, uri == root else { return nil }
        return from
    }

    @Test("Starts once; a newer topology comes out with the next round, which polls its root members")
    func followsRootMembers() {
        var follower = follower()
        let first = follower.start(now: instant(0))
        #expect(first.map(\.server) == [node(1), node(2)] && first.allSatisfy { version($0) == 1 })
        #expect(follower.start(now: instant(1)).isEmpty, "a second start sends nothing")
        #expect(follower.answered(12345, .failed(WalleError(.unavailable, "x")), from: node(1), now: instant(2)) == nil)

        let moved = Topology(version: 3, streams: [root: StreamTopology(version: 2, members: [node(2), node(5)])])
        let entry = Entry(id: 3, writerID: writerA, checksum: 1, data: moved.encoded())
        let answer = follower.answered(requestID(first[0]), .entry(entry), from: node(1), now: instant(3))
        #expect(answer?.topology?.version == 3)
        #expect(answer?.polls.map(\.server) == [node(2), node(5)], "the next round asks the new root members")
        #expect(answer?.polls.allSatisfy { version($0) == 4 } == true, "for the version after 3")
        // node 2's answer to the first round comes late: nobody's.
        #expect(follower.answered(requestID(first[1]), .entry(entry), from: node(2), now: instant(4)) == nil)
    }

    @Test("A round with nothing newer waits the retry delay; one nobody answers starts over at its deadline")
    func retriesAndTimeouts() {
        var follower = follower()
        let first = follower.start(now: instant(0))
        let nothing = Reply.failed(WalleError(.outOfRange, "nothing newer"))
        #expect(follower.answered(requestID(first[0]), nothing, from: node(1), now: instant(1))?.polls.isEmpty == true)
        #expect(follower.answered(requestID(first[1]), nothing, from: node(2), now: instant(2))?.polls.isEmpty == true)
        #expect(follower.wakeAt == instant(202))
        let second = follower.tick(now: instant(202))
        #expect(second.count == 2)
        #expect(follower.wakeAt == instant(202) + .seconds(6))
        #expect(follower.tick(now: instant(6201)).isEmpty)
        #expect(follower.tick(now: instant(6202)).count == 2, "the overdue round starts over")
    }
}
