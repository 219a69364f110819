import WalleEnvironment

/// The simulated network: per-link base latency plus jitter, so messages on one link can
/// overtake each other. A message to oneself is delivered at once and never lost
/// (docs/simulation.md, "Faults").
public final class SimNetwork: Network {
    private let agenda: Agenda
    private let trace: Trace
    private let counters: SimCounters
    /// Sees every message as it is sent, before loss or partitions (the world, which passes it
    /// to the oracle and to what hostile clients overhear).
    private unowned let observer: any SendObserver
    private var random: SimRandom
    private var linkLatency: [LinkKey: Int64] = [:]
    let latencyMinNanoseconds: Int64
    let latencyMaxNanoseconds: Int64
    let jitterMaxNanoseconds: Int64

    struct LinkKey: Hashable {
        var source: NodeID
        var target: NodeID
    }

    init(
        agenda: Agenda, trace: Trace, counters: SimCounters, observer: any SendObserver, random: SimRandom,
        profile: NetworkProfile, faults: FaultProfile
    ) {
        self.agenda = agenda
        self.trace = trace
        self.counters = counters
        self.observer = observer
        self.faults = faults
        self.random = random
        self.latencyMinNanoseconds = profile.latencyMin.nanoseconds
        self.latencyMaxNanoseconds = profile.latencyMax.nanoseconds
        self.jitterMaxNanoseconds = profile.jitterMax.nanoseconds
    }

    private var blocked: Set<LinkKey> = []
    private var faults: FaultProfile

    /// Cuts the given links (source to target) until `heal`.
    func partition(_ links: [(NodeID, NodeID)]) {
        blocked = Set(links.map { LinkKey(source: $0.0, target: $0.1) })
    }

    func heal() { blocked.removeAll() }

    /// The targeted fault points of the seed, asked about every message (nil: none on).
    var targeted: TargetedFaults?
    /// Servers cut off from everyone until a true time (a targeted claim-phase fault).
    private var isolatedUntil: [NodeID: Int64] = [:]

    func isolate(_ node: NodeID, until: Int64) {
        isolatedUntil[node] = max(isolatedUntil[node] ?? 0, until)
    }

    private func isIsolated(_ node: NodeID) -> Bool {
        guard let until = isolatedUntil[node] else { return false }
        return agenda.trueNow < until
    }

    /// Servers whose root-stream polls are dropped until the given true time.
    private var topologyDeafUntil: [NodeID: Int64] = [:]

    func deafenToTopology(_ node: NodeID, until: Int64) {
        topologyDeafUntil[node] = max(topologyDeafUntil[node] ?? 0, until)
    }

    /// Clients learn the topology late, or at once: the answers to half of a writer's rounds of
    /// root-stream polls are held back 0 to 2 s, one draw per round (with stalled topology
    /// watches in the profile, 30% of the rounds up to the stall bound), so coordinators of the
    /// previous stream version keep being asked for a while, as behind a slow path to the root
    /// members.
    /// One draw per round, not per answer: the first of three answers would otherwise come
    /// after the smallest of three draws. Each client's root polls still out, the newest
    /// `clientRootPollsMax`: a round is one poll per root member (at most 5), and a round given
    /// up may still be answered.
    private var clientRootPolls: [NodeID: [(requestID: RequestID, sentAt: Int64, held: Int64)]] = [:]
    static let clientRootPollsMax = 16
    static let clientTopologyDelayMaxNanoseconds: Int64 = 2_000_000_000

