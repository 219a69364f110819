import WalleCore
import WalleEnvironment

/// Watches a run for broken invariants (docs/simulation.md, "Invariants"), after every event
/// and at the end. The hooks below are where the world reports what happened; each passes it
/// to the checkers of the invariants it concerns (`Checks/`), always in the same order, so the
/// first violation reported, and the trace, are the same for every run of a seed.
///
/// It keeps the ledgers several checkers read: L, the committed log per stream, fed by
/// everything committed by definition (entries servers report committed, acknowledged puts,
/// claimed tails and read answers); the claims; the acknowledged puts.
final class Oracle: AcknowledgementView, ClientObserver, MembershipObserver {
    private let agenda: Agenda
    private let trace: Trace
    private let cluster: Cluster
    /// The slowest clock rate the profile allows, which bounds a round's age in true time.
    private let clockRateMin: Double
    /// Every stream the checks watch: the workload's and the root (topology) stream. Set once
    /// the workload has made its streams, before the first event.
    var checkedStreams: [StreamURI] = []
    let verdict: Verdict
    private var log = CommittedLog()
    private var claims = ClaimLedger()
    private var acknowledged = AckLedger()
    private(set) var observations = 0
    private var committedLogChecker = CommittedLogChecker()
    private var fencing = WriterFencingChecker()
    private var claimMonotonicity = ClaimMonotonicityChecker()
    private var topology = TopologyChecker()
    private var durability = DurabilityChecker()
    private var removals = RemovalChecker()
    private var progress = ServerProgressChecker()
    private var leaseExclusivity = LeaseExclusivityChecker()
    private var writerClosed = WriterClosedChecker()
    private var reads = ServerReadsChecker()
    private var hostile = HostileAnswerChecker()
    /// Each stream's first entry as committed in the topology: what lies below may be gone.
    private var firstEntryIDs: [StreamURI: EntryID] = [:]
    private(set) var replacementStats = ReplacementStats()

    init(
        agenda: Agenda, trace: Trace, counters: SimCounters, cluster: Cluster, beyondModel: Bool, clockRateMin: Double
    ) {
        self.agenda = agenda
        self.trace = trace
        self.cluster = cluster
        self.clockRateMin = clockRateMin
        self.verdict = Verdict(
            beyondModel: beyondModel, trace: trace, now: { [unowned agenda] in agenda.trueNow },
            countBeyondModel: { [unowned counters] in counters.count(.leaseViolationBeyondModel) })
    }

    var violation: Violation? { verdict.violation }

    func fail(_ invariant: Invariant, _ nodes: [NodeID], _ detail: String) {
        verdict.fail(invariant, nodes, detail)
    }

    var acknowledgedCount: Int { acknowledged.count }
    var committedCount: Int { log.count }

    func lastAcknowledgedAt(_ uri: StreamURI) -> Int64? { acknowledged.lastAcknowledgedAt(uri) }

    func highestAcknowledged(_ uri: StreamURI) -> EntryID { acknowledged.highestAcknowledged(uri) }

    // MARK: The committed log

    /// A well-behaved writer made `entry` (hostile clients' forgeries are not recorded).
    func claimInvoked(_ host: WriterHost) {}

    func putInvoked(_ host: WriterHost, _ entry: Entry) { entryWritten(host.uri, entry) }

    func entryWritten(_ uri: StreamURI, _ entry: Entry) {
        fencing.written(uri, entry)
    }

    /// Invariants 1, 4 and 6(b) for an entry committed by definition; a new one enters L.
    func committed(_ uri: StreamURI, _ entry: Entry, by node: NodeID, what: String) {
        observations += 1
        guard committedLogChecker.admit(uri, entry, by: node, what: what, log: log, verdict: verdict) else { return }
        fencing.committed(uri, entry, by: node, what: what, claims: claims, verdict: verdict)
        log.insert(uri, entry)
        trace.line(agenda.trueNow, "oracle: \(uri) \(entry.id) committed (\(what) on \(node))")
        if uri == World.rootStream && entry.id > 0 {
            topology.committed(entry, by: node, now: agenda.trueNow, verdict: verdict)
        }
    }

