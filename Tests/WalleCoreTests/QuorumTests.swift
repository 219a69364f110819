import Testing
@testable import WalleCore
import WalleEnvironment

@Suite("Quorum")
struct QuorumTests {
    let members = [node(1), node(2), node(3), node(4)]
    let refusal = WalleError(.outOfRange, "entry 8 waited too long for entry 7")

    @Test("A majority out of reach fails at once when the silent members are presumed down (seed 18394)")
    func presumedDownFailsEarly() {
        var quorum = Quorum(memberCount: members.count)
        #expect(quorum.recordSuccess(node(3)) == nil)
        #expect(quorum.recordFailure(refusal, from: node(2)) == nil, "one refusal of four leaves three possible")
        #expect(quorum.failIfOutOfReach(members: members, presumedDown: []) == nil)
        #expect(quorum.failIfOutOfReach(members: members, presumedDown: [node(3)]) == nil, "node 3 answered")
        guard case .failed(let error) = quorum.failIfOutOfReach(members: members, presumedDown: [node(1)]) else {
            Issue.record("node 1 is presumed down and node 2 refused: three of four are out of reach")
            return
        }
        #expect(error == refusal)
        #expect(quorum.isDecided)
        #expect(quorum.recordSuccess(node(4)) == nil, "decided once")
    }

    @Test("Presumed-down members do not fail a quorum that can still be reached")
    func reachableStaysOpen() {
        var quorum = Quorum(memberCount: 5)
        let five = members + [node(5)]
        #expect(quorum.recordFailure(refusal, from: node(2)) == nil)
        #expect(quorum.failIfOutOfReach(members: five, presumedDown: [node(1)]) == nil, "three of five remain")
        #expect(quorum.recordSuccess(node(3)) == nil)
        #expect(quorum.recordSuccess(node(4)) == nil)
        guard case .succeeded(let servers) = quorum.recordSuccess(node(5)) else {
            Issue.record("three successes of five are a majority")
            return
        }
        #expect(servers == [node(3), node(4), node(5)])
    }
}
