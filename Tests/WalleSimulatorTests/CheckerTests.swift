import Testing
import WalleCore
import WalleEnvironment
@testable import WalleSimulator

/// Each checker on its own: a sequence that breaks its invariant must be reported, and a
/// control sequence that keeps it must not (so a checker that always fails cannot pass).
@Suite("Checkers: one per invariant, each fed a violating sequence")
struct CheckerTests {
    /// A verdict with its own trace; `lines` collects what it prints.
    final class Harness {
        let trace = Trace()
        var lines: [String] = []
        var beyondModelCount = 0
        var now: Int64 = 1_000_000
        private(set) var verdict: Verdict!

        init(beyondModel: Bool = false) {
            trace.printer = { [unowned self] in lines.append($0) }
            verdict = Verdict(
                beyondModel: beyondModel, trace: trace, now: { [unowned self] in now },
                countBeyondModel: { [unowned self] in beyondModelCount += 1 })
        }

        var invariant: Invariant? { verdict.violation?.invariant }
    }

    let uri = try! StreamURI("/checked/stream")
    let older = WriterID(ts: 1, id: 1)
    let newer = WriterID(ts: 2, id: 1)

    func entry(_ id: EntryID, after previous: UInt64 = 0, writer: WriterID? = nil, tag: UInt8 = 0) -> Entry {
        let data: [UInt8] = [tag, UInt8(truncatingIfNeeded: id)]
        return Entry(
            id: id, writerID: writer ?? older, checksum: chainChecksum(previous: previous, data: data), data: data)
    }

