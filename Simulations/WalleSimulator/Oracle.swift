import WalleCore
import WalleEnvironment

/// A broken invariant: which one, when (true time), who was involved, and what was seen.
public struct Violation: Sendable, CustomStringConvertible {
    public var invariant: String
    public var time: Duration
    public var nodes: [NodeID]
    public var detail: String

    public var description: String {
        "\(invariant) at \(time.formattedMilliseconds) on [\(nodes.map(\.short).joined(separator: ", "))]: \(detail)"
    }
}

/// Checks the invariants listed in docs/simulation.md, "Invariants", during the run (after
/// every event) and at its end.
///
/// It keeps `log`, the oracle's committed log L per stream (id → checksum), fed by everything
/// that is committed by definition: entries servers report committed, acknowledged puts,
/// claimed tails and read answers. Any disagreement is a violation.
final class Oracle {
    unowned let world: World
    private(set) var violation: Violation?
    private var log: [StreamURI: [EntryID: UInt64]] = [:]
    private var claims: [StreamURI: [(writer: WriterID, tail: Entry)]] = [:]
    private var acknowledged: [StreamURI: [EntryID: Entry]] = [:]
    private var internalPuts: [CallKey: DurableEntryKey] = [:]
    private(set) var observations = 0
    /// Replacement servers, and the entries they acknowledged while still backfilling a gap:
    /// proof that a new node serves live writes at once.
    var replacements: [NodeID: Int64] = [:]
    /// When a replacement server became a member of a workload stream (the add committed).
    private var joins: [DurableEntryKey: Int64] = [:]
    private(set) var liveAcksDuringBackfill = 0
    private(set) var joinedStreams = 0
    /// The slowest, over all joins, from a join to the new member's first live acknowledgement.
    private(set) var firstLiveAckAfterJoin: Int64?
    private var firstAckSeen: Set<DurableEntryKey> = []

    func joined(_ node: NodeID, _ uri: StreamURI) {
        guard replacements[node] != nil, uri != World.rootStream else { return }
        joins[DurableEntryKey(uri: uri, id: node.rawValue, checksum: 0)] = world.trueNow
        joinedStreams += 1
    }
    private var lastAcknowledged: [StreamURI: (time: Int64, id: EntryID)] = [:]

    func lastAcknowledgedAt(_ uri: StreamURI) -> Int64? { lastAcknowledged[uri]?.time }

    func highestAcknowledged(_ uri: StreamURI) -> EntryID { lastAcknowledged[uri]?.id ?? 0 }

    /// A restarted server may report a lower committed id ([CRASH-2]); it starts over from
    /// what it recovered. Its writer id must not be lower than what was durable.
    func serverRestarted(_ host: ServerHost) {
        for (index, uri) in world.checkedStreams.enumerated() where index < host.oracleCommitted.count {
            guard let metadata = host.node.metadata(of: uri) else { continue }
            host.oracleCommitted[index] = metadata.committedID
            host.oracleWriter[index] = metadata.writerID
        }
        observeServer(host)
    }

    struct CallKey: Hashable {
        var coordinator: NodeID
        var member: NodeID
        var requestID: RequestID
    }

    init(world: World) { self.world = world }

    func fail(_ invariant: String, _ nodes: [NodeID], _ detail: String) {
        guard violation == nil else { return }
        if invariant == "lease-exclusivity" && world.profile.beyondModel {
            // Outside the time model leases may overlap; that is expected, not a failure.
            world.count(.leaseViolationBeyondModel)
            world.trace.line(world.trueNow, "oracle: expected beyond the model: \(detail)")
            return
        }
        violation = Violation(invariant: invariant, time: .nanoseconds(world.trueNow), nodes: nodes, detail: detail)
        world.trace.line(world.trueNow, "oracle: VIOLATION \(violation!)")
    }

    var acknowledgedCount: Int { acknowledged.values.reduce(0) { $0 + $1.count } }
    var committedCount: Int { log.values.reduce(0) { $0 + $1.count } }

