public import WalleCore
public import WalleEnvironment

/// Runs a `TopologyManager` with its writer of the root stream: the same driver in the simulator
/// and in a real node. The host supplies the timers (`scheduleTimer`) and hears what the manager
/// reports (`report`: notes, writer events, committed versions, broken invariants); the writer's
/// own sends and wakeups go through its clock and network as for any writer.
public final class ManagerNode<NodeClock: Clock, NodeNetwork: Network> {
    /// What the host is told, in the order it happens.
    public enum Report {
        /// One event of the root writer, before the manager reacts to it.
        case writerEvent(WriterEvent)
        /// Any manager action but the writer's and the network's, which this driver carries out.
        case action(ManagerAction)
    }

    public let writer: WriterNode<NodeClock, NodeNetwork>
    public private(set) var manager: TopologyManager
    private let scheduleTimer: (ManagerTimer, Duration) -> Void
    private let report: (Report) -> Void

    public init(
        writer: WriterNode<NodeClock, NodeNetwork>, manager: TopologyManager,
        scheduleTimer: @escaping (ManagerTimer, Duration) -> Void, report: @escaping (Report) -> Void
    ) {
        self.writer = writer
        self.manager = manager
        self.scheduleTimer = scheduleTimer
        self.report = report
    }

    public var id: NodeID { writer.id }
    public var topology: Topology { manager.topology }
    public var isIdle: Bool { manager.isIdle }

    public func start() { run(manager.start()) }

    public func enqueue(_ changes: [TopologyChange]) { run(manager.enqueue(changes)) }

    public func timerFired(_ timer: ManagerTimer) {
        run(manager.timerFired(timer, writerCanClaim: writerCanClaim))
    }

    /// A message for the manager's node id: a request to the manager, the answer of its status
    /// call, or the writer's.
    public func receive(_ message: Message, from source: NodeID) -> Consumer {
        if case .topologyRequest(let requestID, let request) = message {
            run(manager.request(Route(node: source, requestID: requestID), request))
            return .manager
        }
        if let actions = manager.statusAnswered(message, from: source) {
            run(actions)
            return .manager
        }
        writerEvents(writer.receive(message, from: source))
        return .writer
    }

    /// Who took a received message.
    public enum Consumer { case manager, writer }

    /// The writer's wakeup fired.
    public func wake() { writerEvents(writer.wake()) }

    private var writerCanClaim: Bool {
        switch writer.client.phase {
        case .idle, .closed: return true
        case .waiting, .claiming, .confirming, .active: return false
        }
    }

    private func writerEvents(_ events: [WriterEvent]) {
        for event in events {
            report(.writerEvent(event))
            run(manager.writerEvent(event))
        }
    }

    /// Carries the actions out in order, depth first: what the writer returns for a claim or a
    /// put is fed back, and its consequences carried out, before the next action.
    private func run(_ actions: [ManagerAction]) {
        for action in actions {
            switch action {
            case .claimRoot:
                writerEvents(writer.claim())
            case .putTopology(let bytes, _):
                put(bytes)
            case .send(let message, let target):
                writer.network.send(message, from: writer.id, to: target)
            case .answer(let route, let reply):
                writer.network.send(.response(route.requestID, reply), from: writer.id, to: route.node)
            case .topologyCommitted(let topology):
                // The root writer follows the root stream's members as they change.
                if let root = topology.streams[writer.client.uri]?.members, !root.isEmpty {
                    writer.updateServers(root)
                }
                report(.action(action))
            case .schedule(let timer, let delay):
                scheduleTimer(timer, delay)
            case .note, .entryWritten, .changeCommitted, .invalid:
                report(.action(action))
            }
        }
    }

    private func put(_ bytes: [UInt8]) {
        let entry: Entry
        let events: [WriterEvent]
        do {
            (entry, events) = try writer.put(bytes)
        } catch {
            run(manager.topologyPutRefused())
            return
        }
        run(manager.topologyPut(entry))
        writerEvents(events)
    }
}
