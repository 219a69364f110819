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
    case managerClaim
    case route(writer: Int, members: [NodeID], version: UInt64)
    case managerRetry
    case managerStatusTimeout(RequestID)
}

/// Drives the clients: competing writers that claim, pipeline bursts of puts, pause (a frozen
/// process, so its lease runs out and another writer takes over) and come back to find they
/// were fenced; and readers polling random servers.
final class Workload {
    unowned let world: World
    private var random: SimRandom
    private(set) var streams: [StreamURI] = []
    private(set) var putsIssued = 0
    private(set) var claimsSucceeded = 0
    private var isHealed = false
    private var isQuiescent = false

    private var pausesAllowed: Bool { world.profile.faults.pausesEnabled && !isHealed }

    /// The fault phase is over: paused writers resume and nobody pauses again.
    func healed() {
        isHealed = true
        for (index, host) in world.writers.enumerated() where host.paused {
            after(.zero, .resume(writer: index))
        }
    }

    /// The liveness phase saw every stream write: stop new puts so commits settle everywhere.
    func quiesce() {
        isQuiescent = true
        world.trace.line(world.trueNow, "workload: no more puts (settling)")
    }

    init(world: World, random: SimRandom) {
        self.world = world
        self.random = random
    }

    /// Creates the streams (version 1 on their members), the writers and the readers, and
    /// returns the initial topology the manager writes as version 1.
    func buildClients() -> Topology {
        let profile = world.profile
        let servers = world.serverIDs
        var rateIndex = profile.serverCount
        var initial = Topology(version: 1, streams: [:])
        let root = StreamTopology(version: 1, members: world.rootMembers)
        initial.streams[World.rootStream] = root
        for host in world.servers where root.contains(host.id) {
            host.node.createStream(World.rootStream, topology: root)
        }
        for streamIndex in 0..<profile.streamCount {
            let uri = try! StreamURI("/sim/stream_\(streamIndex)")
            streams.append(uri)
            // Five-server clusters give each stream three members, so not every server holds it.
            let members = profile.serverCount == 3 ? servers : Array(random.shuffled(servers).prefix(3))
            let topology = StreamTopology(version: 1, members: members)
            initial.streams[uri] = topology
            for host in world.servers where topology.contains(host.id) {
                host.node.createStream(uri, topology: topology)
            }
            for _ in 0..<profile.writersPerStream {
                addWriter(uri, members: topology.members, rateIndex: rateIndex % profile.clockRates.count)
                rateIndex += 1
            }
        }
        for index in 0..<profile.readerCount {
            let id = NodeID.client(UInt64(1000 + index))
            world.readers.append(ReaderHost(world: world, id: id))
            world.register(id, .reader(index))
        }
        return initial
    }

    func makeManager(initial: Topology) -> TopologyManager {
        let id = NodeID.client(900)
        let configuration = WriterConfiguration(address: "manager", lease: .seconds(1))
        let client = WriterClient(
            id: id, uri: World.rootStream, servers: world.rootMembers, configuration: configuration)
        let clock = world.makeClock(id, rateIndex: 0)
        let host = WriterHost(
            id: id, uri: World.rootStream, clock: clock,
            node: SimWriterNode(client: client, clock: clock, network: world.network))
        world.register(id, .manager)
        return TopologyManager(
            world: world, host: host, random: SimRandom.fork(seed: world.seed, "manager"), initial: initial)
    }

    private func addWriter(_ uri: StreamURI, members: [NodeID], rateIndex: Int) {
        let index = world.writers.count
        let id = NodeID.client(UInt64(100 + index))
        let lease = Duration.milliseconds(
            random.int(in: world.profile.leaseMin.milliseconds...world.profile.leaseMax.milliseconds))
        var configuration = WriterConfiguration(address: "client-\(id.short.dropFirst())", lease: lease)
        configuration.putsInFlightMax = world.profile.load.putsInFlightMax
        configuration.putsPendingMax = max(configuration.putsPendingMax, world.profile.load.pendingMax)
        configuration.plantedBugs = world.options.plantedBugs
        let client = WriterClient(
            id: id, uri: uri, servers: members, configuration: configuration,
            firstServer: random.int(in: 0...members.count - 1))
        let clock = world.makeClock(id, rateIndex: rateIndex)
        world.writers.append(WriterHost(
            id: id, uri: uri, clock: clock, node: SimWriterNode(client: client, clock: clock, network: world.network)))
        world.register(id, .writer(index))
    }

    func start() {
        for index in world.writers.indices {
            let first = index % world.profile.writersPerStream == 0
            after(.milliseconds(first ? random.int(in: 1...200) : random.int(in: 200...5000)), .claim(writer: index))
        }
        for index in world.readers.indices {
            after(.milliseconds(random.int(in: 100...500)), .read(reader: index))
        }
        for host in world.servers + [] { scheduleRateChange(host.id) }
        for host in world.writers { scheduleRateChange(host.id) }
    }

    private func scheduleRateChange(_ node: NodeID) {
        guard random.chance(world.profile.rateChangeProbability * 5) else { return }
        after(.milliseconds(random.int(in: 500...20_000)), .clockRate(node))
    }

    func after(_ delay: Duration, _ action: WorkloadAction) {
        world.schedule(at: world.trueNow + delay.nanoseconds, .workload(action))
    }

