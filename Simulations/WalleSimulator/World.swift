import WalleCore
import WalleEnvironment
import WalleNode

/// Everything that can happen in a run, in true (simulator) time.
enum SimEvent {
    case deliver(from: NodeID, to: NodeID, Message)
    case diskSynced(NodeID, token: UInt64, upTo: UInt64, incarnation: UInt64)
    case diskRead(NodeID, token: UInt64, [Entry], incarnation: UInt64)
    case wakeup(NodeID, generation: UInt64)
    case workload(WorkloadAction)
    case fault(FaultAction)
    /// A hostile client's next request.
    case hostile(NodeID)
}

typealias SimServerNode = ServerNode<SimClock, SimNetwork, SimDisk>
typealias SimWriterNode = WriterNode<SimClock, SimNetwork>

final class ServerHost {
    let id: NodeID
    let clock: SimClock
    let disk: SimDisk
    var node: SimServerNode!
    var isUp = true
    /// Replaced: its disk is wiped and it never comes back.
    var isRetired = false
    /// Paused (SIGSTOP) until this true time: its events wait until then (0: never paused).
    var pausedUntil: Int64 = 0

    init(id: NodeID, clock: SimClock, disk: SimDisk) {
        self.id = id
        self.clock = clock
        self.disk = disk
    }
}

final class WriterHost {
    let id: NodeID
    let uri: StreamURI
    let clock: SimClock
    let node: SimWriterNode
    /// A paused writer receives nothing and does nothing, like a frozen process.
    var paused = false
    var burstGeneration: UInt64 = 0
    /// The topology version the client routes by.

    init(id: NodeID, uri: StreamURI, clock: SimClock, node: SimWriterNode) {
        self.id = id
        self.uri = uri
        self.clock = clock
        self.node = node
    }
}

/// One simulated cluster: servers, writer and reader clients, the scheduler that orders all
/// their events by (true time, insertion), and the oracle that watches them.
public final class World: SendObserver, ClockControl, TopologyListener, ServerControl, FaultPhase {
    static let epochNanoseconds: Int64 = 1_767_225_600_000_000_000
    public let seed: UInt64
    public let profile: Profile
    let options: RunOptions
    /// True time and the events to come.
    let agenda = Agenda()
    var trueNow: Int64 { agenda.trueNow }
    let trace = Trace()
    let counters = SimCounters()
    private(set) var oracle: Oracle!
    /// The oracle's and the client-history checker's view of client events (`ClientEvents`).
    private(set) var clientEvents: ClientEvents!
    private(set) var network: SimNetwork!
    private(set) var workload: Workload!
    private var trimmer: Trimmer!
    private(set) var nemesis: Nemesis!
    private(set) var targeted: TargetedFaults!
    /// The latest end of a server pause: before it, events for servers are checked for pauses.
    private var pausesEndBy: Int64 = 0
    private(set) var liveness: Liveness!
    private(set) var manager: ManagerHost!
    static let rootStream = try! StreamURI("/cluster/root")
    /// The servers a starting server asks for the topology (its copy of root.pb).
    private(set) var rootMembers: [NodeID] = []
    /// How often each fault kind ran in this seed.
    var faultCounts: [FaultKind: Int] { counters.faults }
    let cluster = Cluster()
    var servers: [ServerHost] { cluster.servers }
    var writers: [WriterHost] { cluster.writers }
    var readers: [ReaderHost] { cluster.readers }
    var hostiles: [HostileClient] { cluster.hostiles }
    /// The last public requests honest clients sent, for hostile clients to replay (kept only
    /// when the seed has hostile clients).
    let overheard = OverheardRequests()
    private let clocks: ClockFactory
    /// The probes of server incarnations that crashed: their cores are gone by the end.
    private var crashedProbes = ProbeSet()

    /// Every coverage probe a node of this run reached (`Probe`): the live cores' and the
    /// crashed ones'. Read once, at the end; the trace does not see it.
    var probesReached: ProbeSet {
        var reached = crashedProbes
        for host in servers where host.isUp { reached.formUnion(host.node.core.probes) }
        for host in writers { reached.formUnion(host.node.client.probes) }
        reached.formUnion(manager.host.node.client.probes)
        return reached
    }

