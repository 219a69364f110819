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

    /// Servers whose root-stream polls are dropped until the given true time.
    private var topologyDeafUntil: [NodeID: Int64] = [:]

    func deafenToTopology(_ node: NodeID, until: Int64) {
        topologyDeafUntil[node] = max(topologyDeafUntil[node] ?? 0, until)
    }

    /// No more loss, duplication, spikes or stalled topology watches (the liveness phase).
    func stopFaults() {
        faults = .none
        topologyDeafUntil.removeAll()
    }

    public func send(_ message: Message, from source: NodeID, to target: NodeID) {
        observer.sent(message, from: source, to: target)
        if !topologyDeafUntil.isEmpty, case .pollStream(_, let uri, _) = message, uri == World.rootStream,
            let until = topologyDeafUntil[source], agenda.trueNow < until
        {
            return // even to itself: a root member learns versions from its own replica this way
        }
        if source == target {
            agenda.schedule(at: agenda.trueNow, .deliver(from: source, to: target, message))
            return
        }
        if !blocked.isEmpty && blocked.contains(LinkKey(source: source, target: target)) {
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
            schedule(message, from: source, to: target)
        }
        schedule(message, from: source, to: target)
    }

    private func schedule(_ message: Message, from source: NodeID, to target: NodeID) {
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
        agenda.schedule(at: agenda.trueNow + base + jitter, .deliver(from: source, to: target, message))
    }
}

/// Who sees each message as it is sent.
protocol SendObserver: AnyObject {
    func sent(_ message: Message, from source: NodeID, to target: NodeID)
}
