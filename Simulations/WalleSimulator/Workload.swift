import WalleCore
import WalleEnvironment
import WalleNode

enum WorkloadAction {
    case claim(writer: Int)
    case burst(writer: Int, generation: UInt64)
    case pause(writer: Int)
    case resume(writer: Int)
    case read(reader: Int)
    case clockRate(NodeID)
    case manager(ManagerTimer)
    /// The trimmer's next trim.
    case trim
}

/// Drives the clients: competing writers that claim, pipeline bursts of puts, pause (a frozen
/// process, so its lease runs out and another writer takes over) and come back to find they
/// were fenced; and readers polling random servers.
final class Workload: WorkloadControl {
    private let agenda: Agenda
    private let trace: Trace
    private let counters: SimCounters
    private var random: SimRandom
    private let profile: Profile
    private let plantedBugs: Set<PlantedBug>
    private let cluster: Cluster
    private let clocks: ClockFactory
    private let network: SimNetwork
    private unowned let observer: any ClientObserver
    private unowned let clockControl: any ClockControl
    private(set) var streams: [StreamURI] = []
    private(set) var putsIssued = 0
    private(set) var claimsSucceeded = 0
    private var isHealed = false
    private var isQuiescent = false

    private var pausesAllowed: Bool { profile.faults.pausesEnabled && !isHealed }

    /// The fault phase is over: paused writers resume and nobody pauses again.
    func healed() {
        isHealed = true
        for (index, host) in cluster.writers.enumerated() where host.paused {
            after(.zero, .resume(writer: index))
        }
    }

    /// The liveness phase saw every stream write: stop new puts so commits settle everywhere.
    func quiesce() {
        isQuiescent = true
        trace.line(agenda.trueNow, "workload: no more puts (settling)")
    }

    init(
        agenda: Agenda, trace: Trace, counters: SimCounters, random: SimRandom, profile: Profile,
        plantedBugs: Set<PlantedBug>, cluster: Cluster, clocks: ClockFactory, network: SimNetwork,
        observer: any ClientObserver, clockControl: any ClockControl
    ) {
        self.agenda = agenda
        self.trace = trace
        self.counters = counters
        self.random = random
        self.profile = profile
        self.plantedBugs = plantedBugs
        self.cluster = cluster
        self.clocks = clocks
        self.network = network
        self.observer = observer
        self.clockControl = clockControl
    }

    /// Creates the streams (version 1 on their members), the writers and the readers, and
    /// returns the initial topology the manager writes as version 1.
    func buildClients(rootMembers: [NodeID]) -> Topology {
        let servers = cluster.serverIDs
        var rateIndex = profile.serverCount
        var initial = Topology(version: 1, streams: [:])
        let root = StreamTopology(version: 1, members: rootMembers)
        initial.streams[World.rootStream] = root
        for host in cluster.servers where root.contains(host.id) {
            host.node.createStream(World.rootStream, topology: root)
        }
        for streamIndex in 0..<profile.streamCount {
            let uri = try! StreamURI("/sim/stream_\(streamIndex)")
            streams.append(uri)
            // Five-server clusters give each stream three members, so not every server holds it.
            let members = profile.serverCount == 3 ? servers : Array(random.shuffled(servers).prefix(3))
            let topology = StreamTopology(version: 1, members: members)
            initial.streams[uri] = topology
            for host in cluster.servers where topology.contains(host.id) {
                host.node.createStream(uri, topology: topology)
            }
            for _ in 0..<profile.writersPerStream {
                addWriter(
                    uri, members: topology.members, rootMembers: rootMembers,
                    rateIndex: rateIndex % profile.clockRates.count)
                rateIndex += 1
            }
        }
        for index in 0..<profile.readerCount {
            let id = NodeID.client(UInt64(1000 + index))
            cluster.readers.append(ReaderHost(
                id: id, rootMembers: rootMembers, cluster: cluster, network: network, observer: observer))
            cluster.register(id, .reader(index))
        }
        return initial
    }

