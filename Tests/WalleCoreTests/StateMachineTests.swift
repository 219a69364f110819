import Testing
@testable import WalleCore
import WalleEnvironment

/// The core's small state machines on their own: events in, decisions out, no core around them.
@Suite("State machines: claim, fast-forward, backfill, topology watch")
struct StateMachineTests {
    let members = [node(1), node(2), node(3)]
    let oldWriter = WriterID(ts: 5, id: 1)
    let newWriter = WriterID(ts: 9, id: 2)
    let now = Instant(nanoseconds: 1_000)

    func makeClaim() -> ClaimProcess {
        ClaimProcess(
            route: Route(node: node(9), requestID: 1), uri: streamURI, writer: newWriter, version: 1,
            members: members, address: "w", leaseMilliseconds: 1_000, retryUntil: now + .seconds(5))
    }

    /// Drives a claim through NewWriter; returns the claim set it asks for tails.
    func newWriterMajority(_ claim: inout ClaimProcess) -> [NodeID] {
        #expect(claim.answered(from: node(2), .ok, now: now, alignRoundsMax: 8).next.isWait)
        guard case .askTails(let claimSet) = claim.answered(from: node(3), .ok, now: now, alignRoundsMax: 8).next else {
            Issue.record("a majority of NewWriter answers moves on to the tails")
            return []
        }
        return claimSet
    }

    @Test("Claim: the winning chain is re-stamped on the members that lack it, then committed, then claimed")
    func claimRunsItsPhases() {
        var claim = makeClaim()
        #expect(claim.phase == .newWriter && claim.mayResendNewWriter(now: now))
        let claimSet = newWriterMajority(&claim)
        #expect(claimSet == [node(2), node(3)])
        #expect(claim.phase == .tails && !claim.mayResendNewWriter(now: now), "a decided quorum sends no more")
        let longer = chain(from: .zero, count: 2, writer: oldWriter)
        #expect(claim.answered(from: node(2), .entries([.zero]), now: now, alignRoundsMax: 8).next.isWait)
        let step = claim.answered(from: node(3), .entries([.zero] + longer), now: now, alignRoundsMax: 8)
        #expect(step.quorumStartedAt == now, "a full tails round records its quorum")
        #expect(step.choice?.member == node(3) && step.choice?.last == longer[1])
        guard case .restamp(let sends) = step.next else {
            Issue.record("the member without the chain gets it re-stamped")
            return
        }
        #expect(sends.map(\.0) == [node(2), node(3)])
        #expect(sends[0].1.map(\.id) == [1, 2] && sends[0].1.allSatisfy { $0.writerID == newWriter })
        #expect(sends[1].1.map(\.id) == [2], "the winner re-stamps only its tail")
        #expect(claim.answered(from: node(2), .ok, now: now, alignRoundsMax: 8).next.isWait)
        let committing = claim.answered(from: node(3), .ok, now: now, alignRoundsMax: 8)
        guard case .commit(let committers, let tail) = committing.next else {
            Issue.record("after the re-stamps, the tail is committed")
            return
        }
        #expect(committers == claimSet && tail.id == 2 && tail.writerID == newWriter)
        #expect(claim.answered(from: node(3), .ok, now: now, alignRoundsMax: 8).next.isWait)
        let end = claim.answered(from: node(2), .ok, now: now, alignRoundsMax: 8)
        guard case .finish(.claimed(let writer, let claimedTail)) = end.next else {
            Issue.record("a committed tail ends the claim")
            return
        }
        #expect(writer == newWriter && claimedTail == tail && end.quorumStartedAt == now)
    }

