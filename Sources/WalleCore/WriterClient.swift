public import WalleEnvironment

/// What a writer tells the application.
public enum WriterEvent: Sendable, Equatable {
    /// The claim succeeded and its first heartbeat too: this client is the writer, and `tail`
    /// is the last committed entry it starts from.
    case claimed(WriterID, tail: Entry)
    case claimFailed(WalleError)
    /// Entry is durable on a majority: committed. Reported in id order.
    case putAcknowledged(Entry)
    /// A final error: some newer writer took over (or the request was invalid). The writer
    /// never sends again; what was not acknowledged may or may not commit (invariant 3).
    case closed(WalleError)
}

public struct WriterConfiguration: Sendable {
    public var address: String
    public var lease: Duration
    /// [W-2] pipelining bounds.
    public var putsInFlightMax = 128
    public var bytesInFlightMax = 4 << 20
    /// Puts accepted from the application but not yet acknowledged.
    public var putsPendingMax = 4096
    /// Their entry bytes: with 1 MiB entries the count bound alone let 4 GiB wait in memory.
    /// One put is always accepted when none is pending, whatever its size.
    public var putsPendingBytesMax = 64 << 20
    public var requestTimeout: Duration = .seconds(2)
    public var retryDelay: Duration = .milliseconds(20)
    /// A server that let a request time out is skipped as coordinator this long, unless every
    /// server is skipped: a dead member would otherwise stall every put routed through it
    /// for a whole `requestTimeout`, and the members that need those puts in order with it.
    public var serverSuspectDuration: Duration = .seconds(5)
    /// How soon after the last acknowledgement an idle writer tells members what committed.
    public var shortBeat: Duration = .milliseconds(5)
    /// Where the writer follows the topology from (`WriterClient+Topology.swift`); nil: its
    /// member list changes only through `updateServers` (the manager's own writer).
    public var topologySource: TopologySource?
    /// How long one round of topology polls may take: a member's long poll lasts its
    /// `pollTimeout` (5 s by default), and a round that lasts longer lost its answers.
    public var topologyRoundTimeout: Duration = .seconds(6)
    /// The pause between rounds when one brought nothing newer.
    public var topologyRetryDelay: Duration = .milliseconds(200)
    package var plantedBugs: Set<PlantedBug> = []

    public init(address: String, lease: Duration) {
        precondition(lease >= .milliseconds(100), "a writer's lease is at least 100ms (0 is for internal writers)")
        self.address = address
        self.lease = lease
    }

    /// How long after a successful send this writer counts itself exclusive.
    public var exclusivityWindow: Duration {
        #if DEBUG
            if plantedBugs.contains(.leaseMarginTooLarge) {
                return .nanoseconds(lease.nanoseconds / 4 * 3)
            }
        #endif
        return TimeModel.exclusivityWindow(lease: lease)
    }
}

/// The writer client of one stream (docs/protocol.md, "Writer side" and "ClaimWriter", phase
/// 6): claims, pipelines puts, heartbeats, and knows when it is exclusive. Sans-IO like the
/// server: events in, effects and `WriterEvent`s out.
///
/// Invariants: `pending` is sorted by entry id and contiguous up to `tail`; at most
/// `putsInFlightMax` + 1 puts are outstanding (the oldest may bypass the bound); the
/// exclusivity window counts from the *send* time of the last request that succeeded ([DRIFT-1]).
public struct WriterClient {
    public enum Phase: Equatable, Sendable {
        case idle
        /// Waiting, politely, for the current writer's lease to run out before claiming.
        case waiting
        case claiming
        case confirming
        case active
        case closed(WalleError)
    }

    /// Where the writer is, with what that phase needs: the claim's request id, so a late
    /// final refusal of one of its later requests still closes the writer ([W-9]).
    enum State: Equatable {
        case idle
        case waiting(PoliteWait)
        case claiming(requestID: RequestID)
        case confirming(claimRequestID: RequestID)
        case active(claimRequestID: RequestID)
        case closed(WalleError)
    }