    /// WS-2: the round's start is bounded from its age on the coordinator's clock, which runs
    /// at least at the slowest rate the profile allows.
    func quorumReached(_ record: QuorumRecord, at node: NodeID) {
        guard topology.needsIntersection(record.stream, version: record.streamVersion),
            let host = cluster.serverHost(node)
        else { return }
        let ageLocal = host.clock.now.nanoseconds - record.startedAt.nanoseconds
        let startedAfter = agenda.trueNow - Int64(Double(ageLocal) / clockRateMin)
        topology.quorumReached(record, at: node, startedAfter: startedAfter, verdict: verdict)
    }

    // MARK: Membership

    /// What the members of a new list hold of `uri`: the current image of a member that is up,
    /// the durable one of a member that is down, retired members left out.
    private func memberImages(_ uri: StreamURI, _ members: [NodeID]) -> [DiskImage.StreamImage?] {
        cluster.servers.filter { members.contains($0.id) && !$0.isRetired }.map { host in
            (host.isUp ? host.disk.current : host.disk.durable).streams[uri]
        }
    }

    func checkMembersHoldCommitted(_ uri: StreamURI, _ members: [NodeID]) {
        removals.membersHoldCommitted(
            uri, members, images: memberImages(uri, members), log: log, from: firstEntryIDs[uri] ?? 0,
            verdict: verdict)
    }

    /// A trim's version committed. Its first entry must be committed: the manager takes it only
    /// from a member that reports it committed, and every server's committed entries enter L
    /// after each of its events, so L holds it by now (invariant 12, `[TOPO-5]`).
    func trimmed(_ uri: StreamURI, below first: EntryID) {
        let committed = log.highest(uri)
        if first > committed {
            fail(.topology, [], "\(uri) trimmed below \(first), past its committed id \(committed)")
        }
        firstEntryIDs[uri] = max(firstEntryIDs[uri] ?? 0, first)
    }

    func checkMembersHoldNewestClaim(_ uri: StreamURI, _ members: [NodeID]) {
        removals.membersHoldNewestClaim(
            uri, members, images: memberImages(uri, members), claims: claims, verdict: verdict)
    }

    func replaced(_ node: NodeID) { replacementStats.replaced(node, at: agenda.trueNow) }

    func joined(_ node: NodeID, _ uri: StreamURI) { replacementStats.joined(node, uri, at: agenda.trueNow) }

    // MARK: Servers

    /// Invariants 9 and 11 after an event at a server that is up.
    func observeServer(_ host: ServerHost) {
        guard host.isUp else { return }
        progress.observe(
            host.id, streams: checkedStreams, metadata: { host.node.metadata(of: $0) },
            served: { uri, id in
                guard let image = host.disk.current.streams[uri] else {
                    preconditionFailure("\(host.id) reports \(uri) committed without holding it")
                }
                return image.servedEntry(id)
            },
            commit: { uri, entry in committed(uri, entry, by: host.id, what: "server committed") },
            verdict: verdict)
    }

    /// A restarted server starts over from what it recovered ([CRASH-2]).
    func serverRestarted(_ host: ServerHost) {
        progress.restarted(host.id, streams: checkedStreams, metadata: { host.node.metadata(of: $0) })
        observeServer(host)
    }

    /// A message as it is sent (before loss or partitions): NewWriter proposals, puts to
    /// members, and members' answers (invariant 2 at the source, hostile heartbeats).
    func messageSent(_ message: Message, from source: NodeID, to target: NodeID) {
        switch message {
        case .newWriter(let header, let writer, _, _):
            writerClosed.newWriterSent(header.stream, writer)
        case .putEntryInternal(let header, _, let entry, _, _) where entry.id > 0:
            let key = DurabilityChecker.CallKey(coordinator: source, member: target, requestID: header.requestID)
            durability.putSent(key, header.stream, entry)
        case .response(let requestID, let reply):
            let key = DurabilityChecker.CallKey(coordinator: target, member: source, requestID: requestID)
            hostile.responded(key, reply, verdict: verdict)
            guard let put = durability.answered(key, reply),
                let member = cluster.servers.first(where: { $0.id == source })
            else { return }
            durability.acknowledged(put, by: key, isDurable: member.disk.everDurable.contains(put), verdict: verdict)
            replacementStats.acknowledged(
                by: source, put.uri, hasGap: { member.node.metadata(of: put.uri)?.hasGap == true },
                at: agenda.trueNow)
        default:
            return
        }
    }

