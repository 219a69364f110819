import WalleCore
import WalleEnvironment
import WalleNode

typealias SimManagerNode = ManagerNode<SimClock, SimNetwork>

/// The topology manager of the simulated cluster: the core's `TopologyManager`, driven by the
/// same `ManagerNode` a real node runs, with its timers on the agenda and its reports in the
/// trace, the counters and the oracle. It decides nothing itself.
final class ManagerHost: TopologyControl {
    let host: WriterHost
    private(set) var node: SimManagerNode!
    private let agenda: Agenda
    private let trace: Trace
    private let counters: SimCounters
    private unowned let observer: any ClientObserver & MembershipObserver
    private unowned let listener: any TopologyListener

    init(
        host: WriterHost, manager: TopologyManager, agenda: Agenda, trace: Trace, counters: SimCounters,
        observer: any ClientObserver & MembershipObserver, listener: any TopologyListener
    ) {
        self.host = host
        self.agenda = agenda
        self.trace = trace
        self.counters = counters
        self.observer = observer
        self.listener = listener
        // The manager's timers are workload events, handed back to it by the world.
        node = SimManagerNode(
            writer: host.node, manager: manager,
            scheduleTimer: { [unowned self] timer, delay in
                self.agenda.schedule(at: self.agenda.trueNow + delay.nanoseconds, .workload(.manager(timer)))
            },
            report: { [unowned self] report in self.carryOut(report) })
    }

    var topology: Topology { node.topology }
    var isIdle: Bool { node.isIdle }

    func start() { node.start() }

    func enqueue(_ changes: [TopologyChange]) { node.enqueue(changes) }

    func timerFired(_ timer: ManagerTimer) { node.timerFired(timer) }

    func receive(_ message: Message, from source: NodeID) {
        // The oracle looks at the writer after each message the writer took.
        if node.receive(message, from: source) == .writer { observer.observeWriter(host) }
    }

    func wake() { node.wake() }

    private func carryOut(_ report: SimManagerNode.Report) {
        switch report {
        case .writerEvent(let event):
            trace.line(agenda.trueNow, "manager event: \(event.brief)")
            observer.writerEvent(host, event)
        case .action(.note(let text)):
            trace.line(agenda.trueNow, text)
        case .action(.entryWritten(let entry)):
            observer.entryWritten(World.rootStream, entry)
        case .action(.topologyCommitted(let topology)):
            listener.topologyChanged(topology)
        case .action(.changeCommitted(let change, let topology)):
            changeCommitted(change, topology)
        case .action(.invalid(let detail)):
            observer.fail(.topology, [host.id], detail)
        case .action(let action):
            preconditionFailure("the manager node carries out \(action) itself")
        }
    }

    private func changeCommitted(_ change: TopologyChange, _ topology: Topology) {
        // The simulator's streams are in the initial topology; none is created later (yet), and
        // its servers register no addresses.
        if case .register = change { return }
        if case .create = change { return }
        if case .trim(let uri, let first) = change {
            observer.trimmed(uri, below: first)
            return
        }
        counters.count(.membershipChange)
        switch change {
        case .remove(let uri, _):
            let members = topology.streams[uri]?.members ?? []
            observer.checkMembersHoldCommitted(uri, members)
            observer.checkMembersHoldNewestClaim(uri, members)
        case .add(let uri, let node):
            observer.joined(node, uri)
        case .create, .register, .trim:
            return
        }
    }
}

/// Where the manager reports what its membership changes must keep (the oracle).
protocol MembershipObserver: AnyObject {
    func fail(_ invariant: Invariant, _ nodes: [NodeID], _ detail: String)
    func checkMembersHoldCommitted(_ uri: StreamURI, _ members: [NodeID])
    func checkMembersHoldNewestClaim(_ uri: StreamURI, _ members: [NodeID])
    func joined(_ node: NodeID, _ uri: StreamURI)
    /// A trim committed: entries below `first` may go from now on.
    func trimmed(_ uri: StreamURI, below first: EntryID)
}

/// Who routes clients to a committed topology (the world).
protocol TopologyListener: AnyObject {
    func topologyChanged(_ topology: Topology)
}