    // MARK: The committed log

    /// Who wrote each entry's content (the newest writer, if two wrote the same). A claim
    /// re-stamps entries under its own id without changing them, so fencing is decided by who
    /// wrote the data, not by the stamp: in seed 1465 a failed claim of an older writer
    /// re-stamped a newer writer's uncommitted entries on one member, and a later claim
    /// committed them there. That was the newer writer's data, not fenced data.
    private var authors: [EntryContent: WriterID] = [:]

    struct EntryContent: Hashable {
        var uri: StreamURI
        var id: EntryID
        var checksum: UInt64
    }

    /// A well-behaved writer made `entry` (hostile clients' forgeries are not recorded).
    func entryWritten(_ uri: StreamURI, _ entry: Entry) {
        let key = EntryContent(uri: uri, id: entry.id, checksum: entry.checksum)
        authors[key] = max(authors[key] ?? .zero, entry.writerID)
    }

    /// Invariants 1 (committed immutability) and 4 (chain validity), and 6(b): no entry of
    /// an older writer commits above a newer writer's claimed tail.
    func committed(_ uri: StreamURI, _ entry: Entry, by node: NodeID, what: String) {
        observations += 1
        if let known = log[uri]?[entry.id] {
            if known != entry.checksum {
                fail(
                    "committed-immutability", [node],
                    "\(what): \(uri) entry \(entry.id) has xx=\(hex16(entry.checksum)), committed xx=\(hex16(known))")
            }
            return
        }
        if entry.id > 0, let previous = log[uri]?[entry.id - 1], !entry.chains(onto: previous) {
            fail(
                "chain-validity", [node],
                "\(what): \(uri) entry \(entry.id) does not chain onto committed \(entry.id - 1)")
        }
        let author = authors[EntryContent(uri: uri, id: entry.id, checksum: entry.checksum)] ?? entry.writerID
        for claim in claims[uri] ?? [] where claim.writer > author && claim.tail.id < entry.id && entry.id > 0 {
            fail(
                "writer-fencing", [node],
                "\(what): \(entry.brief) committed above \(claim.writer)'s claimed tail \(claim.tail.id)")
        }
        log[uri, default: [:]][entry.id] = entry.checksum
        world.trace.line(world.trueNow, "oracle: \(uri) \(entry.id) committed (\(what) on \(node))")
        if uri == World.rootStream && entry.id > 0 { topologyCommitted(entry, by: node) }
    }

    private var topologies: [UInt64: Topology] = [:]

    /// Invariant 12: entry N of the topology stream is version N, each stream's version grows
    /// by exactly one per change, and consecutive member lists differ by at most one server.
    private func topologyCommitted(_ entry: Entry, by node: NodeID) {
        let topology: Topology
        do {
            topology = try Topology.decode(entry.data, entryID: entry.id)
        } catch {
            fail("topology", [node], "root entry \(entry.id): \(error)")
            return
        }
        topologies[entry.id] = topology
        for (uri, stream) in topology.streams where streamVersions[uri]?[stream.version] == nil {
            streamVersions[uri, default: [:]][stream.version] = (stream.members, world.trueNow)
            latestStreamVersion[uri] = max(latestStreamVersion[uri] ?? 0, stream.version)
        }
        for (older, newer) in [(topologies[entry.id - 1], topology), (topology, topologies[entry.id + 1])] {
            guard let older, let newer else { continue }
            if let problem = topologyStepProblem(from: older, to: newer) {
                fail("topology", [node], "v\(older.version) -> v\(newer.version): \(problem)")
            }
        }
    }

    /// Each stream version's member list and when it was committed (first seen committed).
    private var streamVersions: [StreamURI: [UInt64: (members: [NodeID], committedAt: Int64)]] = [:]
    private var latestStreamVersion: [StreamURI: UInt64] = [:]

