import WalleCore
import WalleEnvironment

/// The fault mix of one seed (swarm testing): every probability or rate is drawn from a
/// range that includes zero, so some seeds are quiet and some are stormy.
public struct FaultProfile: Sendable, CustomStringConvertible {
    public var lossProbability: Double
    public var duplicateProbability: Double
    public var spikeProbability: Double
    public var spikeMax: Duration
    public var partitionsPerMinute: Double
    public var partitionDurationMax: Duration
    public var crashesPerMinute: Double
    public var downtimeMax: Duration
    /// When a crashed disk keeps a random prefix of its unsynced writes (else it loses all).
    public var crashKeepsPrefix: Bool
    public var stallsPerMinute: Double
    public var stallMax: Duration
    public var wallStepsPerMinute: Double
    public var pausesEnabled: Bool
    public var replacementsPerMinute: Double
    public var movesPerMinute: Double
    /// Servers that stop learning new topology versions for a while (a stuck watcher), so
    /// old member lists stay in use (the setting of WS-2).
    public var topologyLagsPerMinute: Double
    public var topologyLagMax: Duration

    static let none = FaultProfile(
        lossProbability: 0, duplicateProbability: 0, spikeProbability: 0, spikeMax: .zero,
        partitionsPerMinute: 0, partitionDurationMax: .zero, crashesPerMinute: 0, downtimeMax: .zero,
        crashKeepsPrefix: false, stallsPerMinute: 0, stallMax: .zero, wallStepsPerMinute: 0,
        pausesEnabled: false, replacementsPerMinute: 0, movesPerMinute: 0,
        topologyLagsPerMinute: 0, topologyLagMax: .zero)

    static func draw(_ random: inout SimRandom, replicaMoves: Bool) -> FaultProfile {
        func maybe(_ zeroChance: Double, _ range: ClosedRange<Double>) -> Double {
            random.chance(zeroChance) ? 0 : random.double(in: range)
        }
        return FaultProfile(
            lossProbability: maybe(0.3, 0.001...0.05),
            duplicateProbability: maybe(0.4, 0.001...0.05),
            spikeProbability: maybe(0.4, 0.001...0.01),
            spikeMax: .milliseconds(random.int(in: 20...1000)),
            partitionsPerMinute: maybe(0.25, 1...8),
            partitionDurationMax: .milliseconds(random.int(in: 200...8000)),
            crashesPerMinute: maybe(0.3, 0.5...4),
            downtimeMax: .milliseconds(random.int(in: 10...5000)),
            crashKeepsPrefix: random.chance(0.5),
            stallsPerMinute: maybe(0.3, 1...10),
            stallMax: .milliseconds(random.int(in: 1...5000)),
            wallStepsPerMinute: maybe(0.5, 0.5...3),
            pausesEnabled: !random.chance(0.2),
            replacementsPerMinute: maybe(0.4, 1...4),
            // On unless --no-replica-moves (RunOptions.replicaMoves).
            movesPerMinute: replicaMoves ? maybe(0.2, 2...8) : 0,
            topologyLagsPerMinute: maybe(0.3, 1...6),
            topologyLagMax: .milliseconds(random.int(in: 1000...20000)))
    }

    public var description: String {
        func pct(_ p: Double) -> String { String(Int((p * 1000).rounded())) + "‰" }
        func rate(_ r: Double) -> String { String(Int((r * 10).rounded())) + "/10min" }
        return "loss=\(pct(lossProbability)) dup=\(pct(duplicateProbability)) "
            + "spikes=\(pct(spikeProbability))<=\(spikeMax.milliseconds)ms "
            + "partitions=\(rate(partitionsPerMinute))<=\(partitionDurationMax.milliseconds)ms "
            + "crashes=\(rate(crashesPerMinute))<=\(downtimeMax.milliseconds)ms keep-prefix=\(crashKeepsPrefix) "
            + "stalls=\(rate(stallsPerMinute))<=\(stallMax.milliseconds)ms wall-steps=\(rate(wallStepsPerMinute)) "
            + "pauses=\(pausesEnabled) replacements=\(rate(replacementsPerMinute)) moves=\(rate(movesPerMinute)) "
            + "topology-lags=\(rate(topologyLagsPerMinute))<=\(topologyLagMax.milliseconds)ms"
    }
}

