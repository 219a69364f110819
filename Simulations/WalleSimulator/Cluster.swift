import WalleCore
import WalleEnvironment

/// The run's hosts, and which one a node id names: what components read to find servers and
/// clients. Only the world adds hosts.
final class Cluster {
    enum HostRef {
        case server(Int)
        case writer(Int)
        case reader(Int)
        case hostile(Int)
        case manager
    }

    var servers: [ServerHost] = []
    var writers: [WriterHost] = []
    var readers: [ReaderHost] = []
    var hostiles: [HostileClient] = []
    private var hostIndex: [NodeID: HostRef] = [:]

    func register(_ id: NodeID, _ ref: HostRef) { hostIndex[id] = ref }

    func ref(_ id: NodeID) -> HostRef? { hostIndex[id] }

    func serverHost(_ id: NodeID) -> ServerHost? {
        guard case .server(let index)? = hostIndex[id] else { return nil }
        return servers[index]
    }

    var serverIDs: [NodeID] { servers.map(\.id) }

    /// Whether a majority of the servers in service stays up when `server` goes down.
    func majorityStaysUp(without server: NodeID) -> Bool {
        let alive = servers.filter { !$0.isRetired }.count
        let upAfter = servers.filter { $0.isUp && !$0.isRetired && $0.id != server }.count
        return upAfter > alive / 2
    }

    var clientIDs: [NodeID] { writers.map(\.id) + readers.map(\.id) + [NodeID.client(900)] }
}

/// What the liveness phase and the faults read of the topology manager.
protocol TopologyView: AnyObject {
    var isIdle: Bool { get }
    var topology: Topology { get }
}

/// What the liveness phase reads of the acknowledgements the oracle saw.
protocol AcknowledgementView: AnyObject {
    func lastAcknowledgedAt(_ uri: StreamURI) -> Int64?
    func highestAcknowledged(_ uri: StreamURI) -> EntryID
}

/// The workload as the liveness phase drives it.
protocol WorkloadControl: AnyObject {
    var streams: [StreamURI] { get }
    func quiesce()
}

/// Makes each node's clock: a random origin and wall offset, drawn in the order clocks are
/// made, and a rate from the profile's list.
final class ClockFactory {
    private let agenda: Agenda
    private var random: SimRandom
    private let rates: [Double]

    init(agenda: Agenda, random: SimRandom, rates: [Double]) {
        self.agenda = agenda
        self.random = random
        self.rates = rates
    }

    func makeClock(_ node: NodeID, rateIndex: Int) -> SimClock {
        let origin = random.int(in: Int64(0)...1_000_000_000_000)
        let wallOffset = random.int(in: Int64(-50_000_000)...50_000_000)
        return SimClock(
            agenda: agenda, node: node, rate: rates[rateIndex], localOrigin: origin, wallOffsetNanoseconds: wallOffset)
    }
}

/// Where clients report what they saw: writer events, entries they wrote, read and hostile
/// answers (the oracle, which checks them).
protocol ClientObserver: AnyObject {
    func writerEvent(_ host: WriterHost, _ event: WriterEvent)
    func observeWriter(_ host: WriterHost)
    func entryWritten(_ uri: StreamURI, _ entry: Entry)
    /// A writer client invoked a claim or a put (the put's entry is `entry`).
    func claimInvoked(_ host: WriterHost)
    func putInvoked(_ host: WriterHost, _ entry: Entry)
    func readAnswered(_ request: ReaderHost.ReadRequest, _ reply: Reply, reader: NodeID)
    func hostileAnswered(
        _ expectation: HostileExpectation, _ what: String, _ reply: Reply, client: NodeID, server: NodeID)
    func claimed(_ uri: StreamURI, _ writer: WriterID, _ tail: Entry, by node: NodeID)
}

/// A node's clock rate, changed by the workload (servers' and writers').
protocol ClockControl: AnyObject {
    func setClockRate(_ node: NodeID, _ rate: Double)
}