    @Test("Claim: members that disagree on a committed entry fail it with data loss; a refusal fails it at once")
    func claimFails() {
        var claim = makeClaim()
        _ = newWriterMajority(&claim)
        let one = chain(from: .zero, count: 1, writer: oldWriter, tag: 1)
        let other = chain(from: .zero, count: 1, writer: oldWriter, tag: 2)
        _ = claim.answered(from: node(2), .entries(one), now: now, alignRoundsMax: 8)
        guard case .finish(.failed(let error)) = claim.answered(
            from: node(3), .entries(other), now: now, alignRoundsMax: 8
        ).next else {
            Issue.record("two committed checksums at one id cannot both be true")
            return
        }
        #expect(error.code == .dataLoss)

        var refused = makeClaim()
        _ = newWriterMajority(&refused)
        let failure = WalleError(.unavailable, "gone")
        guard case .finish(.failed(let error)) = refused.answered(
            from: node(2), .failed(failure), now: now, alignRoundsMax: 8
        ).next else {
            Issue.record("a failed tails call ends the claim")
            return
        }
        #expect(error == failure)
    }

    @Test("Claim: a lagging member is aligned, then the tails are asked again, within alignRoundsMax")
    func claimAligns() {
        var claim = makeClaim()
        _ = newWriterMajority(&claim)
        let committed = chain(from: .zero, count: 1, writer: oldWriter)
        _ = claim.answered(from: node(2), .entries([.zero]), now: now, alignRoundsMax: 1)
        guard case .align(let lagging, let highest) = claim.answered(
            from: node(3), .entries(committed), now: now, alignRoundsMax: 1
        ).next else {
            Issue.record("node 2 lags behind committed entry 1")
            return
        }
        #expect(lagging == [node(2)] && highest == committed[0])
        guard case .askTails = claim.answered(from: node(2), .ok, now: now, alignRoundsMax: 1).next else {
            Issue.record("after the align round, the tails again")
            return
        }
        _ = claim.answered(from: node(2), .entries([.zero]), now: now, alignRoundsMax: 1)
        guard case .finish(.failed(let error)) = claim.answered(
            from: node(3), .entries(committed), now: now, alignRoundsMax: 1
        ).next else {
            Issue.record("a second align round is over the bound of one")
            return
        }
        #expect(error.code == .unavailable)
    }

    @Test("Fast-forward: scheduled once, fetches from every peer, commits the entry that matches the marker")
    func fastForwardCommits() {
        var fastForward = FastForward()
        let entry = chain(from: .zero, count: 1, writer: oldWriter)[0]
        fastForward.marker = PendingCommit(marker: CommitMarker(id: 1, checksum: entry.checksum), writer: oldWriter)
        #expect(fastForward.wanted() && !fastForward.wanted(), "one timer at a time")
        let marker = CommitMarker(id: 1, checksum: entry.checksum)
        #expect(fastForward.timerFired(needsFetch: true, peerCount: 2) == .fetch(marker))
        guard case .wait = fastForward.answered(.failed(WalleError(.notFound, "no")), roundsMax: 8) else {
            Issue.record("one peer of two is still out")
            return
        }
        guard case .commit(let committed) = fastForward.answered(.entries([entry]), roundsMax: 8) else {
            Issue.record("the matching entry commits")
            return
        }
        #expect(committed == entry && fastForward.state == .idle)
        guard case .ignore = fastForward.answered(.entries([entry]), roundsMax: 8) else {
            Issue.record("a late answer of an ended round is ignored")
            return
        }
    }

    @Test("Fast-forward: a different committed entry refutes the marker; empty rounds give up after roundsMax")
    func fastForwardRefutesAndGivesUp() {
        var fastForward = FastForward()
        let entry = chain(from: .zero, count: 1, writer: oldWriter)[0]
        let forged = CommitMarker(id: 1, checksum: entry.checksum &+ 1)
        fastForward.marker = PendingCommit(marker: forged, writer: oldWriter)
        _ = fastForward.wanted()
        _ = fastForward.timerFired(needsFetch: true, peerCount: 1)
        guard case .refuted = fastForward.answered(.entries([entry]), roundsMax: 8) else {
            Issue.record("a peer's committed entry at the marker's id refutes the marker (WS-4)")
            return
        }
        #expect(fastForward.marker == nil && fastForward.state == .idle)

        fastForward.marker = PendingCommit(marker: CommitMarker(id: 1, checksum: 7), writer: oldWriter)
        for round in 1...2 {
            _ = fastForward.wanted()
            _ = fastForward.timerFired(needsFetch: true, peerCount: 1)
            let action = fastForward.answered(.failed(WalleError(.notFound, "no")), roundsMax: 2)
            if round == 1 {
                guard case .retry = action else { Issue.record("first empty round retries"); return }
                #expect(fastForward.state == .scheduled)
            } else {
                guard case .gaveUp(let id) = action else { Issue.record("second empty round gives up"); return }
                #expect(id == 1 && fastForward.marker == nil && fastForward.state == .idle)
            }
        }
        #expect(fastForward.timerFired(needsFetch: false, peerCount: 1) == .settled)
    }