    /// Invariant 12, last part (WS-2): member lists of versions in concurrent use must have
    /// intersecting majorities. A round at version h that went out after version g ≥ h + 2
    /// was committed uses both at once (h and h + 1 always intersect: they differ by one
    /// member). The round's start is bounded from its age on the coordinator's clock, which
    /// runs at least at the slowest rate the profile allows.
    func quorumReached(_ record: QuorumRecord, at node: NodeID) {
        let uri = record.stream
        let h = record.streamVersion
        guard let latest = latestStreamVersion[uri], latest >= h + 2, let host = world.serverHost(node) else { return }
        let ageLocal = host.clock.now.nanoseconds - record.startedAt.nanoseconds
        let startedAfter = world.trueNow - Int64(Double(ageLocal) / world.profile.clockRateRange.lowerBound)
        for g in (h + 2)...latest {
            guard let (members, committedAt) = streamVersions[uri]?[g], committedAt < startedAfter,
                Self.majoritiesCanMiss(record.members, members)
            else { continue }
            fail(
                "topology", [node],
                "a round on \(uri) at v\(h) \(record.members.map(\.short)) reached a majority after v\(g) "
                    + "\(members.map(\.short)) was committed; majorities of the two need not intersect (WS-2)")
            return
        }
    }

    /// Whether some majority of `a` and some majority of `b` are disjoint.
    static func majoritiesCanMiss(_ a: [NodeID], _ b: [NodeID]) -> Bool {
        let shared = Set(a).intersection(b).count
        let needA = max(0, a.count / 2 + 1 - (a.count - shared))
        let needB = max(0, b.count / 2 + 1 - (b.count - shared))
        return needA + needB <= shared
    }

    private func topologyStepProblem(from older: Topology, to newer: Topology) -> String? {
        for uri in newer.streams.keys.sorted() {
            let next = newer.streams[uri]!
            guard let previous = older.streams[uri] else {
                if next.version != 1 { return "\(uri) appears at version \(next.version)" }
                continue
            }
            if next.version == previous.version {
                if next.members != previous.members { return "\(uri) members changed without a version" }
            } else if next.version == previous.version + 1 {
                let changed = Set(next.members).symmetricDifference(previous.members)
                if changed.count > 1 { return "\(uri) changed \(changed.count) members at once" }
            } else {
                return "\(uri) went from version \(previous.version) to \(next.version)"
            }
        }
        return nil
    }

    // MARK: Membership

    /// WS-3: right after a member is removed, every committed entry must still be held by a
    /// majority of the remaining members (live or backfill table), or one more lost disk
    /// loses acknowledged data.
    /// What the members of a new list hold of `uri`: the current image of a member that is up,
    /// the durable one of a member that is down, retired members left out.
    private func memberImages(_ uri: StreamURI, _ members: [NodeID]) -> [DiskImage.StreamImage?] {
        world.servers.filter { members.contains($0.id) && !$0.isRetired }.map { host in
            (host.isUp ? host.disk.current : host.disk.durable).streams[uri]
        }
    }

    func checkMembersHoldCommitted(_ uri: StreamURI, _ members: [NodeID]) {
        let images = memberImages(uri, members)
        let majority = members.count / 2 + 1
        for (id, checksum) in (log[uri] ?? [:]).sorted(by: { $0.key < $1.key }) where id > 0 {
            let holders = images.filter { $0?.entry(id)?.checksum == checksum }
            if holders.count < majority {
                fail(
                    "acknowledged-durability", members,
                    "after a removal only \(holders.count) of \(members.count) members of \(uri) "
                        + "hold committed entry \(id) (WS-3)")
                return
            }
        }
    }