    enum Request {
        case status
        case claim
        case put(EntryID, sentAt: Instant, told: EntryID)
        case heartbeat(sentAt: Instant, told: EntryID)
    }

    /// A request in flight and when to give up on it. At most `putsInFlightMax + 3` exist, so
    /// scanning them for deadlines is cheap, and nothing piles up after fast failures.
    struct Outstanding {
        var request: Request
        var target: NodeID
        var sentAt: Instant
        var deadline: Instant
    }

    public let id: NodeID
    public let uri: StreamURI
    public let configuration: WriterConfiguration
    var state: State = .idle
    /// What this claim's writer knows; each claim starts a fresh one.
    var session: WriterSession
    var routing: WriterRouting
    var outstanding: [RequestID: Outstanding] = [:]
    /// Never reset: request ids go on the wire, and a late answer must never match a new request.
    var nextRequestID: RequestID = 0
    var outbox: [Effect] = []
    var events: [WriterEvent] = []
    var follower: TopologyFollower?
    var followed = Followed()
    /// The subtle branches this writer took (`Probe`); the simulator collects them.
    public internal(set) var probes = ProbeSet()

    /// `requestIDBase`: where this writer's request ids start. A writer that shares its node id
    /// with a server (the topology manager runs under its server's id) numbers its requests
    /// from 2^63 up, where the server's own calls never reach, so each answer finds its owner.
    public init(
        id: NodeID, uri: StreamURI, servers: [NodeID], configuration: WriterConfiguration, firstServer: Int = 0,
        requestIDBase: RequestID = 0
    ) {
        precondition(!servers.isEmpty)
        self.id = id
        self.nextRequestID = requestIDBase
        self.uri = uri
        self.configuration = configuration
        self.session = WriterSession(putsWindow: configuration.putsInFlightMax)
        self.routing = WriterRouting(servers: servers, cursor: firstServer % servers.count)
        self.follower = configuration.topologySource.map {
            TopologyFollower(
                $0, requestIDBase: requestIDBase, roundTimeout: configuration.topologyRoundTimeout,
                retryDelay: configuration.topologyRetryDelay)
        }
    }

    public var phase: Phase {
        switch state {
        case .idle: return .idle
        case .waiting: return .waiting
        case .claiming: return .claiming
        case .confirming: return .confirming
        case .active: return .active
        case .closed(let error): return .closed(error)
        }
    }

    public var servers: [NodeID] { routing.servers }
    public var writerID: WriterID { session.writerID }
    /// The last entry this writer created (or the claimed tail).
    public var tail: Entry { session.tail }
    /// The highest acknowledged entry: committed ([W-3]).
    public var committed: CommitMarker { session.committed }
    /// Send time of the last request that succeeded.
    public var commitTime: Instant? { session.commitTime }

    public mutating func takeEffects() -> [Effect] {
        defer { outbox.removeAll(keepingCapacity: true) }
        return outbox
    }

    public mutating func takeEvents() -> [WriterEvent] {
        defer { events.removeAll(keepingCapacity: true) }
        return events
    }

    /// Whether this writer may answer reads from its own state right now ([W-8]).
    public func isExclusive(now: Instant) -> Bool {
        guard let until = exclusiveUntil else { return false }
        return now < until
    }

    public var exclusiveUntil: Instant? { session.commitTime.map { $0 + configuration.exclusivityWindow } }

    public var pendingCount: Int { session.pending.count }

    /// Whether a majority has heard, on a put or heartbeat that succeeded, which entry is
    /// committed. Until then readers cannot see the last acknowledged entries: a writer that
    /// stops should wait for this (members learn commits only from the writer; docs/protocol.md,
    /// "PutEntry").
    public var membersKnowCommitted: Bool { session.toldCommitted >= session.committed.id }

    public var nextWakeup: Instant? {
        // A minimum does not depend on the order the dictionary yields its values.
        let candidates = [
            heartbeatDue, session.retryWakeAt, politeWakeAt, followerWakeAt,
            outstanding.values.lazy.map(\.deadline).min(),
        ]
        return candidates.compactMap { $0 }.min()
    }
}