/// Every kind of fault the nemesis injects; the sweep reports how often each ran.
public enum FaultKind: String, CaseIterable, Sendable {
    case messageLost = "message lost"
    case messageDuplicated = "message duplicated"
    case latencySpike = "latency spike"
    case partitionIsolate = "partition: isolate one node"
    case partitionSplit = "partition: majority/minority"
    case partitionAsymmetric = "partition: asymmetric (inbound cut)"
    case partitionOneWay = "partition: one-way link"
    case partitionClient = "partition: client cut off"
    case messageBlocked = "message blocked by partition"
    case crashAllPendingLost = "crash: pending writes lost"
    case crashPrefixKept = "crash: prefix of pending kept"
    case restart = "restart from durable state"
    case fsyncStall = "fsync stall"
    case wallClockStep = "wall clock step"
    case clockRateChange = "clock rate change"
    case writerPause = "writer pause"
    case leaseViolationBeyondModel = "lease overlap beyond the time model (expected)"
    case nodeReplacement = "node replacement (wiped, new id)"
    case membershipChange = "membership change (one member)"
    case replicaMove = "replica moved (live member)"
    case topologyLag = "topology watch stalled"
    case hostileRequest = "hostile request (refused or harmless)"
    case trim = "trim (a stream's first entry moves up)"
    case targetedCrashAfterReply = "targeted: crash after a reply, writes unsynced"
    case targetedClaimPhase = "targeted: claim coordinator crashed or cut off"
    case targetedCompletionLoss = "targeted: claim/put completion lost or held"
    case targetedGroupCommitStall = "targeted: group commit's sync stalled"
    case serverPause = "server process paused (SIGSTOP)"
}

enum FaultAction {
    case partition
    case healPartition(generation: UInt64)
    case crash
    case restart(server: Int)
    case stall
    case wallStep
    case replace
    case replaceNow
    case move
    case topologyLag
    case pauseServer
    /// A targeted point's crash, at the end of the event that struck.
    case targetedCrash(NodeID)
    /// End of the fault phase: everything heals and the liveness phase begins.
    case healAll
    case checkLiveness
}

/// Schedules the faults of the fault phase and heals them all at its end.
final class Nemesis {
    private var random: SimRandom
    let profile: FaultProfile
    private let duration: Duration
    private let replaceServerAt: Duration?
    private let agenda: Agenda
    private let trace: Trace
    private let counters: SimCounters
    private let cluster: Cluster
    private let network: SimNetwork
    private let targeted: TargetedFaults
    /// The workload's streams, which replica moves pick from.
    private let streams: [StreamURI]
    private unowned let serverControl: any ServerControl
    private unowned let manager: any TopologyControl
    private unowned let phase: any FaultPhase
    private(set) var healed = false
    private var partitionGeneration: UInt64 = 0

    init(
        random: SimRandom, profile: FaultProfile, duration: Duration, replaceServerAt: Duration?, agenda: Agenda,
        trace: Trace, counters: SimCounters, cluster: Cluster, network: SimNetwork, targeted: TargetedFaults,
        streams: [StreamURI], servers: any ServerControl, manager: any TopologyControl, phase: any FaultPhase
    ) {
        self.random = random
        self.profile = profile
        self.duration = duration
        self.replaceServerAt = replaceServerAt
        self.agenda = agenda
        self.trace = trace
        self.counters = counters
        self.cluster = cluster
        self.network = network
        self.targeted = targeted
        self.streams = streams
        self.serverControl = servers
        self.manager = manager
        self.phase = phase
    }

    /// The faults that recur as Poisson processes, in the order their first gaps are drawn.
    private static let recurring: [FaultAction] = [
        .partition, .crash, .stall, .wallStep, .replace, .move, .topologyLag, .pauseServer,
    ]

    func start() {
        for action in Self.recurring { scheduleNext(action, perMinute: rate(of: action)) }
        if let at = replaceServerAt { agenda.schedule(at: at.nanoseconds, .fault(.replaceNow)) }
        agenda.schedule(at: duration.nanoseconds, .fault(.healAll))
    }