    private func noteClientRootPoll(_ message: Message, from source: NodeID) {
        guard !source.isServer, case .pollStream(let requestID, let uri, _) = message, uri == World.rootStream else {
            return
        }
        var polls = clientRootPolls[source] ?? []
        if polls.count >= Self.clientRootPollsMax { polls.removeFirst() }
        let held: Int64
        if let last = polls.last, last.sentAt == agenda.trueNow {
            held = last.held
        } else {
            // Half the rounds are answered at once: a writer that learns a new version fast
            // retries its puts on the new list while members still hold puts queued under the
            // old one, the window of seed 168's bug, which held-back rounds alone never reached.
            var delay = random.chance(0.5) ? 0 : random.int(in: Int64(0)...Self.clientTopologyDelayMaxNanoseconds)
            let lag = faults.topologyLagsPerMinute > 0 ? faults.topologyLagMax.nanoseconds : 0
            if lag > delay && random.chance(0.3) { delay = random.int(in: delay...lag) }
            held = delay
        }
        polls.append((requestID, agenda.trueNow, held))
        clientRootPolls[source] = polls
    }

    /// How long the answer to a client's root poll is held back; 0 for any other message.
    private func clientTopologyDelay(_ message: Message, to target: NodeID) -> Int64 {
        guard !target.isServer, case .response(let requestID, _) = message,
            let index = clientRootPolls[target]?.firstIndex(where: { $0.requestID == requestID })
        else { return 0 }
        return clientRootPolls[target]?.remove(at: index).held ?? 0
    }

    /// No more loss, duplication, spikes or stalled topology watches (the liveness phase).
    func stopFaults() {
        faults = .none
        topologyDeafUntil.removeAll()
        isolatedUntil.removeAll()
    }

    public func send(_ message: Message, from source: NodeID, to target: NodeID) {
        observer.sent(message, from: source, to: target)
        var targetedDelay: Int64 = 0
        if let targeted {
            switch targeted.verdict(message, from: source, to: target) {
            case .send: break
            case .drop: return
            case .delay(let nanoseconds): targetedDelay = nanoseconds
            }
        }
        if !topologyDeafUntil.isEmpty, case .pollStream(_, let uri, _) = message, uri == World.rootStream,
            let until = topologyDeafUntil[source], agenda.trueNow < until
        {
            return // even to itself: a root member learns versions from its own replica this way
        }
        noteClientRootPoll(message, from: source)
        let held = clientTopologyDelay(message, to: target) + targetedDelay
        if source == target {
            agenda.schedule(at: agenda.trueNow, .deliver(from: source, to: target, message))
            return
        }
        if !blocked.isEmpty && blocked.contains(LinkKey(source: source, target: target))
            || !isolatedUntil.isEmpty && (isIsolated(source) || isIsolated(target))
        {
            counters.count(.messageBlocked)
            return
        }
        if faults.lossProbability > 0 && random.chance(faults.lossProbability) {
            counters.count(.messageLost)
            trace.line(agenda.trueNow, "lost: \(source.short) -> \(target.short) \(message)")
            return
        }
        if faults.duplicateProbability > 0 && random.chance(faults.duplicateProbability) {
            counters.count(.messageDuplicated)
            schedule(message, from: source, to: target, held: held)
        }
        schedule(message, from: source, to: target, held: held)
    }

    private func schedule(_ message: Message, from source: NodeID, to target: NodeID, held: Int64) {
        let key = LinkKey(source: source, target: target)
        let base: Int64
        if let known = linkLatency[key] {
            base = known
        } else {
            base = random.int(in: latencyMinNanoseconds...latencyMaxNanoseconds)
            linkLatency[key] = base
        }
        // Cubed uniform: mostly small jitter, now and then a large one (reordering).
        let u = random.unit()
        var jitter = Int64(Double(jitterMaxNanoseconds) * u * u * u)
        if faults.spikeProbability > 0 && random.chance(faults.spikeProbability) {
            counters.count(.latencySpike)
            jitter += random.int(in: Int64(0)...faults.spikeMax.nanoseconds)
        }
        agenda.schedule(at: agenda.trueNow + base + jitter + held, .deliver(from: source, to: target, message))
    }
}

/// Who sees each message as it is sent.
protocol SendObserver: AnyObject {
    func sent(_ message: Message, from source: NodeID, to target: NodeID)
}
