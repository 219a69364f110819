import Logging
import NIOCore
import WalleCore
import WalleEnvironment
import WalleNode
import WalleTransport

typealias ProductionManager = ManagerNode<SystemClock, Transport>

/// The topology manager on a real node (docs/operating.md, "The topology manager"): every root
/// member runs one under its own server id, and the one that holds the root stream's writer
/// lease makes the changes; the others stand by and claim only once that lease has run out.
extension NodeRuntime {
    /// The manager's requests are numbered from 2^63 up, so their answers, which arrive on the
    /// server's own id, never meet the server core's calls (numbered below 2^62).
    static let managerRequestIDBase: RequestID = 1 << 63
    /// Lease of the manager's root writer: a dead manager's successor takes over after it.
    static let managerLease: Duration = .seconds(1)

    /// Whether `message` is for the manager: a request to it, or an answer to one of its own.
    static func isManagerMessage(_ message: Message) -> Bool {
        switch message {
        case .topologyRequest: return true
        case .response(let requestID, _): return requestID >= managerRequestIDBase
        default: return false
        }
    }

    /// Builds the manager of a root member; it starts standing by.
    func makeManager(transport: Transport, rootMembers: [NodeID]) -> ProductionManager {
        let id = options.id
        let clock = SystemClock(eventLoop: eventLoop)
        let client = WriterClient(
            id: id, uri: rootStream, servers: rootMembers,
            configuration: WriterConfiguration(address: "manager@\(id.rawValue)", lease: Self.managerLease),
            requestIDBase: Self.managerRequestIDBase)
        var configuration = ManagerConfiguration(
            initial: Topology(version: 1, streams: [rootStream: StreamTopology(version: 1, members: rootMembers)]))
        configuration.claimPolicy = .whenLeaseExpired(root: rootStream, members: rootMembers)
        configuration.statusRequestIDBase = Self.managerRequestIDBase | 1 << 40
        let loop = eventLoop
        let logger = logger
        let manager = ProductionManager(
            writer: WriterNode(client: client, clock: clock, network: transport),
            manager: TopologyManager(configuration: configuration, random: SystemRandomNumberGenerator()),
            scheduleTimer: { [weak self] timer, delay in
                // On the loop, as every event of the node: the manager is touched nowhere else.
                let runtime = self
                loop.scheduleTask(in: .nanoseconds(delay.nanoseconds)) { runtime?.manager?.timerFired(timer) }
            },
            report: { report in Self.log(report, logger) })
        clock.onWake = { [weak manager] in manager?.wake() }
        return manager
    }

    private static func log(_ report: ProductionManager.Report, _ logger: Logger) {
        switch report {
        case .writerEvent(.claimed(let writer, let tail)):
            logger.info("topology manager: holds \(rootStream) as \(writer), topology version \(tail.id)")
        case .writerEvent(.closed(let error)), .writerEvent(.claimFailed(let error)):
            logger.info("topology manager: standing by (\(error))")
        case .writerEvent(.putAcknowledged):
            return
        case .action(.note(let text)):
            logger.info("\(text)")
        case .action(.invalid(let text)):
            logger.critical("topology manager: \(text)")
        case .action(.changeCommitted(let change, let topology)):
            logger.info("topology manager: \(change) committed as version \(topology.version)")
        case .action:
            return
        }
    }
}
