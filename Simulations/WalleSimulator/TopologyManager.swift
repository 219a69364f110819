import WalleCore
import WalleEnvironment
import WalleNode

/// The topology manager (docs/protocol.md, "StreamStatus and the manager"): the writer of the
/// root stream, whose entry N is topology version N. It makes one membership change at a
/// time, each a single add or remove ([MEM-2]), and waits before each:
/// - a majority of the stream's members are at its current version ([MEM-4]; with the
///   members' strict version check this closes WS-2);
/// - before a removal, a majority of the remaining members have no gap and hold everything
///   that may have been acknowledged under the newest writer's stamp (`settled`, closes WS-3,
///   and keeps the newest claim's stamp on a majority).
final class TopologyManager: TopologyControl {
    enum Change: CustomStringConvertible {
        case add(StreamURI, NodeID)
        case remove(StreamURI, NodeID)

        var uri: StreamURI {
            switch self {
            case .add(let uri, _), .remove(let uri, _): return uri
            }
        }

        var description: String {
            switch self {
            case .add(let uri, let node): return "add \(node.short) to \(uri)"
            case .remove(let uri, let node): return "remove \(node.short) from \(uri)"
            }
        }
    }

    let host: WriterHost
    private var random: SimRandom
    private let agenda: Agenda
    private let trace: Trace
    private let counters: SimCounters
    private let network: SimNetwork
    private unowned let observer: any ClientObserver & MembershipObserver
    private unowned let listener: any TopologyListener
    private(set) var topology = Topology.empty
    private(set) var pending: [Change] = []
    private var writing: (topology: Topology, entryID: EntryID, change: Change?)?
    private var statusRequest: RequestID?
    private var nextRequestID: RequestID = 1 << 40
    private var claimed = false
    /// What the pending removal waits for (see `ready`); cleared once a change is written.
    private var removalTarget: (id: EntryID, newestWriter: WriterID)?
    /// Rotates the member asked for status, so a dead member is skipped on the next try.
    private var statusCursor = 0
    let initial: Topology

    init(
        host: WriterHost, random: SimRandom, initial: Topology, agenda: Agenda, trace: Trace, counters: SimCounters,
        network: SimNetwork, observer: any ClientObserver & MembershipObserver, listener: any TopologyListener
    ) {
        self.host = host
        self.random = random
        self.agenda = agenda
        self.trace = trace
        self.counters = counters
        self.network = network
        self.observer = observer
        self.listener = listener
        self.initial = initial
        self.statusCursor = Int(self.random.next() % 64)
    }

    var isIdle: Bool { pending.isEmpty && writing == nil }

    /// The manager's timers are workload events, handed back to it by the world.
    private func after(_ delay: Duration, _ action: WorkloadAction) {
        agenda.schedule(at: agenda.trueNow + delay.nanoseconds, .workload(action))
    }

    func start() { after(.milliseconds(1), .managerClaim) }

    func enqueue(_ changes: [Change]) {
        pending += changes
        trace.line(agenda.trueNow, "manager: queued \(changes.map(\.description).joined(separator: ", "))")
        if claimed && writing == nil && statusRequest == nil { askStatus() }
    }

    func claim() {
        switch host.node.client.phase {
        case .idle, .closed: handle(host.node.claim())
        default: return
        }
    }

    /// Events of the manager's writer.
    func handle(_ events: [WriterEvent]) {
        for event in events {
            trace.line(agenda.trueNow, "manager event: \(event.brief)")
            observer.writerEvent(host, event)
            switch event {
            case .claimed(_, let tail):
                claimedTail(tail)
            case .putAcknowledged(let entry):
                committedVersion(entry)
            case .claimFailed, .closed:
                claimed = false
                removalTarget = nil
                writing = nil
                statusRequest = nil
                after(.milliseconds(random.int(in: 50...500)), .managerClaim)
            }
        }
    }

    private func claimedTail(_ tail: Entry) {
        do {
            topology = try Topology.decode(tail.data, entryID: tail.id)
        } catch {
            observer.fail(.topology, [host.id], "root entry \(tail.id) does not decode: \(error)")
            return
        }
        claimed = true
        // A change whose version committed while its acknowledgement was lost is already in
        // the claimed topology: doing it again would add a member twice.
        pending.removeAll { change in
            switch change {
            case .add(let uri, let node): return topology.streams[uri]?.contains(node) ?? false
            case .remove(let uri, let node): return !(topology.streams[uri]?.contains(node) ?? true)
            }
        }
        if topology.version == 0 {
            write(initial, change: nil)
        } else {
            listener.topologyChanged(topology)
            if !pending.isEmpty { askStatus() }
        }
    }

    private func write(_ next: Topology, change: Change?) {
        precondition(next.version == topology.version + 1, "topology versions grow by one ([TOPO-3])")
        let encoded = next.encoded()
        guard encoded.count <= Topology.encodedSizeMax else {
            observer.fail(
                .topology, [host.id], "topology v\(next.version) is \(encoded.count) bytes, over one entry")
            return
        }
        do {
            let (entry, events) = try host.node.put(encoded)
            precondition(entry.id == next.version, "entry N holds version N ([TOPO-1])")
            observer.entryWritten(World.rootStream, entry)
            writing = (next, entry.id, change)
            removalTarget = nil
            handle(events)
        } catch {
            after(.milliseconds(100), .managerRetry)
        }
    }