    /// After a removal a majority of the remaining members must carry the newest claim's
    /// stamp (or a newer one) on a tail at or above its claimed tail: a later claim sees one
    /// of them, and the stamp is what fences an older writer's unacknowledged entries above
    /// that tail. Seeds 9760 and 11348 lost it when one of a claim's two holders was removed.
    func checkMembersHoldNewestClaim(_ uri: StreamURI, _ members: [NodeID]) {
        guard let newest = (claims[uri] ?? []).max(by: { $0.writer < $1.writer }) else { return }
        let holders = memberImages(uri, members).filter { stream in
            guard let stream, let tailID = stream.live.keys.max(), let tail = stream.live[tailID] else { return false }
            return tail.id >= newest.tail.id && tail.writerID >= newest.writer
        }
        if holders.count < members.count / 2 + 1 {
            fail(
                "claim-stamp-quorum", members,
                "after a removal only \(holders.count) of \(members.count) members of \(uri) "
                    + "carry \(newest.writer)'s claim of tail \(newest.tail.id)")
        }
    }

    // MARK: Servers

    /// Invariants 9 (committed id monotonic while up) and 11 (writer ids never decrease); new
    /// committed entries go into the log.
    func observeServer(_ host: ServerHost) {
        guard host.isUp else { return }
        let streams = world.checkedStreams
        if host.oracleCommitted.isEmpty {
            host.oracleCommitted = Array(repeating: 0, count: streams.count)
            host.oracleWriter = Array(repeating: .zero, count: streams.count)
        }
        for (index, uri) in streams.enumerated() {
            guard let metadata = host.node.metadata(of: uri) else {
                // Not (or no longer) a member: a later re-add starts from nothing (WS-6).
                host.oracleCommitted[index] = 0
                host.oracleWriter[index] = .zero
                continue
            }
            let last = host.oracleCommitted[index]
            if metadata.committedID < last {
                fail(
                    "committed-id-monotonic", [host.id],
                    "\(uri) committed id went from \(last) to \(metadata.committedID)")
            } else if metadata.committedID > last {
                let image = host.disk.current.streams[uri]!
                for id in (last + 1)...metadata.committedID {
                    if let entry = image.servedEntry(id) {
                        committed(uri, entry, by: host.id, what: "server committed")
                    }
                }
                host.oracleCommitted[index] = metadata.committedID
            }
            if metadata.writerID < host.oracleWriter[index] {
                fail(
                    "writer-ids-never-decrease", [host.id],
                    "\(uri) writer went from \(host.oracleWriter[index]) to \(metadata.writerID)")
            }
            host.oracleWriter[index] = metadata.writerID
        }
    }

    /// The newest writer any NewWriter carried, per stream: what may fence a writer.
    private var newestWriterProposed: [StreamURI: WriterID] = [:]

    /// Invariant 2 at the source: a member acknowledges a put only once the entry is durable.
    func messageSent(_ message: Message, from source: NodeID, to target: NodeID) {
        switch message {
        case .newWriter(let header, let writer, _, _):
            newestWriterProposed[header.stream] = max(newestWriterProposed[header.stream] ?? .zero, writer)
        case .putEntryInternal(let header, _, let entry, _, _) where entry.id > 0:
            internalPuts[CallKey(coordinator: source, member: target, requestID: header.requestID)] =
                DurableEntryKey(uri: header.stream, id: entry.id, checksum: entry.checksum)
        case .response(let requestID, let reply):
            let key = CallKey(coordinator: target, member: source, requestID: requestID)
            if let expected = refusalExpected, expected.key == key, case .ok = reply {
                fail("hostile-acknowledged", [source, target], expected.detail)
            }
            guard let put = internalPuts.removeValue(forKey: key), case .ok = reply,
                let member = world.servers.first(where: { $0.id == source })
            else { return }
            if !member.disk.everDurable.contains(put) {
                fail(
                    "acknowledged-durability", [source, target],
                    "\(source) acknowledged \(put.uri) entry \(put.id) before it was durable")
            }
            let join = DurableEntryKey(uri: put.uri, id: source.rawValue, checksum: 0)
            if let joinedAt = joins[join] {
                if member.node.metadata(of: put.uri)?.hasGap == true { liveAcksDuringBackfill += 1 }
                if firstAckSeen.insert(join).inserted {
                    firstLiveAckAfterJoin = max(firstLiveAckAfterJoin ?? 0, world.trueNow - joinedAt)
                }
            }
        default:
            return
        }
    }