    public init(seed: UInt64, options: RunOptions) {
        self.seed = seed
        self.options = options
        self.profile = Profile.draw(seed: seed, options: options)
        self.clocks = ClockFactory(
            agenda: agenda, random: SimRandom.fork(seed: seed, "clock"), rates: profile.clockRates)
        self.oracle = Oracle(
            agenda: agenda, trace: trace, counters: counters, cluster: cluster, beyondModel: profile.beyondModel,
            clockRateMin: profile.clockRateRange.lowerBound)
        oracle.verdict.serverOraclesOff = !options.serverOracles
        let history = HistoryChecker(verdict: oracle.verdict, now: { [unowned agenda] in agenda.trueNow })
        self.clientEvents = ClientEvents(oracle: oracle, history: history)
        self.network = SimNetwork(
            agenda: agenda, trace: trace, counters: counters, observer: self,
            random: SimRandom.fork(seed: seed, "network"), profile: profile.network, faults: profile.faults)
        self.workload = Workload(
            agenda: agenda, trace: trace, counters: counters, random: SimRandom.fork(seed: seed, "workload"),
            profile: profile, plantedBugs: options.plantedBugs, cluster: cluster, clocks: clocks, network: network,
            observer: clientEvents, clockControl: self)
        buildServers()
        let initial = workload.buildClients(rootMembers: rootMembers)
        oracle.checkedStreams = checkedStreams
        manager = makeManager(initial: initial)
        self.liveness = Liveness(
            agenda: agenda, trace: trace, livenessTimeout: options.livenessTimeout, cluster: cluster,
            topology: manager, acknowledgements: oracle, workload: workload)
        self.targeted = TargetedFaults(
            profile: profile.targeted, random: SimRandom.fork(seed: seed, "targeted"), agenda: agenda, trace: trace,
            counters: counters, cluster: cluster, network: network)
        if !profile.targeted.isOff { network.targeted = targeted }
        self.nemesis = Nemesis(
            random: SimRandom.fork(seed: seed, "nemesis"), profile: profile.faults, duration: profile.duration,
            replaceServerAt: options.replaceServerAt, agenda: agenda, trace: trace, counters: counters,
            cluster: cluster, network: network, targeted: targeted, streams: workload.streams, servers: self,
            manager: manager, phase: self)
        self.trimmer = Trimmer(
            random: SimRandom.fork(seed: seed, "trims"), agenda: agenda, trace: trace, counters: counters,
            streams: workload.streams, manager: manager, acknowledgements: oracle, perMinute: profile.trimsPerMinute)
        buildHostiles()
        workload.start()
        trimmer.start()
        nemesis.start()
        manager.start()
    }

    private func buildHostiles() {
        for index in 0..<profile.hostile.clients {
            let id = NodeID.client(UInt64(2000 + index))
            let random = SimRandom.fork(seed: seed, "hostile-\(index)")
            cluster.hostiles.append(HostileClient(
                id: id, random: random, agenda: agenda, trace: trace, counters: counters,
                actionGapMax: profile.hostile.actionGapMax, streams: workload.streams, cluster: cluster,
                network: network, overheard: overheard, observer: oracle))
            register(id, .hostile(index))
            schedule(at: 1_000_000 * Int64(100 + index), .hostile(id))
        }
    }

    /// The client-history checker's final read (H4): each workload stream's committed entries
    /// as its most advanced live member serves them.
    func finishHistory() {
        for uri in workload.streams {
            let members = servers.filter { $0.isUp && !$0.isRetired && $0.node.metadata(of: uri) != nil }
            guard let best = members.max(by: {
                ($0.node.metadata(of: uri)?.committedID ?? 0) < ($1.node.metadata(of: uri)?.committedID ?? 0)
            }), let metadata = best.node.metadata(of: uri), let image = best.disk.current.streams[uri]
            else { continue }
            let first = metadata.firstEntryID
            let entries = stride(from: first, through: metadata.committedID, by: 1).compactMap { image.servedEntry($0) }
            clientEvents.history.finalRead(uri, first: first, entries)
        }
    }

    /// A message as it is sent: the oracle sees it first, then what hostile clients overhear.
    func sent(_ message: Message, from source: NodeID, to target: NodeID) {
        oracle.messageSent(message, from: source, to: target)
        overhear(message, from: source)
    }