    // MARK: Hostile input

    func hostileAnswered(
        _ expectation: HostileExpectation, _ what: String, _ reply: Reply, client: NodeID, server: NodeID
    ) {
        observations += 1
        hostile.answered(expectation, what, reply, client: client, server: server, verdict: verdict)
    }

    func heartbeatArriving(_ message: Message, from source: NodeID, at host: ServerHost) {
        hostile.heartbeatArriving(message, from: source, at: host.id, window: { host.node.window(of: $0) })
    }

    func heartbeatHandled() { hostile.heartbeatHandled() }

    // MARK: Writers

    func writerEvent(_ host: WriterHost, _ event: WriterEvent) {
        switch event {
        case .claimed(let writer, let tail):
            claimed(host.uri, writer, tail, by: host.id)
        case .putAcknowledged(let entry):
            acknowledged.record(host.uri, entry, at: agenda.trueNow)
            committed(host.uri, entry, by: host.id, what: "acknowledged put")
            fencing.acknowledged(host.uri, entry, by: host.id, claims: claims, verdict: verdict)
        case .closed(let error):
            writerClosed.closed(host.id, host.uri, writer: host.node.client.writerID, by: error, verdict: verdict)
        case .claimFailed:
            break
        }
    }

    /// Invariants 5 and 6(a) for a successful claim, which then joins the ledger.
    func claimed(_ uri: StreamURI, _ writer: WriterID, _ tail: Entry, by node: NodeID) {
        committed(uri, tail, by: node, what: "claimed tail")
        claimMonotonicity.claimed(uri, writer, tail, by: node, claims: claims, verdict: verdict)
        fencing.claimed(uri, writer, tail, by: node, acknowledged: acknowledged, verdict: verdict)
        claims.append(uri, writer, tail)
    }

    /// Invariant 7 for one writer, after an event that may have changed it.
    func observeWriter(_ host: WriterHost) {
        guard host.node.isExclusive() else { return }
        let others = cluster.writers.filter { $0 !== host && $0.uri == host.uri && $0.node.isExclusive() }
        leaseExclusivity.exclusive(
            Self.view(host), on: host.uri, committed: host.node.client.committed, others: others.map(Self.view),
            log: log, verdict: verdict)
    }

    private static func view(_ host: WriterHost) -> LeaseExclusivityChecker.Writer {
        LeaseExclusivityChecker.Writer(id: host.id, writerID: host.node.client.writerID)
    }

    // MARK: Reads

    func readAnswered(_ request: ReaderHost.ReadRequest, _ reply: Reply, reader: NodeID) {
        let what = if case .poll = request.kind { "PollStream" } else { "StreamEntries" }
        for entry in reads.answered(request, reply, reader: reader, verdict: verdict) {
            committed(request.uri, entry, by: request.server, what: what)
        }
    }

    // MARK: End of run

    /// Every server's committed entries agree with L and chain; every acknowledged put is
    /// durable somewhere.
    func finish() {
        for host in cluster.servers where !host.isRetired {
            for uri in checkedStreams {
                guard host.isUp, let metadata = host.node.metadata(of: uri),
                    let image = host.disk.current.streams[uri]
                else { continue }
                for id in 0...metadata.committedID {
                    if let entry = image.servedEntry(id) { committed(uri, entry, by: host.id, what: "final scan") }
                }
            }
        }
        durability.finish(
            checkedStreams, acknowledged: acknowledged, firstEntryIDs: firstEntryIDs,
            holdsDurably: { uri, entry in
                cluster.servers.contains {
                    !$0.isRetired && $0.disk.durable.streams[uri]?.entry(entry.id)?.checksum == entry.checksum
                }
            },
            verdict: verdict)
    }
}