    // MARK: Hostile input

    /// A hostile request's answer (invariant "hostile-acknowledged"): what is invalid by
    /// construction is refused, with the code the boundary documents.
    func hostileAnswered(
        _ expectation: HostileExpectation, _ what: String, _ reply: Reply, client: NodeID, server: NodeID
    ) {
        observations += 1
        guard case .refused(let codes) = expectation else { return }
        guard case .failed(let error) = reply else {
            fail("hostile-acknowledged", [server, client], "\(what) was answered \(reply), not refused")
            return
        }
        if let codes, !codes.contains(error.code) {
            fail(
                "hostile-acknowledged", [server, client],
                "\(what) was refused with \(error), expected \(codes.map(\.rawValue).sorted())")
        }
    }

    /// A heartbeat a member must refuse, between its delivery and the member's answer.
    private var refusalExpected: (key: CallKey, detail: String)?

    /// Before a member handles a heartbeat: if its commit marker differs from the member's own
    /// entry at that id (the committed one, or one a writer not older than the heartbeat's
    /// wrote), the marker cannot be true and the member must refuse it. Checked for every
    /// heartbeat, honest or hostile; hostile clients forge such markers on purpose.
    func heartbeatArriving(_ message: Message, from source: NodeID, at host: ServerHost) {
        refusalExpected = nil
        guard case .putEntryInternal(let header, .write, let beat, let markerID, let markerChecksum) = message,
            beat.id == 0, header.target == host.id, let window = host.node.window(of: header.stream),
            let first = window.first, markerID >= first.id, markerID - first.id < UInt64(window.count)
        else { return }
        let local = window[Int(markerID - first.id)]
        guard local.checksum != markerChecksum, markerID == first.id || local.writerID >= beat.writerID else { return }
        refusalExpected = (
            CallKey(coordinator: source, member: host.id, requestID: header.requestID),
            "\(host.id.short) answered ok to a heartbeat of \(beat.writerID) on \(header.stream) whose commit marker "
                + "\(markerID) (xx=\(hex16(markerChecksum).prefix(8))) differs from its \(local.brief)")
    }

    func heartbeatHandled() { refusalExpected = nil }

    // MARK: Writers

    func writerEvent(_ host: WriterHost, _ event: WriterEvent) {
        switch event {
        case .claimed(let writer, let tail):
            claimed(host.uri, writer, tail, by: host.id)
        case .putAcknowledged(let entry):
            acknowledged[host.uri, default: [:]][entry.id] = entry
            let highest = max(lastAcknowledged[host.uri]?.id ?? 0, entry.id)
            lastAcknowledged[host.uri] = (world.trueNow, highest)
            committed(host.uri, entry, by: host.id, what: "acknowledged put")
            for claim in claims[host.uri] ?? [] where claim.writer > entry.writerID && claim.tail.id < entry.id {
                fail(
                    "writer-fencing", [host.id],
                    "\(entry.brief) acknowledged to \(entry.writerID) lies above "
                        + "\(claim.writer)'s claimed tail \(claim.tail.id)")
            }
        case .closed(let error):
            writerClosed(host, error)
        case .claimFailed:
            break
        }
    }

    /// Every refusal a writer meets under load (full queues, windows and call tables,
    /// answers held for a sync, timeouts) is retryable: a writer closes only when a newer
    /// writer was proposed for its stream (it was fenced), never because a limit said no.
    private func writerClosed(_ host: WriterHost, _ error: WalleError) {
        let writer = host.node.client.writerID
        guard writer != .zero, (newestWriterProposed[host.uri] ?? .zero) <= writer else { return }
        fail(
            "writer-closed-unfenced", [host.id],
            "\(host.id.short) closed on \(host.uri) by \(error); no newer writer than \(writer) was proposed")
    }