    private func rate(of action: FaultAction) -> Double {
        switch action {
        case .partition: return profile.partitionsPerMinute
        case .crash: return profile.crashesPerMinute
        case .stall: return profile.stallsPerMinute
        case .wallStep: return profile.wallStepsPerMinute
        case .replace: return profile.replacementsPerMinute
        case .move: return profile.movesPerMinute
        case .topologyLag: return profile.topologyLagsPerMinute
        case .pauseServer: return targeted.profile.serverPausesPerMinute
        default: preconditionFailure("\(action) does not recur")
        }
    }

    /// Exponential gaps: a Poisson process at the given rate.
    private func scheduleNext(_ action: FaultAction, perMinute: Double) {
        guard perMinute > 0, !healed else { return }
        let meanNanoseconds = 60e9 / perMinute
        let gap = Int64(-meanNanoseconds * log1pNegative(random.unit()))
        agenda.schedule(at: agenda.trueNow + max(1, gap), .fault(action))
    }

    func perform(_ action: FaultAction) {
        switch action {
        case .partition, .crash, .stall, .wallStep, .replace, .move, .topologyLag, .pauseServer:
            guard !healed else { return }
            performRecurring(action)
            scheduleNext(action, perMinute: rate(of: action))
        case .healPartition(let generation):
            if generation == partitionGeneration { network.heal() }
        case .restart(let index):
            serverControl.restartServer(index)
        case .targetedCrash(let server):
            targetedCrash(server)
        case .replaceNow:
            if manager.isIdle && manager.topology.version >= 1 {
                replaceSomeServer()
            } else {
                agenda.schedule(at: agenda.trueNow + 100_000_000, .fault(.replaceNow))
            }
        case .healAll:
            healAll()
        case .checkLiveness:
            preconditionFailure("the world hands liveness checks to the liveness phase")
        }
    }

    private func performRecurring(_ action: FaultAction) {
        switch action {
        case .partition: startPartition()
        case .crash: crashSomeServer()
        case .stall: stallSomeDisk()
        case .wallStep: wallStep()
        case .replace: replaceSomeServer()
        case .move: moveSomeReplica()
        case .topologyLag: stallTopologyWatch()
        case .pauseServer: pauseSomeServer()
        default: preconditionFailure("\(action) does not recur")
        }
    }

    private func stallSomeDisk() {
        let host = random.pick(cluster.servers)
        let length = random.int(in: Int64(1_000_000)...max(1_000_000, profile.stallMax.nanoseconds))
        host.disk.stall(until: agenda.trueNow + length)
        counters.count(.fsyncStall)
        trace.line(
            agenda.trueNow, "\(host.id.short) fsync stalls for \(Duration.nanoseconds(length).formattedMilliseconds)")
    }

    private func startPartition() {
        partitionGeneration += 1
        let servers = cluster.serverIDs
        let clients = cluster.clientIDs
        var blocked: [(NodeID, NodeID)] = []
        let everyone = servers + clients
        let kind = random.pick(
            [FaultKind.partitionIsolate, .partitionSplit, .partitionAsymmetric, .partitionOneWay, .partitionClient])
        switch kind {
        case .partitionIsolate:
            let victim = random.pick(servers)
            for other in everyone where other != victim { blocked += [(victim, other), (other, victim)] }
        case .partitionSplit:
            let shuffled = random.shuffled(servers)
            let minority = Set(shuffled.prefix((servers.count - 1) / 2))
            let clientSide = Dictionary(uniqueKeysWithValues: clients.map { ($0, random.chance(0.5)) })
            func inMinority(_ node: NodeID) -> Bool { minority.contains(node) || clientSide[node] == true }
            for a in everyone { for b in everyone where inMinority(a) != inMinority(b) { blocked.append((a, b)) } }
        case .partitionAsymmetric:
            let victim = random.pick(servers)
            for other in everyone where other != victim { blocked.append((other, victim)) }
        case .partitionOneWay:
            let source = random.pick(servers)
            let target = random.pick(servers.filter { $0 != source })
            blocked.append((source, target))
        default:
            let victim = random.pick(clients)
            for server in servers { blocked += [(victim, server), (server, victim)] }
        }
        network.partition(blocked)
        counters.count(kind)
        let length = random.int(in: Int64(50_000_000)...max(50_000_000, profile.partitionDurationMax.nanoseconds))
        trace.line(
            agenda.trueNow,
            "partition (\(kind.rawValue)): \(blocked.count) links cut for "
                + "\(Duration.nanoseconds(length).formattedMilliseconds)")
        agenda.schedule(at: agenda.trueNow + length, .fault(.healPartition(generation: partitionGeneration)))
    }