    /// An honest client's public request, kept for replays (only when someone may replay it).
    private func overhear(_ message: Message, from source: NodeID) {
        guard !hostiles.isEmpty, message.isPublicRequest, case .writer? = cluster.ref(source) else { return }
        overheard.record(message)
    }

    /// The nemesis healed the network and the servers: paused writers resume, hostile
    /// clients stop with the other faults, and the liveness phase begins.
    func faultPhaseEnded() {
        workload.healed()
        trimmer.stop()
        for hostile in hostiles { hostile.stop() }
        liveness.begin()
    }

    var clientIDs: [NodeID] { cluster.clientIDs }

    /// Every stream the oracles watch: the workload's and the root (topology) stream.
    var checkedStreams: [StreamURI] { workload.streams + [World.rootStream] }

    func count(_ kind: FaultKind) { counters.count(kind) }

    /// Refusals for load or time by the bound that refused (the servers' `Effect.refused`).
    var refusalCounts: [Refusal: Int] { counters.refusals }

    private var serverConfiguration: ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.topologySource = TopologySource(rootStream: World.rootStream, rootMembers: rootMembers)
        configuration.notesEnabled = options.printTrace
        configuration.quorumRecordsEnabled = true
        configuration.deepChecksEnabled = true
        configuration.plantedBugs = options.plantedBugs
        // Simulated writers ask for leases of at most 2 s; a tighter bound keeps the wait after
        // a restart (StreamReplica.restarted) short.
        configuration.leaseMax = .seconds(5)
        // Short long-polls: a server whose topology source died finds another within 2 s.
        configuration.pollTimeout = .seconds(1)
        configuration.statusCallTimeout = .milliseconds(250)
        configuration.fastForwardDelay = .milliseconds(50)
        // Small delete steps, so a trim's deletion lasts a while and reads meet entries below
        // the first entry that are still on disk (the read check must hold them back).
        configuration.trimStepEntriesMax = profile.trimStepEntriesMax
        configuration.trimStepDelay = .milliseconds(50)
        profile.limits.apply(to: &configuration)
        return configuration
    }

    private func startServer(_ host: ServerHost) {
        let random = SimRandom.fork(seed: seed, "server-\(host.id.rawValue)-\(host.disk.incarnation)")
        do {
            host.node = try SimServerNode(
                id: host.id, configuration: serverConfiguration, clock: host.clock, network: network,
                disk: host.disk, random: random)
        } catch {
            preconditionFailure("a simulated disk always recovers: \(error)")
        }
        // The sinks capture the id, not the host: the host owns the node, which owns these
        // closures, and a strong host reference made a cycle that kept every server (its disk
        // images with every entry) alive after its seed, 5.7 MB per seed in a sweep.
        let id = host.id
        host.node.noteSink = { [unowned self] text in trace.line(trueNow, "\(id.short) note: \(text)") }
        host.node.quorumSink = { [unowned self] record in oracle.quorumReached(record, at: id) }
        host.node.refusalSink = { [unowned self] limit in counters.refused(limit) }
        host.isUp = true
    }

    private func makeServerHost(_ index: Int) -> ServerHost {
        let id = NodeID(UInt64(index + 1))
        let clock = makeClock(id, rateIndex: index % profile.clockRates.count)
        let disk = SimDisk(
            scheduler: agenda, node: id, random: SimRandom.fork(seed: seed, "disk-\(index)"), profile: profile.disk)
        if profile.targeted.groupCommitStalls { disk.syncStall = { [unowned self] in targeted.syncSubmitted($0) } }
        cluster.register(id, .server(index))
        return ServerHost(id: id, clock: clock, disk: disk)
    }

    /// Node replacement: the server's disk is wiped and it never returns; a new server with a
    /// new id and an empty disk starts and learns the topology from the root stream. Returns
    /// the new server's id.
    func replaceServer(_ index: Int) -> NodeID {
        let old = servers[index]
        if old.isUp { crashServer(index, keep: 0) }
        old.isRetired = true
        let host = makeServerHost(servers.count)
        cluster.servers.append(host)
        rootMembers = manager.topology.streams[World.rootStream]?.members ?? rootMembers
        startServer(host)
        oracle.replaced(host.id)
        count(.nodeReplacement)
        trace.line(trueNow, "\(old.id.short) is wiped for good; \(host.id.short) replaces it")
        return host.id
    }

    /// A committed topology: where the world's own bookkeeping (which servers are root
    /// members) follows it.
    func topologyChanged(_ topology: Topology) {
        // Writers follow the topology themselves (`WriterClient+Topology.swift`); the
        // manager's own writer follows the root members through its node (ManagerNode).
        if let root = topology.streams[World.rootStream]?.members { rootMembers = root }
    }

    /// The process dies: volatile state is gone; the disk keeps what was synced (and maybe a
    /// prefix of the rest).
    func crashServer(_ index: Int, keep: Int) {
        let host = servers[index]
        guard host.isUp else { return }
        let pending = host.disk.unsyncedCount
        crashedProbes.formUnion(host.node.core.probes)
        let kept = host.disk.crash(keep: keep)
        host.isUp = false
        host.pausedUntil = 0
        host.clock.cancelWakeup()
        count(kept > 0 ? .crashPrefixKept : .crashAllPendingLost)
        trace.line(trueNow, "\(host.id.short) CRASH: kept \(kept) of \(pending) unsynced transactions")
    }

    /// A new process on the same disk: everything is rebuilt from the durable state.
    func restartServer(_ index: Int) {
        let host = servers[index]
        guard !host.isUp, !host.isRetired else { return }
        startServer(host)
        oracle.serverRestarted(host)
        count(.restart)
        trace.line(trueNow, "\(host.id.short) restarts from its durable state")
    }

    var serverIDs: [NodeID] { cluster.serverIDs }

    func makeClock(_ node: NodeID, rateIndex: Int) -> SimClock { clocks.makeClock(node, rateIndex: rateIndex) }

    /// The topology manager: a writer of the root stream on the first root members.
    private func makeManager(initial: Topology) -> ManagerHost {
        let id = NodeID.client(900)
        let configuration = WriterConfiguration(address: "manager", lease: .seconds(1))
        let client = WriterClient(id: id, uri: World.rootStream, servers: rootMembers, configuration: configuration)
        let clock = makeClock(id, rateIndex: 0)
        let host = WriterHost(
            id: id, uri: World.rootStream, clock: clock,
            node: SimWriterNode(client: client, clock: clock, network: network))
        register(id, .manager)
        let core = TopologyManager(
            configuration: ManagerConfiguration(initial: initial), random: SimRandom.fork(seed: seed, "manager"))
        return ManagerHost(
            host: host, manager: core, agenda: agenda, trace: trace, counters: counters, observer: oracle,
            listener: self)
    }

    private func buildServers() {
        for index in 0..<profile.serverCount { cluster.servers.append(makeServerHost(index)) }
        rootMembers = Array(servers.prefix(3).map(\.id))
        for host in servers { startServer(host) }
    }

    func register(_ id: NodeID, _ ref: Cluster.HostRef) { cluster.register(id, ref) }

    func serverHost(_ id: NodeID) -> ServerHost? { cluster.serverHost(id) }

    // MARK: Scheduling

    func schedule(at time: Int64, _ event: SimEvent) {
        agenda.schedule(at: time, event)
    }

    /// Runs the fault phase, then the liveness phase, until convergence, a violation, or the
    /// liveness deadline.
    func runEvents() {
        let end = profile.duration.nanoseconds + options.livenessTimeout.nanoseconds + 1
        while oracle.violation == nil, liveness.convergedAt == nil, liveness.stuck == nil,
            let event = agenda.next(until: end)
        {
            handle(event)
        }
    }

    private func handle(_ event: SimEvent) {
        if trueNow < pausesEndBy, let until = pausedUntil(event) {
            agenda.schedule(at: until, event)
            return
        }
        switch event {
        case .deliver(let source, let target, let message):
            trace.event(at: trueNow, node: target, kind: 1)
            trace.mix(source.rawValue)
            trace.mix(message)
            trace.line(trueNow, "\(target.short) <- \(source.short) \(message)")
            deliver(message, from: source, to: target)
        case .diskSynced(let node, let token, let upTo, let incarnation):
            guard case .server(let index)? = cluster.ref(node), servers[index].isUp,
                servers[index].disk.incarnation == incarnation
            else { return }
            trace.event(at: trueNow, node: node, kind: 2)
            trace.mix(upTo)
            trace.line(trueNow, "\(node.short) disk synced writes up to #\(upTo)")
            servers[index].disk.syncCompleted(upTo: upTo)
            servers[index].node.diskCompleted(.synced(token: token))
            oracle.observeServer(servers[index])
        case .diskRead(let node, let token, let entries, let incarnation):
            guard case .server(let index)? = cluster.ref(node), servers[index].isUp,
                servers[index].disk.incarnation == incarnation
            else { return }
            trace.event(at: trueNow, node: node, kind: 3)
            trace.mix(UInt64(entries.count))
            trace.line(trueNow, "\(node.short) disk read \(entries.count) entries")
            servers[index].node.diskCompleted(.read(token: token, entries))
            oracle.observeServer(servers[index])
        case .wakeup(let node, let generation):
            wakeup(node, generation: generation)
        case .workload(let action):
            trace.event(at: trueNow, node: NodeID(0), kind: 5)
            switch action {
            case .manager(let timer): manager.timerFired(timer)
            case .trim: trimmer.perform()
            default: workload.perform(action)
            }
        case .fault(let action):
            trace.event(at: trueNow, node: NodeID(0), kind: 6)
            if case .checkLiveness = action {
                liveness.check()
            } else {
                nemesis.perform(action)
            }
        case .hostile(let node):
            guard case .hostile(let index)? = cluster.ref(node) else { return }
            trace.event(at: trueNow, node: node, kind: 7)
            hostiles[index].act()
        }
    }

    /// When the event is for a paused server: the end of its pause, where the event waits
    /// (in order: the agenda keeps insertion order among events of one instant).
    private func pausedUntil(_ event: SimEvent) -> Int64? {
        let node: NodeID
        switch event {
        case .deliver(_, let target, _): node = target
        case .diskSynced(let server, _, _, _), .diskRead(let server, _, _, _), .wakeup(let server, _): node = server
        case .workload, .fault, .hostile: return nil
        }
        guard let host = cluster.serverHost(node), host.isUp, trueNow < host.pausedUntil else { return nil }
        return host.pausedUntil
    }

    /// A server was paused until `until`: events for servers are checked until then.
    func serverPaused(until: Int64) { pausesEndBy = max(pausesEndBy, until) }

    private func deliver(_ message: Message, from source: NodeID, to target: NodeID) {
        switch cluster.ref(target) {
        case .server(let index)?:
            guard servers[index].isUp else {
                trace.line(trueNow, "\(target.short) is down: message dropped")
                return
            }
            oracle.heartbeatArriving(message, from: source, at: servers[index])
            servers[index].node.receive(message, from: source)
            oracle.heartbeatHandled()
            oracle.observeServer(servers[index])
        case .hostile(let index)?:
            hostiles[index].receive(message, from: source)
        case .writer(let index)?:
            let host = writers[index]
            guard !host.paused else {
                trace.line(trueNow, "\(target.short) is paused: message dropped")
                return
            }
            workload.writerEvents(host, host.node.receive(message, from: source))
        case .reader(let index)?:
            readers[index].receive(message, from: source, now: Instant(nanoseconds: trueNow))
        case .manager?:
            manager.receive(message, from: source)
        case nil:
            preconditionFailure("message to unknown node \(target)")
        }
    }

    private func wakeup(_ node: NodeID, generation: UInt64) {
        switch cluster.ref(node) {
        case .server(let index)?:
            guard servers[index].isUp, servers[index].clock.wakeupFired(generation: generation) else { return }
            trace.event(at: trueNow, node: node, kind: 4)
            servers[index].node.wake()
            oracle.observeServer(servers[index])
        case .writer(let index)?:
            let host = writers[index]
            guard host.clock.wakeupFired(generation: generation), !host.paused else { return }
            trace.event(at: trueNow, node: node, kind: 4)
            workload.writerEvents(host, host.node.wake())
        case .manager?:
            guard manager.host.clock.wakeupFired(generation: generation) else { return }
            trace.event(at: trueNow, node: node, kind: 4)
            manager.wake()
        case .reader, .hostile, nil:
            return
        }
    }

    func setClockRate(_ node: NodeID, _ rate: Double) {
        switch cluster.ref(node) {
        case .server(let index)?: servers[index].clock.setRate(rate, reschedule: servers[index].isUp)
        case .writer(let index)?: writers[index].clock.setRate(rate, reschedule: true)
        default: break
        }
    }
}