    @Test("Backfill: its own copy first, then peers in turn; one ask at a time")
    func backfillRotates() {
        var backfill = Backfill()
        var random: any RandomNumberGenerator = CountingRandom()
        let peers = [node(2), node(3)]
        let first = backfill.start(gapEnd: 10, keepsBelowEnd: true, me: node(1), peers: peers, random: &random)
        #expect(first == node(1) && backfill.isBusy)
        #expect(backfill.start(gapEnd: 10, keepsBelowEnd: true, me: node(1), peers: peers, random: &random) == nil)
        #expect(backfill.failed(from: node(1), me: node(1), gapEnd: 10) == .askAgainNow)
        let peer = backfill.start(gapEnd: 10, keepsBelowEnd: true, me: node(1), peers: peers, random: &random)
        #expect(peer.map { peers.contains($0) } == true, "its own copy had nothing at this gapEnd")
        #expect(backfill.failed(from: peer ?? node(0), me: node(1), gapEnd: 10) == .retryLater)
        #expect(backfill.state == .retrying)
        backfill.resume()
        let next = backfill.start(gapEnd: 10, keepsBelowEnd: true, me: node(1), peers: peers, random: &random)
        #expect(next != nil && next != peer, "the next peer in turn")
        backfill.succeeded()
        #expect(backfill.state == .awaitingSync)
        var idle = Backfill()
        idle.succeeded()
        #expect(idle.state == .idle, "a late answer with no ask out starts nothing")
        #expect(idle.start(gapEnd: 10, keepsBelowEnd: false, me: node(1), peers: [], random: &random) == nil)
    }

    @Test("Topology watch: a newer entry ends the round; all answers without news end it too")
    func topologyWatchRounds() {
        var watch = TopologyWatch(rootMembers: members)
        #expect(watch.nextVersion == 1 && !watch.isPolling)
        watch.started([(11, node(1)), (12, node(2)), (13, node(3))])
        #expect(watch.isPolling)
        #expect(watch.answered(99, .ok, from: node(1)) == nil, "not a poll of this round")
        #expect(watch.answered(11, .ok, from: node(2)) == nil, "the right id from the wrong node")
        #expect(watch.answered(11, .failed(WalleError(.deadlineExceeded, "poll")), from: node(1)) == .wait)
        let entry = Entry(id: 1, writerID: oldWriter, checksum: 1, data: [1])
        #expect(watch.answered(12, .entry(entry), from: node(2)) == .newer(entry))
        #expect(!watch.isPolling && watch.nextVersion == 2)
        #expect(watch.answered(13, .entry(entry), from: node(3)) == nil, "late answers of the ended round")
        watch.started([(14, node(1))])
        #expect(watch.answered(14, .entry(entry), from: node(1)) == .roundOver, "nothing newer than version 1")
        watch.applied(version: 3, rootMembers: [node(4)])
        #expect(watch.nextVersion == 4 && watch.rootMembers == [node(4)])
        watch.started([(15, node(4))])
        #expect(watch.roundTimedOut() && !watch.roundTimedOut())
    }
}

extension ClaimNext {
    var isWait: Bool {
        if case .wait = self { return true }
        return false
    }
}