    private func crashSomeServer() {
        let up = cluster.servers.indices.filter { cluster.servers[$0].isUp }
        // Keep a majority up most of the time, but not always: a whole-cluster outage is a fault too.
        let alive = cluster.servers.filter { !$0.isRetired }.count
        guard up.count - 1 > alive / 2 || random.chance(0.1), !up.isEmpty else { return }
        // A profile that keeps a prefix strikes a server with unsynced writes when there is
        // one, and keeps at least one of them: writes are unsynced for a millisecond or so,
        // and a crash at a random moment found none to keep in whole sweeps ([CRASH-2]).
        let pendingUp = up.filter { cluster.servers[$0].disk.unsyncedCount > 0 }
        let index = random.pick(profile.crashKeepsPrefix && !pendingUp.isEmpty ? pendingUp : up)
        let pending = cluster.servers[index].disk.unsyncedCount
        let keep = profile.crashKeepsPrefix && pending > 0 ? Int(random.int(in: Int64(1)...Int64(pending))) : 0
        serverControl.crashServer(index, keep: keep)
        scheduleRestart(index)
    }

    /// A targeted point struck at this server during the event that just ended: it dies now,
    /// keeping a prefix of its unsynced writes but never all of them (the writes the reply
    /// may depend on are what the point aims at), and restarts after a downtime.
    private func targetedCrash(_ server: NodeID) {
        defer { targeted.crashed(server) }
        guard !healed, let index = cluster.servers.firstIndex(where: { $0.id == server }), cluster.servers[index].isUp
        else { return }
        let pending = cluster.servers[index].disk.unsyncedCount
        let keep = pending > 1 ? Int(random.int(in: Int64(0)...Int64(pending - 1))) : 0
        serverControl.crashServer(index, keep: keep)
        scheduleRestart(index)
    }

    private func scheduleRestart(_ index: Int) {
        let downtime = random.int(in: Int64(1_000_000)...max(1_000_000, profile.downtimeMax.nanoseconds))
        agenda.schedule(at: agenda.trueNow + downtime, .fault(.restart(server: index)))
    }

    /// One server process stops like SIGSTOP: its state stays, its clocks run on, and what
    /// reaches it (messages, disk completions, timers) waits until it resumes (the world
    /// holds its events back).
    private func pauseSomeServer() {
        let candidates = cluster.servers.filter { $0.isUp && !$0.isRetired && $0.pausedUntil <= agenda.trueNow }
        guard !candidates.isEmpty else { return }
        let host = random.pick(candidates)
        let length = random.int(in: Int64(1_000_000)...max(1_000_000, targeted.profile.serverPauseMax.nanoseconds))
        host.pausedUntil = agenda.trueNow + length
        serverControl.serverPaused(until: host.pausedUntil)
        counters.count(.serverPause)
        trace.line(agenda.trueNow, "\(host.id.short) PAUSED for \(Duration.nanoseconds(length).formattedMilliseconds)")
    }

    /// Wipes one server for good and has the manager move its streams to a new server: add the
    /// new one, then remove the old one once a majority of the remaining members are caught
    /// up and gap-free (WS-3), stream by stream.
    private func replaceSomeServer() {
        let retired = cluster.servers.filter(\.isRetired).count
        // One replacement at a time, and only once the manager holds the topology: wiping a
        // server nobody replaces is a permanent failure, not a replacement.
        guard manager.isIdle, manager.topology.version >= 1, retired < 2 else { return }
        let candidates = cluster.servers.indices.filter { !cluster.servers[$0].isRetired }
        let index = random.pick(candidates)
        let old = cluster.servers[index].id
        let new = serverControl.replaceServer(index)
        // Every add first, so the new server takes live writes on all its streams at once;
        // then the removals, each once a majority of the remaining members is caught up (WS-3).
        let streams = manager.topology.streams.keys.sorted()
            .filter { manager.topology.streams[$0]!.contains(old) }
        manager.enqueue(streams.map { .add($0, new) } + streams.map { .remove($0, old) })
    }