    private func addWriter(_ uri: StreamURI, members: [NodeID], rootMembers: [NodeID], rateIndex: Int) {
        let index = cluster.writers.count
        let id = NodeID.client(UInt64(100 + index))
        let lease = Duration.milliseconds(
            random.int(in: profile.leaseMin.milliseconds...profile.leaseMax.milliseconds))
        var configuration = WriterConfiguration(address: "client-\(id.short.dropFirst())", lease: lease)
        configuration.putsInFlightMax = profile.load.putsInFlightMax
        configuration.putsPendingMax = max(configuration.putsPendingMax, profile.load.pendingMax)
        configuration.plantedBugs = plantedBugs
        // Writers follow the topology themselves, as the client library's do.
        configuration.topologySource = TopologySource(rootStream: World.rootStream, rootMembers: rootMembers)
        let client = WriterClient(
            id: id, uri: uri, servers: members, configuration: configuration,
            firstServer: random.int(in: 0...members.count - 1))
        let clock = clocks.makeClock(id, rateIndex: rateIndex)
        cluster.writers.append(WriterHost(
            id: id, uri: uri, clock: clock, node: SimWriterNode(client: client, clock: clock, network: network)))
        cluster.register(id, .writer(index))
    }

    func start() {
        for index in cluster.writers.indices {
            let first = index % profile.writersPerStream == 0
            after(.milliseconds(first ? random.int(in: 1...200) : random.int(in: 200...5000)), .claim(writer: index))
        }
        for index in cluster.readers.indices {
            after(.milliseconds(random.int(in: 100...500)), .read(reader: index))
        }
        for host in cluster.servers + [] { scheduleRateChange(host.id) }
        for host in cluster.writers { scheduleRateChange(host.id) }
    }

    private func scheduleRateChange(_ node: NodeID) {
        guard random.chance(profile.rateChangeProbability * 5) else { return }
        after(.milliseconds(random.int(in: 500...20_000)), .clockRate(node))
    }

    func after(_ delay: Duration, _ action: WorkloadAction) {
        agenda.schedule(at: agenda.trueNow + delay.nanoseconds, .workload(action))
    }

    func perform(_ action: WorkloadAction) {
        switch action {
        case .claim(let index):
            let host = cluster.writers[index]
            guard !host.paused else { return }
            // After the heal clients are polite (as WaitAndClaim would be): no claim while
            // another writer of the stream is claiming or active.
            if isHealed && cluster.writers.contains(where: {
                $0 !== host && $0.uri == host.uri && $0.node.client.phase != .idle && !$0.node.client.phase.isClosed
            }) {
                after(.milliseconds(random.int(in: 200...1000)), .claim(writer: index))
                return
            }
            switch host.node.client.phase {
            case .idle, .closed:
                trace.line(agenda.trueNow, "\(host.id.short) claims \(host.uri)")
                observer.claimInvoked(host)
                writerEvents(host, host.node.claim())
            default:
                return
            }
        case .burst(let index, let generation):
            burst(cluster.writers[index], generation: generation)
        case .pause(let index):
            pause(cluster.writers[index])
        case .resume(let index):
            resume(cluster.writers[index])
        case .read(let index):
            cluster.readers[index].issueRead(
                random: &random, streams: streams, now: Instant(nanoseconds: agenda.trueNow))
            after(.milliseconds(random.int(in: 10...300)), .read(reader: index))
        case .manager, .trim:
            preconditionFailure("the world hands manager actions to the manager, trims to the trimmer")
        case .clockRate(let node):
            let rate = random.double(in: profile.clockRateRange)
            counters.count(.clockRateChange)
            trace.line(agenda.trueNow, "\(node.short) clock rate -> \(Int(rate * 100))%")
            clockControl.setClockRate(node, rate)
            scheduleRateChange(node)
        }
    }