    func perform(_ action: WorkloadAction) {
        switch action {
        case .claim(let index):
            let host = world.writers[index]
            guard !host.paused else { return }
            // After the heal clients are polite (as WaitAndClaim would be): no claim while
            // another writer of the stream is claiming or active.
            if isHealed && world.writers.contains(where: {
                $0 !== host && $0.uri == host.uri && $0.node.client.phase != .idle && !$0.node.client.phase.isClosed
            }) {
                after(.milliseconds(random.int(in: 200...1000)), .claim(writer: index))
                return
            }
            switch host.node.client.phase {
            case .idle, .closed:
                world.trace.line(world.trueNow, "\(host.id.short) claims \(host.uri)")
                writerEvents(host, host.node.claim())
            default:
                return
            }
        case .burst(let index, let generation):
            burst(world.writers[index], generation: generation)
        case .pause(let index):
            pause(world.writers[index])
        case .resume(let index):
            resume(world.writers[index])
        case .read(let index):
            world.readers[index].issueRead(random: &random, streams: streams)
            after(.milliseconds(random.int(in: 10...300)), .read(reader: index))
        case .managerClaim:
            world.manager.claim()
        case .route(let index, let members, let version):
            let host = world.writers[index]
            // Routing updates may arrive out of order; only a newer topology replaces one.
            guard version > host.routingVersion else { return }
            host.routingVersion = version
            host.node.updateServers(members)
        case .managerRetry:
            world.manager.retry()
        case .managerStatusTimeout(let requestID):
            world.manager.statusTimedOut(requestID)
        case .clockRate(let node):
            let rate = random.double(in: world.profile.clockRateRange)
            world.count(.clockRateChange)
            world.trace.line(world.trueNow, "\(node.short) clock rate -> \(Int(rate * 100))%")
            world.setClockRate(node, rate)
            scheduleRateChange(node)
        }
    }

    func writerEvents(_ host: WriterHost, _ events: [WriterEvent]) {
        let index = world.writers.firstIndex { $0 === host }!
        for event in events {
            world.trace.line(world.trueNow, "\(host.id.short) event: \(event.brief)")
            world.oracle.writerEvent(host, event)
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
        world.oracle.observeWriter(host)
    }

    private func burst(_ host: WriterHost, generation: UInt64) {
        guard !host.paused, !isQuiescent, generation == host.burstGeneration, host.node.client.phase == .active
        else { return }
        let load = world.profile.load
        let count = random.int(in: 1...load.burstMax)
        for _ in 0..<count where host.node.client.pendingCount < load.pendingMax {
            let size = random.int(in: 0...300)
            let fill = UInt8(truncatingIfNeeded: random.next())
            let data = [UInt8](repeating: fill, count: size)
            do {
                let (entry, events) = try host.node.put(data)
                world.oracle.entryWritten(host.uri, entry)
                putsIssued += 1
                writerEvents(host, events)
            } catch {
                break
            }
        }
        let index = world.writers.firstIndex { $0 === host }!
        after(
            .milliseconds(random.int(in: 2...max(2, load.burstGapMax.milliseconds))),
            .burst(writer: index, generation: generation))
    }

    private func pause(_ host: WriterHost) {
        guard !host.paused, host.node.client.phase == .active, pausesAllowed else { return }
        host.paused = true
        world.count(.writerPause)
        world.trace.line(world.trueNow, "\(host.id.short) pauses")
        let index = world.writers.firstIndex { $0 === host }!
        let lease = host.node.client.configuration.lease
        after(.nanoseconds(random.int(in: 0...lease.nanoseconds * 4)), .resume(writer: index))
        // Someone else should notice and take over soon.
        let peers = world.writers.indices.filter { world.writers[$0].uri == host.uri && $0 != index }
        if let peer = peers.isEmpty ? nil : random.pick(peers) {
            after(.milliseconds(random.int(in: 0...200)), .claim(writer: peer))
        }
    }

    private func resume(_ host: WriterHost) {
        guard host.paused else { return }
        host.paused = false
        world.trace.line(world.trueNow, "\(host.id.short) resumes")
        writerEvents(host, host.node.wake())
        let index = world.writers.firstIndex { $0 === host }!
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

/// A reader client: PollStream and StreamEntries at random servers; the oracle checks every
/// answer against the committed log.
final class ReaderHost {
    unowned let world: World
    let id: NodeID
    private var nextRequestID: RequestID = 0
    private var pending: [RequestID: ReadRequest] = [:]
    private var knownCommitted: [StreamURI: EntryID] = [:]

    struct ReadRequest {
        var uri: StreamURI
        var server: NodeID
        var kind: Kind

        enum Kind {
            case poll(EntryID)
            case entries(start: EntryID, end: EntryID)
        }
    }

    init(world: World, id: NodeID) {
        self.world = world
        self.id = id
    }

    func issueRead(random: inout SimRandom, streams: [StreamURI]) {
        guard pending.count < 64 else { return }
        let uri = random.pick(streams)
        let members = world.servers.filter { $0.isUp && $0.node.metadata(of: uri) != nil }.map(\.id)
        guard !members.isEmpty else { return }
        let server = random.pick(members)
        let known = knownCommitted[uri] ?? 0
        nextRequestID += 1
        if random.chance(0.5) {
            let from = known + EntryID(random.int(in: 0...3))
            pending[nextRequestID] = ReadRequest(uri: uri, server: server, kind: .poll(from))
            world.network.send(.pollStream(nextRequestID, uri, pollEntryID: from), from: id, to: server)
        } else {
            let start = EntryID(random.int(in: max(0, Int64(known) - 50)...Int64(known) + 2))
            let end = start + EntryID(random.int(in: 1...64))
            pending[nextRequestID] = ReadRequest(uri: uri, server: server, kind: .entries(start: start, end: end))
            world.network.send(.streamEntries(nextRequestID, uri, start: start, end: end), from: id, to: server)
        }
    }

    func receive(_ message: Message, from source: NodeID) {
        guard case .response(let requestID, let reply) = message,
            let request = pending.removeValue(forKey: requestID)
        else { return }
        world.oracle.readAnswered(request, reply, reader: id)
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
}