    /// Moves one replica of a workload stream to a live server that does not hold it: add the
    /// new member, then remove the old one, which may be alive and lagging (WS-2's setting).
    private func moveSomeReplica() {
        guard manager.isIdle, manager.topology.version >= 1 else { return }
        let topology = manager.topology
        let live = cluster.servers.filter { !$0.isRetired }.map(\.id)
        let movable = streams.filter { uri in
            live.contains { !(topology.streams[uri]?.contains($0) ?? true) }
        }
        guard !movable.isEmpty else { return }
        let uri = random.pick(movable)
        let stream = topology.streams[uri]!
        let target = random.pick(live.filter { !stream.contains($0) })
        let source = random.pick(stream.members)
        counters.count(.replicaMove)
        manager.enqueue([.add(uri, target), .remove(uri, source)])
    }

    /// One or two servers stop hearing about new topology versions (their root-stream polls
    /// go nowhere): they keep coordinating with the member lists they know.
    private func stallTopologyWatch() {
        let live = cluster.servers.filter { $0.isUp && !$0.isRetired }.map(\.id)
        guard !live.isEmpty else { return }
        let victims = random.shuffled(live).prefix(random.chance(0.5) ? 2 : 1)
        let length = random.int(in: Int64(100_000_000)...max(100_000_000, profile.topologyLagMax.nanoseconds))
        for victim in victims { network.deafenToTopology(victim, until: agenda.trueNow + length) }
        counters.count(.topologyLag)
        trace.line(
            agenda.trueNow,
            "topology watch of \(victims.map(\.short).joined(separator: ", ")) stalls for "
                + "\(Duration.nanoseconds(length).formattedMilliseconds)")
    }

    private func wallStep() {
        let host = random.pick(cluster.servers)
        let magnitude = random.int(in: Int64(1_000_000)...2_000_000_000)
        let step = random.chance(0.5) ? magnitude : -magnitude
        host.clock.wallOffsetNanoseconds += step
        counters.count(.wallClockStep)
        trace.line(
            agenda.trueNow, "\(host.id.short) wall clock steps \(Duration.nanoseconds(step).formattedMilliseconds)")
    }

    /// The fault phase ends: partitions heal, messages stop being lost, disks stop stalling,
    /// crashed servers restart, paused writers resume.
    private func healAll() {
        healed = true
        targeted.stop()
        network.heal()
        network.stopFaults()
        for host in cluster.servers { host.pausedUntil = min(host.pausedUntil, agenda.trueNow) }
        for index in cluster.servers.indices where !cluster.servers[index].isUp { serverControl.restartServer(index) }
        trace.line(agenda.trueNow, "heal: faults end, liveness phase begins")
        phase.faultPhaseEnded()
    }
}

/// `log(1 - u)` for u in [0, 1), without Foundation.
func log1pNegative(_ u: Double) -> Double {
    // ln(1 - u) via the identity ln(x) = 2·atanh((x-1)/(x+1)), series to good precision.
    let x = 1 - u
    guard x > 0 else { return -40 }
    var exponent = 0.0
    var mantissa = x
    while mantissa < 0.5 { mantissa *= 2; exponent -= 1 }
    let y = (mantissa - 1) / (mantissa + 1)
    var term = y
    var sum = 0.0
    var k = 1.0
    for _ in 0..<30 {
        sum += term / k
        term *= y * y
        k += 2
    }
    return 2 * sum + exponent * 0.693_147_180_559_945_3
}

/// What the faults do to servers: the world owns their construction.
protocol ServerControl: AnyObject {
    func crashServer(_ index: Int, keep: Int)
    func restartServer(_ index: Int)
    /// Wipes a server for good and starts a new one; returns the new server's id.
    func replaceServer(_ index: Int) -> NodeID
    /// A server was paused until this true time: its events wait until then.
    func serverPaused(until: Int64)
}

/// The topology manager as faults use it: read the topology, queue membership changes.
protocol TopologyControl: TopologyView {
    func enqueue(_ changes: [TopologyChange])
}

/// Who runs the end of the fault phase after the nemesis healed the network and the servers:
/// writers resume, hostile clients stop, the liveness phase begins (the world).
protocol FaultPhase: AnyObject {
    func faultPhaseEnded()
}
