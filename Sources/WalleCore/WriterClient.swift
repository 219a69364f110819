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
/// `putsInFlightMax` + 1 puts are outstanding (the oldest may bypass the bound); the exclusivity window counts from the *send* time
/// of the last request that succeeded ([DRIFT-1]).
public struct WriterClient {
    public enum Phase: Equatable, Sendable {
        case idle
        case claiming
        case confirming
        case active
        case closed(WalleError)
    }

    struct PendingPut {
        var entry: Entry
        var requestID: RequestID?
        var retryAt: Instant
    }

    enum Request {
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
    public internal(set) var servers: [NodeID]
    public internal(set) var phase: Phase = .idle
    public internal(set) var writerID: WriterID = .zero
    /// The last entry this writer created (or the claimed tail).
    public internal(set) var tail: Entry = .zero
    /// The highest acknowledged entry: committed ([W-3]).
    public internal(set) var committed = CommitMarker.zero
    var toldCommitted: EntryID = 0
    /// Send time of the last request that succeeded.
    public internal(set) var commitTime: Instant?
    var lastAcknowledgedAt = Instant.distantPast
    /// The request id of this claim's ClaimWriter: a late answer to a later request (a put
    /// or heartbeat of this claim) that carries a final error still closes the writer.
    var claimRequestID: RequestID = 0
    var pending: [PendingPut] = []
    var bytesInFlight = 0
    /// Entry bytes of `pending` (at most `putsPendingBytesMax`, or one entry).
    var pendingBytes = 0
    var putsInFlight = 0
    /// Puts this writer lets out at once now: halved by every ResourceExhausted answer, one
    /// more per acknowledged entry (doubling per round trip, like TCP's slow start), at most
    /// `putsInFlightMax`.
    /// Resending a full pipeline every `retryDelay` into a full server only kept it full:
    /// the later puts waited at the members for the refused earlier ones and expired, and a
    /// seed of tight limits under high load ran for minutes of wall time per simulated one.
    var putsWindow: Int
    var outstanding: [RequestID: Outstanding] = [:]
    var heartbeatRequest: RequestID?
    var heartbeatRetryAt = Instant.distantPast
    /// The earliest retry of a failed put.
    var retryWakeAt: Instant?
    var nextRequestID: RequestID = 0
    var serverCursor: Int
    /// Servers that let a request time out without answering anything since it was sent, and
    /// until when they are skipped. At most one per member.
    var suspectUntil: [NodeID: Instant] = [:]
    /// When each member last answered anything. A coordinator that answers other requests is
    /// alive, only slow (it may wait `callTimeout` for a dead member before it answers): marking
    /// it suspect too left every member suspect under load, and the round robin then sent the
    /// oldest put through the dead member again and again (seed 799). At most one per member.
    var heardAt: [NodeID: Instant] = [:]
    var outbox: [Effect] = []
    var events: [WriterEvent] = []

    public init(id: NodeID, uri: StreamURI, servers: [NodeID], configuration: WriterConfiguration, firstServer: Int = 0) {
        self.putsWindow = configuration.putsInFlightMax
        precondition(!servers.isEmpty)
        self.id = id
        self.uri = uri
        self.servers = servers
        self.configuration = configuration
        self.serverCursor = firstServer % servers.count
    }

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

    public var exclusiveUntil: Instant? { commitTime.map { $0 + configuration.exclusivityWindow } }

    public var pendingCount: Int { pending.count }

    /// Whether a majority has heard, on a put or heartbeat that succeeded, which entry is
    /// committed. Until then readers cannot see the last acknowledged entries: a writer that
    /// stops should wait for this (members learn commits only from the writer; docs/protocol.md,
    /// "PutEntry").
    public var membersKnowCommitted: Bool { toldCommitted >= committed.id }

    public var nextWakeup: Instant? {
        // A minimum does not depend on the order the dictionary yields its values.
        let candidates = [heartbeatDue, retryWakeAt, outstanding.values.lazy.map(\.deadline).min()]
        return candidates.compactMap { $0 }.min()
    }
}