    private func committedVersion(_ entry: Entry) {
        guard let writing, entry.id == writing.entryID else { return }
        self.writing = nil
        topology = writing.topology
        let change = writing.change.map { " (\($0))" } ?? ""
        trace.line(agenda.trueNow, "manager: topology v\(topology.version) committed\(change)")
        listener.topologyChanged(topology)
        if let change = writing.change {
            counters.count(.membershipChange)
            switch change {
            case .remove(let uri, _):
                observer.checkMembersHoldCommitted(uri, topology.streams[uri]!.members)
                observer.checkMembersHoldNewestClaim(uri, topology.streams[uri]!.members)
            case .add(let uri, let node): observer.joined(node, uri)
            }
            pending.removeFirst()
        }
        if !pending.isEmpty { askStatus() }
    }

    func retry() {
        guard claimed, writing == nil, statusRequest == nil, !pending.isEmpty else { return }
        askStatus()
    }

    /// Asks a member of the next change's stream for every member's status.
    private func askStatus() {
        guard let change = pending.first, let stream = topology.streams[change.uri] else { return }
        nextRequestID += 1
        statusRequest = nextRequestID
        statusCursor += 1
        let target = stream.members[statusCursor % stream.members.count]
        network.send(.streamStatus(nextRequestID, change.uri), from: host.id, to: target)
        after(.seconds(2), .managerStatusTimeout(nextRequestID))
    }

    func statusTimedOut(_ requestID: RequestID) {
        guard statusRequest == requestID else { return }
        statusRequest = nil
        askStatus()
    }

    /// A StreamStatus answer for the manager (not a writer message).
    func receive(_ message: Message) -> Bool {
        guard case .response(let requestID, let reply) = message, requestID == statusRequest else { return false }
        statusRequest = nil
        guard case .streamStatus(let infos) = reply, let change = pending.first, claimed, writing == nil else {
            after(.milliseconds(100), .managerRetry)
            return true
        }
        if ready(change, infos) {
            write(applying(change), change: change)
        } else {
            after(.milliseconds(100), .managerRetry)
        }
        return true
    }

    private func ready(_ change: Change, _ infos: [WriterInfo]) -> Bool {
        let stream = topology.streams[change.uri]!
        let current = infos.filter { stream.contains($0.server) && $0.streamVersion == stream.version }
        guard current.count >= stream.majority else { return false }
        guard case .remove(_, let leaving) = change else { return true }
        let remaining = stream.members.filter { $0 != leaving }
        // Fixed at the first answer with a majority on the current version: entries
        // acknowledged under the previous list all precede it (members refuse the puts
        // still queued when they learn a version), while later ones are on a
        // majority of the current list, which the remaining members meet. A target that
        // followed the tail would chase a busy writer past slow members forever.
        let target = removalTarget ?? Self.settled(infos)
        removalTarget = target
        let (settled, newest) = target
        let caughtUp = current.filter { info in
            guard remaining.contains(info.server), !info.hasGap else { return false }
            // The tail must carry the newest writer's stamp (or a newer one) through `settled`.
            // Holding that writer's chain is as good as having it committed: a writer writes
            // each id once, and a member only takes an entry that chains onto its own previous
            // one. Having committed through `settled` under an older stamp is not enough: the
            // stamp of the newest claim is what fences older writers' unacknowledged entries
            // above its tail, and removing one of its two holders lost it (seeds 9760 and
            // 11348). Members take a newer stamp from a peer after a StreamStatus round
            // (`ServerCore.pullNewerStamp`), so an idle stream gets there too.
            return info.tailWriterID >= newest && info.tailID >= settled
        }
        return caughtUp.count >= remaining.count / 2 + 1
    }

    /// The id the remaining members must have committed before a removal (WS-3). Beyond
    /// everything committed anywhere, that is the tail of the newest writer's entries: one of
    /// them may have been acknowledged under the previous member list, on a majority of it
    /// that the remaining members need not intersect (seed 15 with --replica-moves). The
    /// answers come from a majority of the current list, which meets every majority of the
    /// previous one, so one holder of each such entry answers. Tails of fenced writers are
    /// left out: the newest writer's claim adopted whatever of theirs was acknowledged, and
    /// counting their leftovers would stall the removal until someone overwrites them.
    static func settled(_ infos: [WriterInfo]) -> (id: EntryID, newestWriter: WriterID) {
        let committed = infos.map(\.committedID).max() ?? 0
        let newest = infos.map(\.tailWriterID).max() ?? .zero
        let newestTail = infos.filter { $0.tailWriterID == newest }.map(\.tailID).max() ?? 0
        return (max(committed, newestTail), newest)
    }

    private func applying(_ change: Change) -> Topology {
        var next = topology
        next.version += 1
        var stream = next.streams[change.uri]!
        stream.version += 1
        switch change {
        case .add(_, let node): stream = StreamTopology(version: stream.version, members: stream.members + [node])
        case .remove(_, let node):
            stream = StreamTopology(version: stream.version, members: stream.members.filter { $0 != node })
        }
        next.streams[change.uri] = stream
        return next
    }
}

/// Where the manager reports what its membership changes must keep (the oracle).
protocol MembershipObserver: AnyObject {
    func fail(_ invariant: Invariant, _ nodes: [NodeID], _ detail: String)
    func checkMembersHoldCommitted(_ uri: StreamURI, _ members: [NodeID])
    func checkMembersHoldNewestClaim(_ uri: StreamURI, _ members: [NodeID])
    func joined(_ node: NodeID, _ uri: StreamURI)
}

/// Who routes clients to a committed topology (the world).
protocol TopologyListener: AnyObject {
    func topologyChanged(_ topology: Topology)
}
