public import WalleEnvironment

/// One change to the topology: a single add or remove ([MEM-2]), a new stream, or a server's
/// address.
public enum TopologyChange: Hashable, Sendable, CustomStringConvertible {
    case add(StreamURI, NodeID)
    case remove(StreamURI, NodeID)
    /// A new stream at version 1. Its members learn it from the topology as they apply it.
    case create(StreamURI, members: [NodeID])
    /// A server's address, new or changed ([MEM-1]). No stream's version moves.
    case register(NodeID, address: ServerAddress)
    /// The stream's new first entry. No stream's version moves: the members stay, and the
    /// writer's puts go on.
    case trim(StreamURI, firstEntryID: EntryID)

    /// The stream the change is to; nil for a registration.
    public var uri: StreamURI? {
        switch self {
        case .add(let uri, _), .remove(let uri, _), .create(let uri, _), .trim(let uri, _): return uri
        case .register: return nil
        }
    }

    public var description: String {
        switch self {
        case .add(let uri, let node): return "add \(node.short) to \(uri)"
        case .remove(let uri, let node): return "remove \(node.short) from \(uri)"
        case .create(let uri, let members): return "create \(uri) on \(members.map(\.short).joined(separator: ","))"
        case .register(let node, let address): return "register \(node.short) at \(address)"
        case .trim(let uri, let first): return "trim \(uri) below \(first)"
        }
    }

    /// How many bytes the change adds to `topology`'s encoding (negative for a removal).
    func encodedGrowth(in topology: Topology) -> Int {
        switch self {
        case .add: return 8
        case .remove: return -8
        case .create(let uri, let members): return Topology.encodedByteCount(uri, members: members.count)
        case .register(let node, let address):
            if let old = topology.servers[node] { return address.description.utf8.count - old.description.utf8.count }
            // The first server brings the table's count with it, unless a trim table did.
            let countBytes = topology.servers.isEmpty && topology.firstEntryIDs.isEmpty ? 4 : 0
            return Topology.encodedByteCount(address: address) + countBytes
        case .trim(let uri, _):
            guard topology.firstEntryIDs[uri] == nil else { return 0 }
            guard topology.firstEntryIDs.isEmpty else { return Topology.encodedByteCount(trimOf: uri) }
            // The first trim brings its table's count, and the server count if no server did.
            return Topology.encodedByteCount(trimOf: uri) + 4 + (topology.servers.isEmpty ? 4 : 0)
        }
    }

    /// A new stream or an address is written without asking anyone's status: no member holds
    /// anything it could lose. A trim asks, to learn the committed id it must not pass.
    var isWrittenAtOnce: Bool {
        switch self {
        case .create, .register: return true
        case .add, .remove, .trim: return false
        }
    }

    /// True when `topology` already shows this change made.
    func isApplied(in topology: Topology) -> Bool {
        switch self {
        case .add(let uri, let node): return topology.streams[uri]?.contains(node) ?? false
        case .remove(let uri, let node): return !(topology.streams[uri]?.contains(node) ?? true)
        case .create(let uri, _): return topology.streams[uri] != nil
        case .register(let node, let address): return topology.servers[node] == address
        case .trim(let uri, let first): return topology.firstEntryID(of: uri) >= first
        }
    }
}

/// The manager's own timers. The host fires each one once, after its delay; none is cancelled,
/// so each entry point checks that the timer still means something.
public enum ManagerTimer: Hashable, Sendable {
    /// Try to claim the root stream (if the writer is idle or closed).
    case claim
    /// Ask for status again after a refusal, an unusable answer, or a wait that was not over.
    case retry
    /// The StreamStatus call under this id has had its time.
    case statusTimeout(RequestID)
    /// The WriterStatus probe under this id has had its time.
    case probeTimeout(RequestID)
}

/// When a manager claims the root stream.
public enum ClaimPolicy: Sendable, Equatable {
    /// At once, and again soon after losing it: the simulator's single manager.
    case immediate
    /// Only once the root stream's writer lease has run out, as a probe (WriterStatus to a
    /// root member) shows: every root member of a real cluster runs a manager, and all but one
    /// stand by instead of fencing each other in turn.
    case whenLeaseExpired(root: StreamURI, members: [NodeID])
}

/// What the manager asks its host to do, in order. `claimRoot` and `putTopology` go to the
/// manager's writer, whose result the host feeds back (`writerEvent`, `topologyPut`,
/// `topologyPutRefused`) before it carries out the next action.
public enum ManagerAction: Sendable {
    /// A line for the log or trace.
    case note(String)
    /// Claim the root stream if the writer is idle or closed.
    case claimRoot
    /// Put `bytes` (topology version `version`) on the root stream.
    case putTopology([UInt8], version: UInt64)
    case send(Message, to: NodeID)
    case schedule(ManagerTimer, after: Duration)
    /// The root entry was handed to the writer (not yet acknowledged).
    case entryWritten(Entry)
    /// The answer to a TopologyRequest.
    case answer(Route, Reply)
    /// A topology version is committed (or was found committed by a claim): route to it.
    case topologyCommitted(Topology)
    /// `change` is committed in `topology`.
    case changeCommitted(TopologyChange, Topology)
    /// The root stream holds what no manager could have written, or the manager cannot write
    /// the next version: a broken invariant of the cluster, reported and not retried.
    case invalid(String)
}

/// Timing and identity of a topology manager.
public struct ManagerConfiguration: Sendable {
    /// Written as version 1 by the manager whose claim finds the root stream empty.
    public var initial: Topology
    /// How long a StreamStatus call may take before another member is asked.
    public var statusTimeout: Duration = .seconds(2)
    /// The wait before asking again after a refusal or an answer that says "not yet".
    public var retryDelay: Duration = .milliseconds(100)
    /// After a lost or failed claim, the next comes after a draw from this range (ms), so two
    /// managers do not fence each other in step.
    public var claimRetryMilliseconds: ClosedRange<Int64> = 50...500
    /// StreamStatus calls are numbered from here up, apart from the writer's own request ids.
    public var statusRequestIDBase: RequestID = 1 << 40
    public var claimPolicy: ClaimPolicy = .immediate
    /// How long a WriterStatus probe may take before the next root member is asked.
    public var probeTimeout: Duration = .seconds(1)
    /// After a probe finds a live lease, the next comes when it ends plus a draw up to this (ms).
    public var probeJitterMilliseconds: Int64 = 250
    /// Changes queued at once. Each is one request's (or the nemesis's); beyond this a request
    /// is refused with ResourceExhausted, so the queue grows with what is in flight only.
    public var pendingChangesMax = 64
    /// Requests waiting on one change: a client that retries joins the change it asked for.
    public var routesPerChangeMax = 8

    public init(initial: Topology) {
        self.initial = initial
    }
}
