import WalleEnvironment

/// The simulated network: per-link base latency plus jitter, so messages on one link can
/// overtake each other. A message to oneself is delivered at once and never lost (§3.3).
public final class SimNetwork: Network {
    unowned let world: World
    private var random: SimRandom
    private var linkLatency: [LinkKey: Int64] = [:]
    let latencyMinNanoseconds: Int64
    let latencyMaxNanoseconds: Int64
    let jitterMaxNanoseconds: Int64

    struct LinkKey: Hashable {
        var source: NodeID
        var target: NodeID
    }

    init(world: World, random: SimRandom, profile: NetworkProfile) {
        self.world = world
        self.random = random
        self.latencyMinNanoseconds = profile.latencyMin.nanoseconds
        self.latencyMaxNanoseconds = profile.latencyMax.nanoseconds
        self.jitterMaxNanoseconds = profile.jitterMax.nanoseconds
    }

    public func send(_ message: Message, from source: NodeID, to target: NodeID) {
        world.oracle.messageSent(message, from: source, to: target)
        if source == target {
            world.schedule(at: world.trueNow, .deliver(from: source, to: target, message))
            return
        }
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
        let jitter = Int64(Double(jitterMaxNanoseconds) * u * u * u)
        world.schedule(at: world.trueNow + base + jitter, .deliver(from: source, to: target, message))
    }
}