    func writerEvents(_ host: WriterHost, _ events: [WriterEvent]) {
        let index = cluster.writers.firstIndex { $0 === host }!
        for event in events {
            trace.line(agenda.trueNow, "\(host.id.short) event: \(event.brief)")
            observer.writerEvent(host, event)
            switch event {
            case .claimed:
                claimsSucceeded += 1
                host.burstGeneration += 1
                after(.zero, .burst(writer: index, generation: host.burstGeneration))
                after(.milliseconds(random.int(in: 300...8000)), .pause(writer: index))
            case .claimFailed, .closed:
                after(.milliseconds(random.int(in: 50...3000)), .claim(writer: index))
            case .putAcknowledged:
                break
            }
        }
        observer.observeWriter(host)
    }

    private func burst(_ host: WriterHost, generation: UInt64) {
        guard !host.paused, !isQuiescent, generation == host.burstGeneration, host.node.client.phase == .active
        else { return }
        let load = profile.load
        let count = random.int(in: 1...load.burstMax)
        for _ in 0..<count where host.node.client.pendingCount < load.pendingMax {
            let size = random.int(in: 0...300)
            let fill = UInt8(truncatingIfNeeded: random.next())
            let data = [UInt8](repeating: fill, count: size)
            do {
                let (entry, events) = try host.node.put(data)
                observer.putInvoked(host, entry)
                putsIssued += 1
                writerEvents(host, events)
            } catch {
                break
            }
        }
        let index = cluster.writers.firstIndex { $0 === host }!
        after(
            .milliseconds(random.int(in: 2...max(2, load.burstGapMax.milliseconds))),
            .burst(writer: index, generation: generation))
    }

    private func pause(_ host: WriterHost) {
        guard !host.paused, host.node.client.phase == .active, pausesAllowed else { return }
        host.paused = true
        counters.count(.writerPause)
        trace.line(agenda.trueNow, "\(host.id.short) pauses")
        let index = cluster.writers.firstIndex { $0 === host }!
        let lease = host.node.client.configuration.lease
        after(.nanoseconds(random.int(in: 0...lease.nanoseconds * 4)), .resume(writer: index))
        // Someone else should notice and take over soon.
        let peers = cluster.writers.indices.filter { cluster.writers[$0].uri == host.uri && $0 != index }
        if let peer = peers.isEmpty ? nil : random.pick(peers) {
            after(.milliseconds(random.int(in: 0...200)), .claim(writer: peer))
        }
    }

    private func resume(_ host: WriterHost) {
        guard host.paused else { return }
        host.paused = false
        trace.line(agenda.trueNow, "\(host.id.short) resumes")
        writerEvents(host, host.node.wake())
        let index = cluster.writers.firstIndex { $0 === host }!
        host.burstGeneration += 1
        after(.zero, .burst(writer: index, generation: host.burstGeneration))
        after(.milliseconds(random.int(in: 300...8000)), .pause(writer: index))
    }
}

extension WriterClient.Phase {
    var isClosed: Bool { if case .closed = self { return true } else { return false } }
}

extension WriterEvent {
    var brief: String {
        switch self {
        case .claimed(let writer, let tail): return "claimed as \(writer) from \(tail.brief)"
        case .claimFailed(let error): return "claim failed: \(error)"
        case .putAcknowledged(let entry): return "acknowledged \(entry.brief)"
        case .closed(let error): return "closed: \(error)"
        }
    }
}

/// A reader client: PollStream and StreamEntries at random members of a stream, as the
/// topology it follows itself names them (`TopologyFollower`, the client library's); the oracle
/// checks every answer against the committed log.
final class ReaderHost {
    let id: NodeID
    /// Unowned: the cluster holds its readers, and a strong reference back kept every seed's
    /// cluster (its servers and their disk images) alive in a sweep. Read only for the oracle's
    /// bookkeeping (a server's first entry), never to choose where to read.
    private unowned let cluster: Cluster
    private let network: SimNetwork
    private unowned let observer: any ClientObserver
    private var nextRequestID: RequestID = 0
    private var pending: [RequestID: ReadRequest] = [:]
    /// A reader keeps this many reads out at once.
    static let pendingMax = 64
    /// A read unanswered this long was lost with a crashed or cut-off server: its slot comes
    /// back. Longer than a server holds a long poll (5 s).
    static let readTimeout: Duration = .seconds(10)
    private var knownCommitted: [StreamURI: EntryID] = [:]
    private var follower: TopologyFollower
    /// Each stream as the newest stream version the reader has seen names it; one entry per
    /// stream of the topology (bounded by the topology's own stream bound).
    private(set) var streams: [StreamURI: StreamTopology] = [:]