    @Test("Invariant names are the strings summaries, JUnit reports and planted-bug tests use")
    func invariantNames() {
        #expect(Invariant.allCases.map(\.rawValue) == [
            "committed-immutability", "acknowledged-durability", "chain-validity", "claim-monotonicity",
            "writer-fencing", "lease-exclusivity", "server-reads", "committed-id-monotonic",
            "writer-ids-never-decrease", "topology", "claim-stamp-quorum", "hostile-acknowledged",
            "writer-closed-unfenced", "client-history",
        ])
        let violation = Violation(invariant: .topology, time: .milliseconds(5), nodes: [NodeID(1)], detail: "x")
        #expect(violation.description.hasPrefix("topology at "))
    }

    @Test("Verdict: the first violation is kept, one VIOLATION line; beyond the model leases are only counted")
    func verdictKeepsTheFirst() {
        let harness = Harness()
        harness.verdict.fail(.serverReads, [], "first")
        harness.verdict.fail(.topology, [], "second")
        #expect(harness.invariant == .serverReads && harness.verdict.violation?.detail == "first")
        #expect(harness.lines.filter { $0.contains("VIOLATION") }.count == 1)
        let beyond = Harness(beyondModel: true)
        beyond.verdict.fail(.leaseExclusivity, [], "overlap")
        #expect(beyond.invariant == nil && beyond.beyondModelCount == 1)
        beyond.verdict.fail(.topology, [], "real")
        #expect(beyond.invariant == .topology)
    }

    @Test("Committed log: a known id with another checksum, and an entry that does not chain, are found")
    func committedLog() {
        let checker = CommittedLogChecker()
        var log = CommittedLog()
        let harness = Harness()
        let first = entry(1)
        #expect(checker.admit(uri, first, by: NodeID(1), what: "t", log: log, verdict: harness.verdict))
        log.insert(uri, first)
        let chained = entry(2, after: first.checksum)
        #expect(checker.admit(uri, chained, by: NodeID(1), what: "t", log: log, verdict: harness.verdict))
        #expect(!checker.admit(uri, first, by: NodeID(1), what: "t", log: log, verdict: harness.verdict))
        #expect(harness.invariant == nil, "the same entry again, and one that chains, are fine")
        #expect(!checker.admit(uri, entry(1, tag: 9), by: NodeID(1), what: "t", log: log, verdict: harness.verdict))
        #expect(harness.invariant == .committedImmutability)
        let broken = Harness()
        _ = checker.admit(uri, entry(2, after: 12_345), by: NodeID(1), what: "t", log: log, verdict: broken.verdict)
        #expect(broken.invariant == .chainValidity)
    }

    @Test("Writer fencing: an older writer's entry above a newer claim's tail, committed or claimed over")
    func writerFencing() {
        var claims = ClaimLedger()
        claims.append(uri, newer, entry(3))
        let checker = WriterFencingChecker()
        let control = Harness()
        checker.committed(uri, entry(3), by: NodeID(1), what: "t", claims: claims, verdict: control.verdict)
        let own = entry(5, writer: newer)
        checker.committed(uri, own, by: NodeID(1), what: "t", claims: claims, verdict: control.verdict)
        #expect(control.invariant == nil, "at the tail, or the newer writer's own entry")
        let above = Harness()
        checker.committed(uri, entry(5), by: NodeID(1), what: "t", claims: claims, verdict: above.verdict)
        #expect(above.invariant == .writerFencing)
        let acknowledgedAbove = Harness()
        checker.acknowledged(uri, entry(4), by: NodeID(1), claims: claims, verdict: acknowledgedAbove.verdict)
        #expect(acknowledgedAbove.invariant == .writerFencing)
        var acknowledged = AckLedger()
        acknowledged.record(uri, entry(5), at: 0)
        let claimedBelow = Harness()
        checker.claimed(
            uri, newer, entry(4), by: NodeID(1), acknowledged: acknowledged, verdict: claimedBelow.verdict)
        #expect(claimedBelow.invariant == .writerFencing, "6(a): the claim lost an acknowledged put")
    }

    @Test("Claim monotonicity: a newer writer claiming a lower tail is found")
    func claimMonotonicity() {
        var claims = ClaimLedger()
        claims.append(uri, older, entry(10))
        let checker = ClaimMonotonicityChecker()
        let control = Harness()
        checker.claimed(uri, newer, entry(10), by: NodeID(1), claims: claims, verdict: control.verdict)
        #expect(control.invariant == nil)
        let harness = Harness()
        checker.claimed(uri, newer, entry(5), by: NodeID(1), claims: claims, verdict: harness.verdict)
        #expect(harness.invariant == .claimMonotonicity)
    }

    func topologyEntry(_ version: UInt64, _ members: [UInt64]) -> Entry {
        let topology = Topology(
            version: version, streams: [uri: StreamTopology(version: version, members: members.map(NodeID.init))])
        return Entry(id: version, writerID: older, checksum: version, data: topology.encoded())
    }

    @Test("Topology: two members changed at once, an unreadable entry, and a WS-2 round are found")
    func topology() {
        var checker = TopologyChecker()
        let control = Harness()
        checker.committed(topologyEntry(1, [1, 2, 3]), by: NodeID(1), now: 10, verdict: control.verdict)
        checker.committed(topologyEntry(2, [1, 2, 3, 4]), by: NodeID(1), now: 20, verdict: control.verdict)
        #expect(control.invariant == nil, "one member added per version")
        let jump = Harness()
        checker.committed(topologyEntry(3, [1, 5, 6]), by: NodeID(1), now: 30, verdict: jump.verdict)
        #expect(jump.invariant == .topology)
        let unreadable = Harness()
        var other = TopologyChecker()
        let garbage = Entry(id: 1, writerID: older, checksum: 1, data: [0xFF])
        other.committed(garbage, by: NodeID(1), now: 0, verdict: unreadable.verdict)
        #expect(unreadable.invariant == .topology)
        let round = QuorumRecord(
            stream: uri, streamVersion: 1, members: [1, 2, 3].map(NodeID.init), startedAt: Instant(nanoseconds: 0))
        #expect(checker.needsIntersection(uri, version: 1))
        let early = Harness()
        checker.quorumReached(round, at: NodeID(1), startedAfter: 25, verdict: early.verdict)
        #expect(early.invariant == nil, "v3 was committed after the round began")
        let late = Harness()
        checker.quorumReached(round, at: NodeID(1), startedAfter: 35, verdict: late.verdict)
        #expect(late.invariant == .topology, "[1,2,3] and [1,5,6] have disjoint majorities")
    }

    @Test("Durability: an OK before the entry was durable, and an acknowledged put no server holds")
    func durability() {
        var checker = DurabilityChecker()
        let key = DurabilityChecker.CallKey(coordinator: NodeID(1), member: NodeID(2), requestID: 7)
        checker.putSent(key, uri, entry(1))
        #expect(checker.answered(key, .failed(WalleError(.unavailable, "no"))) == nil, "a refusal acknowledges nothing")
        checker.putSent(key, uri, entry(1))
        guard let put = checker.answered(key, .ok) else {
            Issue.record("an OK to a put acknowledges it")
            return
        }
        let control = Harness()
        checker.acknowledged(put, by: key, isDurable: true, verdict: control.verdict)
        #expect(control.invariant == nil)
        let early = Harness()
        checker.acknowledged(put, by: key, isDurable: false, verdict: early.verdict)
        #expect(early.invariant == .acknowledgedDurability)
        var acknowledged = AckLedger()
        acknowledged.record(uri, entry(1), at: 0)
        let lost = Harness()
        checker.finish(
            [uri], acknowledged: acknowledged, firstEntryIDs: [:], holdsDurably: { _, _ in false },
            verdict: lost.verdict)
        #expect(lost.invariant == .acknowledgedDurability)
        // Below the stream's first entry the entry was trimmed: gone is not lost.
        let trimmed = Harness()
        checker.finish(
            [uri], acknowledged: acknowledged, firstEntryIDs: [uri: 2], holdsDurably: { _, _ in false },
            verdict: trimmed.verdict)
        #expect(trimmed.invariant == nil)
    }

    @Test("Removal: a committed entry or the newest claim's stamp left on a minority is found")
    func removal() {
        let checker = RemovalChecker()
        let committed = entry(1)
        var log = CommittedLog()
        log.insert(uri, committed)
        var holding = DiskImage.StreamImage(metadata: StreamMetadata(topology: StreamTopology(version: 2, members: [])))
        holding.live[1] = committed
        let members = [NodeID(1), NodeID(2), NodeID(3)]
        let control = Harness()
        checker.membersHoldCommitted(
            uri, members, images: [holding, holding, nil], log: log, from: 0, verdict: control.verdict)
        #expect(control.invariant == nil)
        let minority = Harness()
        checker.membersHoldCommitted(
            uri, members, images: [holding, nil, nil], log: log, from: 0, verdict: minority.verdict)
        #expect(minority.invariant == .acknowledgedDurability)
        let trimmed = Harness()
        checker.membersHoldCommitted(uri, members, images: [nil, nil, nil], log: log, from: 2, verdict: trimmed.verdict)
        #expect(trimmed.invariant == nil, "entry 1 lies below the first entry")
        var claims = ClaimLedger()
        claims.append(uri, newer, entry(1))
        let stampLost = Harness()
        checker.membersHoldNewestClaim(
            uri, members, images: [holding, holding, nil], claims: claims, verdict: stampLost.verdict)
        #expect(stampLost.invariant == .claimStampQuorum, "the members hold entry 1 under the older stamp")
    }

    @Test("Server progress: committed id or writer id going down is found; a restart rebases")
    func serverProgress() {
        var checker = ServerProgressChecker()
        var metadata = StreamMetadata(topology: StreamTopology(version: 1, members: [NodeID(1)]))
        metadata.committedID = 5
        metadata.writerID = newer
        var committed: [EntryID] = []
        func observe(_ harness: Harness) {
            checker.observe(
                NodeID(1), streams: [uri], metadata: { _ in metadata }, served: { _, id in entry(id) },
                commit: { _, entry in committed.append(entry.id) }, verdict: harness.verdict)
        }
        let control = Harness()
        observe(control)
        #expect(control.invariant == nil && committed == [1, 2, 3, 4, 5])
        metadata.committedID = 3
        let down = Harness()
        observe(down)
        #expect(down.invariant == .committedIDMonotonic)
        checker.restarted(NodeID(1), streams: [uri], metadata: { _ in metadata })
        let restarted = Harness()
        observe(restarted)
        #expect(restarted.invariant == nil, "a restart may recover a lower committed id ([CRASH-2])")
        metadata.writerID = older
        let writerDown = Harness()
        observe(writerDown)
        #expect(writerDown.invariant == .writerIDsNeverDecrease)
    }

    @Test("Lease exclusivity: two exclusive writers, or a committed marker that is not the log's")
    func leaseExclusivity() {
        let checker = LeaseExclusivityChecker()
        let one = LeaseExclusivityChecker.Writer(id: NodeID(10), writerID: newer)
        let two = LeaseExclusivityChecker.Writer(id: NodeID(11), writerID: older)
        var log = CommittedLog()
        log.insert(uri, entry(1))
        let control = Harness()
        let marker = CommitMarker(id: 1, checksum: entry(1).checksum)
        checker.exclusive(one, on: uri, committed: marker, others: [], log: log, verdict: control.verdict)
        #expect(control.invariant == nil)
        let both = Harness()
        checker.exclusive(one, on: uri, committed: marker, others: [two], log: log, verdict: both.verdict)
        #expect(both.invariant == .leaseExclusivity)
        let stale = Harness()
        let wrong = CommitMarker(id: 1, checksum: marker.checksum &+ 1)
        checker.exclusive(one, on: uri, committed: wrong, others: [], log: log, verdict: stale.verdict)
        #expect(stale.invariant == .leaseExclusivity)
    }

    @Test("Writer closed: a close with no newer writer proposed is found")
    func writerClosed() {
        var checker = WriterClosedChecker()
        let error = WalleError(.failedPrecondition, "newer writer")
        let unfenced = Harness()
        checker.closed(NodeID(10), uri, writer: older, by: error, verdict: unfenced.verdict)
        #expect(unfenced.invariant == .writerClosedUnfenced)
        checker.newWriterSent(uri, newer)
        let fenced = Harness()
        checker.closed(NodeID(10), uri, writer: older, by: error, verdict: fenced.verdict)
        #expect(fenced.invariant == nil)
    }

    @Test("Server reads: an answer below the asked id, or entries out of order, are found")
    func serverReads() {
        let checker = ServerReadsChecker()
        let poll = ReaderHost.ReadRequest(uri: uri, server: NodeID(1), kind: .poll(5))
        let control = Harness()
        #expect(checker.answered(poll, .entry(entry(5)), reader: NodeID(20), verdict: control.verdict).count == 1)
        #expect(control.invariant == nil)
        let below = Harness()
        _ = checker.answered(poll, .entry(entry(3)), reader: NodeID(20), verdict: below.verdict)
        #expect(below.invariant == .serverReads)
        let range = ReaderHost.ReadRequest(uri: uri, server: NodeID(1), kind: .entries(start: 2, end: 5))
        let gap = Harness()
        let proven = checker.answered(range, .entries([entry(2), entry(4)]), reader: NodeID(20), verdict: gap.verdict)
        #expect(gap.invariant == .serverReads && proven.isEmpty)
    }

    @Test("Hostile answers: success or the wrong code for invalid input, OK to a heartbeat it must refuse")
    func hostileAnswers() {
        var checker = HostileAnswerChecker()
        let expectation = HostileExpectation.refused([.invalidArgument])
        let control = Harness()
        checker.answered(
            expectation, "x", .failed(WalleError(.invalidArgument, "no")), client: NodeID(30), server: NodeID(1),
            verdict: control.verdict)
        #expect(control.invariant == nil)
        let accepted = Harness()
        checker.answered(expectation, "x", .ok, client: NodeID(30), server: NodeID(1), verdict: accepted.verdict)
        #expect(accepted.invariant == .hostileAcknowledged)
        let wrongCode = Harness()
        checker.answered(
            expectation, "x", .failed(WalleError(.notFound, "no")), client: NodeID(30), server: NodeID(1),
            verdict: wrongCode.verdict)
        #expect(wrongCode.invariant == .hostileAcknowledged)
        let local = entry(1, writer: newer)
        let beat = Entry(id: 0, writerID: older, checksum: 0, data: [])
        let header = InternalHeader(requestID: 9, stream: uri, target: NodeID(2), streamVersion: 1)
        let forged = Message.putEntryInternal(header, .write, beat, committedID: 1, committedChecksum: 99)
        checker.heartbeatArriving(forged, from: NodeID(1), at: NodeID(2), window: { _ in [local] })
        let key = DurabilityChecker.CallKey(coordinator: NodeID(1), member: NodeID(2), requestID: 9)
        let heartbeat = Harness()
        checker.responded(key, .ok, verdict: heartbeat.verdict)
        #expect(heartbeat.invariant == .hostileAcknowledged)
        checker.heartbeatHandled()
        let after = Harness()
        checker.responded(key, .ok, verdict: after.verdict)
        #expect(after.invariant == nil, "the window closes once the member handled the heartbeat")
    }
}