    /// Invariant 5 (claim monotonicity) and 6(a): a claimed tail covers every put already
    /// acknowledged to an older writer, and tails grow with writer ids.
    func claimed(_ uri: StreamURI, _ writer: WriterID, _ tail: Entry, by node: NodeID) {
        committed(uri, tail, by: node, what: "claimed tail")
        for other in claims[uri] ?? [] {
            let ordered = other.writer < writer ? other.tail.id <= tail.id : other.tail.id >= tail.id
            if !ordered {
                fail(
                    "claim-monotonicity", [node],
                    "\(writer) claimed tail \(tail.id) but \(other.writer) claimed \(other.tail.id)")
            }
        }
        for (id, entry) in (acknowledged[uri] ?? [:]).sorted(by: { $0.key < $1.key })
            where entry.writerID < writer && id > tail.id
        {
            fail(
                "writer-fencing", [node],
                "\(writer) claimed tail \(tail.id) below \(entry.brief), acknowledged to an older writer")
        }
        claims[uri, default: []].append((writer, tail))
    }

    /// Invariant 7: at any true instant at most one writer of a stream is exclusive, and what
    /// an exclusive writer holds as committed is in the log.
    func observeWriter(_ host: WriterHost) {
        guard host.node.isExclusive() else { return }
        for other in world.writers where other !== host && other.uri == host.uri && other.node.isExclusive() {
            fail(
                "lease-exclusivity", [host.id, other.id],
                "\(host.node.client.writerID) and \(other.node.client.writerID) are both exclusive on \(host.uri)")
        }
        let marker = host.node.client.committed
        if let known = log[host.uri]?[marker.id], known != marker.checksum {
            fail("lease-exclusivity", [host.id], "exclusive writer's committed entry \(marker.id) is not the log's")
        }
    }

    // MARK: Reads

    /// Invariant 8: server reads return committed entries only, contiguous from the start.
    func readAnswered(_ request: ReaderHost.ReadRequest, _ reply: Reply, reader: NodeID) {
        switch (request.kind, reply) {
        case (.poll(let from), .entry(let entry)):
            if entry.id < from {
                fail("server-reads", [request.server, reader], "PollStream from \(from) returned \(entry.id)")
            }
            committed(request.uri, entry, by: request.server, what: "PollStream")
        case (.entries(let start, let end), .entries(let entries)):
            for (offset, entry) in entries.enumerated() where entry.id != start + EntryID(offset) || entry.id >= end {
                fail(
                    "server-reads", [request.server, reader],
                    "StreamEntries [\(start),\(end)) returned \(entry.id) at position \(offset)")
                return
            }
            for entry in entries { committed(request.uri, entry, by: request.server, what: "StreamEntries") }
        default:
            return
        }
    }

    // MARK: End of run

    /// Every server's committed entries agree with the log and chain; every acknowledged put
    /// is durable somewhere.
    func finish() {
        for host in world.servers where !host.isRetired {
            for uri in world.checkedStreams {
                guard host.isUp, let metadata = host.node.metadata(of: uri),
                    let image = host.disk.current.streams[uri]
                else { continue }
                for id in 0...metadata.committedID {
                    if let entry = image.servedEntry(id) { committed(uri, entry, by: host.id, what: "final scan") }
                }
            }
        }
        for uri in world.checkedStreams {
            for id in (acknowledged[uri] ?? [:]).keys.sorted() where id > 0 {
                let entry = acknowledged[uri]![id]!
                let holders = world.servers.filter {
                    !$0.isRetired && $0.disk.durable.streams[uri]?.entry(id)?.checksum == entry.checksum
                }
                if holders.isEmpty {
                    fail(
                        "acknowledged-durability", [],
                        "\(uri) entry \(id) was acknowledged but no server holds it durably")
                }
            }
        }
    }
}