    struct ReadRequest {
        var uri: StreamURI
        var server: NodeID
        var kind: Kind
        /// The server's first entry when the request was sent: it must serve nothing below.
        var firstEntryKnown: EntryID = 0
        var sentAt = Instant(nanoseconds: 0)

        enum Kind {
            case poll(EntryID)
            case entries(start: EntryID, end: EntryID)
        }
    }

    init(id: NodeID, rootMembers: [NodeID], cluster: Cluster, network: SimNetwork, observer: any ClientObserver) {
        self.id = id
        self.cluster = cluster
        self.network = network
        self.observer = observer
        let writer = WriterConfiguration(address: "reader", lease: .seconds(1))
        self.follower = TopologyFollower(
            TopologySource(rootStream: World.rootStream, rootMembers: rootMembers), requestIDBase: 0,
            roundTimeout: writer.topologyRoundTimeout, retryDelay: writer.topologyRetryDelay)
    }

    /// One read of a random stream at a random member, once the topology names its members.
    /// Also the reader's tick: the follower's next round, lost reads forgotten.
    func issueRead(random: inout SimRandom, streams: [StreamURI], now: Instant) {
        send(follower.start(now: now) + follower.tick(now: now))
        pending = pending.filter { $0.value.sentAt + Self.readTimeout > now }
        guard pending.count < Self.pendingMax else { return }
        let uri = random.pick(streams)
        guard let members = self.streams[uri]?.members, !members.isEmpty else { return }
        let server = random.pick(members)
        let firstEntryKnown = cluster.servers.first { $0.id == server }?.node.metadata(of: uri)?.firstEntryID ?? 0
        let known = knownCommitted[uri] ?? 0
        nextRequestID += 1
        if random.chance(0.5) {
            let from = known + EntryID(random.int(in: 0...3))
            pending[nextRequestID] = ReadRequest(
                uri: uri, server: server, kind: .poll(from), firstEntryKnown: firstEntryKnown, sentAt: now)
            network.send(.pollStream(nextRequestID, uri, pollEntryID: from), from: id, to: server)
        } else {
            let start = EntryID(random.int(in: max(0, Int64(known) - 50)...Int64(known) + 2))
            let end = start + EntryID(random.int(in: 1...64))
            pending[nextRequestID] = ReadRequest(
                uri: uri, server: server, kind: .entries(start: start, end: end), firstEntryKnown: firstEntryKnown,
                sentAt: now)
            network.send(.streamEntries(nextRequestID, uri, start: start, end: end), from: id, to: server)
        }
    }

    func receive(_ message: Message, from source: NodeID, now: Instant) {
        guard case .response(let requestID, let reply) = message else { return }
        if let answer = follower.answered(requestID, reply, from: source, now: now) {
            if let topology = answer.topology { follow(topology) }
            send(answer.polls)
            return
        }
        guard let request = pending.removeValue(forKey: requestID) else { return }
        observer.readAnswered(request, reply, reader: id)
        switch reply {
        case .entry(let entry):
            knownCommitted[request.uri] = max(knownCommitted[request.uri] ?? 0, entry.id)
        case .entries(let entries):
            if let last = entries.last {
                knownCommitted[request.uri] = max(knownCommitted[request.uri] ?? 0, last.id)
            }
        default:
            break
        }
    }

    /// Each stream version decides alone, as for writers: a lagging root member's older
    /// topology never undoes a newer member list.
    private func follow(_ topology: Topology) {
        for (uri, stream) in topology.streams where stream.version > streams[uri]?.version ?? 0 {
            streams[uri] = stream
        }
    }

    private func send(_ polls: [TopologyFollower.Poll]) {
        for poll in polls { network.send(poll.message, from: id, to: poll.server) }
    }
}
