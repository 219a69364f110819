public import WalleCore
public import WalleEnvironment

/// Runs one `WriterClient` against a clock and a network: the same driver for the simulator's
/// clients and for the client library.
public final class WriterNode<NodeClock: Clock, NodeNetwork: Network> {
    public private(set) var client: WriterClient
    public let clock: NodeClock
    public let network: NodeNetwork
    private var scheduledWakeup: Instant?
    /// Where the addresses the writer learns from the topology go (the host's network).
    public var serversSink: (([NodeID: ServerAddress]) -> Void)?

    public init(client: WriterClient, clock: NodeClock, network: NodeNetwork) {
        self.client = client
        self.clock = clock
        self.network = network
    }

    public var id: NodeID { client.id }

    public func claim() -> [WriterEvent] {
        client.claim(now: clock.now)
        return carryOut()
    }

    /// Claims once the current writer's lease ran out (WaitAndClaim).
    public func waitAndClaim() -> [WriterEvent] {
        client.waitAndClaim(now: clock.now)
        return carryOut()
    }

    /// Ends a polite wait; `error` is the claim's failure.
    public func stopWaiting(_ error: WalleError) -> [WriterEvent] {
        client.stopWaiting(error)
        return carryOut()
    }

    public func put(_ data: [UInt8]) throws(WalleError) -> (Entry, [WriterEvent]) {
        let entry = try client.put(data, now: clock.now)
        return (entry, carryOut())
    }

    public func receive(_ message: Message, from source: NodeID) -> [WriterEvent] {
        client.receive(message, from: source, now: clock.now)
        return carryOut()
    }

    public func wake() -> [WriterEvent] {
        scheduledWakeup = nil
        client.wake(now: clock.now)
        return carryOut()
    }

    public func isExclusive() -> Bool { client.isExclusive(now: clock.now) }

    public func updateServers(_ members: [NodeID]) { client.updateServers(members) }

    private func carryOut() -> [WriterEvent] {
        for effect in client.takeEffects() {
            switch effect {
            case .send(let message, let target): network.send(message, from: client.id, to: target)
            case .servers(let servers): serversSink?(servers)
            default: break
            }
        }
        if let next = client.nextWakeup, next != scheduledWakeup {
            scheduledWakeup = next
            clock.scheduleWakeup(at: next)
        }
        return client.takeEvents()
    }
}
