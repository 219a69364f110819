public import WalleEnvironment

/// The time model every lease depends on (docs/protocol.md, "Lease margin").
///
/// Every node's monotonic clock advances at a rate between `rateMin` and `rateMax` of true
/// time, and the rate may change at any moment. Rates are kept as exact fractions so the margin
/// below is computed without rounding surprises.
public enum TimeModel {
    public static let rateMinNumerator: Int64 = 3
    public static let rateMinDenominator: Int64 = 4
    public static let rateMaxNumerator: Int64 = 5
    public static let rateMaxDenominator: Int64 = 4

    /// How long after sending its last successful put or heartbeat a writer may treat itself as
    /// exclusive: `lease · rateMin / rateMax` = 0.6 · lease.
    ///
    /// Proof sketch (docs/protocol.md): a member renews on receipt, after the send, and keeps
    /// the lease for `lease` of its own time, which is at least `lease / rateMax` of true time.
    /// The writer's own `window` of local time lasts at most `window / rateMin` of true time.
    /// `window / rateMin <= lease / rateMax` gives `window <= lease · rateMin / rateMax`.
    /// Upstream's 0.75 assumed a bound on the ratio of two clocks, not on each clock, and is
    /// unsafe under this model.
    public static func exclusivityWindow(lease: Duration) -> Duration {
        let numerator = rateMinNumerator * rateMaxDenominator
        let denominator = rateMinDenominator * rateMaxNumerator
        return .nanoseconds(lease.nanoseconds / denominator * numerator)
    }
}

/// A deliberate bug, for proving that the simulator finds it (docs/simulation.md).
///
/// Only debug builds consult these: `plantedBugIsActive` is `false` in release builds, so a
/// production node cannot run with one.
package enum PlantedBug: String, CaseIterable, Sendable {
    /// A member acknowledges a put before the write is synced.
    case acknowledgeBeforeSync
    /// NewWriter answers without waiting out the previous writer's lease.
    case skipLeaseWait
    /// The writer uses upstream's 0.75 · lease window, too long for the ±25% rate model.
    case leaseMarginTooLarge
    /// A commit marker commits the local entry without comparing checksums (WS-1 and WS-11).
    case commitWithoutChecksum
    /// A member accepts the zero writer id on a put (WS-9).
    case acceptZeroWriter
    /// A member acts on a commit marker that differs from its own entry of the same writer
    /// (drops the entry and fetches the forged one) instead of refusing it.
    case acceptForgedMarker
    /// The boundary lets commit markers above 2^62 through: the overflow the first fuzz script
    /// found (a marker near 2^64 reached `marker.id + 1`). For proving the fuzzer finds it.
    case uncheckedMarkerBound
    /// An answered call keeps its timeout in the timer queue until it fires (the lazy
    /// cancellation this project had): the queue then grows with the call rate, not with the
    /// calls in flight. For proving the bound test catches it.
    case lazyCallTimeouts
}

/// Limits and timings of a server. Every queue has its bound here.
public struct ServerConfiguration: Sendable {
    /// Smallest lease a claim may ask for ([CLAIM-0]).
    public var leaseMin: Duration = .milliseconds(100)
    /// Largest lease a claim may ask for; upstream has none (WS-8), which can freeze failover.
    public var leaseMax: Duration = .seconds(60)
    /// [LOG-2]: a put of an uncommitted entry is refused once T − C reaches this.
    public var uncommittedEntriesMax: UInt64 = 4096
    /// Bytes of uncommitted data a stream may hold; bounds memory next to the count.
    public var uncommittedBytesMax = 64 << 20
    /// Out-of-order puts a stream may hold while it waits for their predecessors.
    public var queuedPutsMax = 4096
    /// Requests waiting on one queued put. A writer sends a put again after each request
    /// timeout (2 s) while the put waits `queuedPutTimeout` (3 s) after its newest copy, so two copies are
    /// usual; past the bound the oldest copy, which nobody waits for, is answered Unavailable.
    public var queuedPutRoutesMax = 4
    /// How long a queued put waits for its predecessor before it fails ([PIPE-5]). Longer than
    /// a writer's resend cycle (`WriterConfiguration.requestTimeout`, 2 s, plus its retry
    /// delay): a member that missed one entry holds the entries behind it until the writer
    /// sends the missing one again, then applies them all. Upstream's 1 s let them expire
    /// first, so a lagging member in a 3-of-4 list with one member down caught up about one
    /// entry per cycle and convergence took up to a minute (seed 1396; 200 10-second seeds:
    /// slowest 48 s with 1 s, 16 s with 3 s).
    public var queuedPutTimeout: Duration = .seconds(3)
    /// Wait before fetching a committed entry this member has not received ([PIPE-6]).
    public var fastForwardDelay: Duration = .milliseconds(250)
    /// A trim deletes in steps of at most this many ids, one write each: a WiredTiger range
    /// truncate inside a transaction keeps a tombstone per key until it commits, so one step
    /// holds at most this many, whatever the trim's size.
    public var trimStepEntriesMax: UInt64 = 4096
    /// The pause between two delete steps of a trim, so the event loop serves puts between them.
    public var trimStepDelay: Duration = .milliseconds(10)
    /// Timeout of one server-to-server call.
    public var callTimeout: Duration = .seconds(5)
    /// A NewWriter without an answer is sent again this often. Safe because a repeated
    /// NewWriter waits for the same lease end as the first (WS-16).
    public var newWriterRetryInterval: Duration = .seconds(1)
    /// A claim still collecting NewWriter answers after the longest lease plus this gives up.
    public var newWriterCallSlack: Duration = .seconds(5)
    /// NewWriter answers held at once while previous leases run out, over all streams. One
    /// claim sends NewWriter again every `newWriterRetryInterval` for up to `leaseMax` plus
    /// `newWriterCallSlack`, so it may hold 65 of these at one member; 4096 lets 63 claims
    /// wait out the longest lease together. Past it, ResourceExhausted (the claimer retries).
    public var newWriterWaitsMax = 4096
    /// Server-to-server calls in flight at once ([HDR-1] on the sending side).
    public var callsInFlightMax = 65_536

    /// The calls one peer may hold: half. A dead or stalled member holds every call sent to it
    /// for `callTimeout`; without this, under load, one dead member of one busy stream filled
    /// the table and every other stream's puts were refused (seed 25 with callsInFlightMax 569:
    /// 440 calls waited on the dead member). A peer's calls beyond it fail at once, which a
    /// quorum counts like its silence. Healthy load spreads over at least two peers.
    public var callsPerPeerMax: Int { max(1, callsInFlightMax / 2) }
    /// The calls puts may hold: three quarters, so a quarter stays for claims, catch-up and
    /// status whatever the put load.
    public var putCallsMax: Int { callsInFlightMax - callsInFlightMax / 4 }
    /// The calls the put right after its writer's commit marker may hold: seven eighths. Every
    /// later put of its writer waits for it at the members, so it may use half of the reserve;
    /// the marker is the client's word, so a client that claims every put is "the oldest" still
    /// leaves an eighth of the table to claims, catch-up and status.
    public var oldestPutCallsMax: Int { callsInFlightMax - callsInFlightMax / 8 }
    /// Long polls held at once, over all streams.
    public var pollWaitersMax = 4096
    /// Answers held for a sync at once (group commit). An fsync stall holds one per put
    /// applied meanwhile, and a client that resends one put during the stall adds one per
    /// copy; past the bound the put is still applied, its answer is ResourceExhausted and the
    /// resend after the stall is acknowledged. 2^16 answers are a few MiB.
    public var syncWaitersMax = 65_536
    /// Disk reads in flight at once (reads of committed entries for clients, peers, backfill).
    /// A read holds at most one answer's worth (`readBatchBytesMax`) when it completes, so this
    /// bounds the memory reads can pin; past it, ResourceExhausted.
    public var diskReadsMax = 256
    /// How long PollStream and StreamEntries wait for a commit before OutOfRange.
    public var pollTimeout: Duration = .seconds(5)
    /// Entries in one StreamEntries or ReadEntries answer.
    public var readBatchCountMax = 512
    /// Entry bytes in one read answer (at least one entry is always sent): with 1 MiB entries
    /// the count bound alone would allow 512 MiB in one message, far over the wire's frame
    /// bound (docs/operating.md, "Wire format"). A ReadEntries answer between servers carries
    /// `backfillAnswerCountMin` entries even over this bound: at most 3 MiB.
    public var readBatchBytesMax = 16 << 20
    /// Entries fetched per backfill step (at least `ServerConfiguration.backfillAnswerCountMin`).
    public var backfillBatchCountMax = 512
    /// Fetch rounds for a pending commit marker before it is dropped: no peer has its entry
    /// committed, so it is forged or far ahead; the writer's next marker brings a true one.
    public var fastForwardRoundsMax = 8
    /// Timeout of one fast-forward or backfill fetch. A round waits for every peer it asked, so
    /// with `callTimeout` a dead peer made every round last 5 s, and a member lagging behind
    /// a 3-of-4 majority with one dead member caught up one entry per round (seed 143).
    public var catchUpCallTimeout: Duration = .seconds(1)
    /// Pause before a failed backfill or fast-forward is tried again.
    public var catchUpRetryDelay: Duration = .milliseconds(500)
    /// Claim rounds of committed-id alignment before giving up ([CLAIM-2]).
    public var claimAlignRoundsMax = 8
    /// The root stream whose entries are the cluster's topology, and the servers to ask for it
    /// at start (like upstream's root.pb). Nil: the topology is static (tests).
    public var topologySource: TopologySource?
    /// Where this server listens, as peers and clients should dial it. Set, the server asks the
    /// topology manager to list it until the topology does ([MEM-1]); the simulator leaves it
    /// nil (its network needs no addresses).
    public var advertisedAddress: ServerAddress?
    /// How long StreamStatus waits for each member: silent members are left out.
    public var statusCallTimeout: Duration = .seconds(1)
    /// Pause before asking another root member for the topology after a failure.
    public var topologyRetryDelay: Duration = .milliseconds(100)
    /// Whether the core emits `.note` effects describing its decisions (traces, tests).
    public var notesEnabled = false
    /// Emit a `.quorum` effect for every majority a put or claim phase reached, so an oracle
    /// can check which member lists are in use at once (invariant 12 in docs/simulation.md,
    /// WS-2).
    public var quorumRecordsEnabled = false
    /// Check after every event that every timer belongs to something live (O(streams) per
    /// event: the simulator and tests turn it on; `timerCountMax` is checked always).
    public var deepChecksEnabled = false
    package var plantedBugs: Set<PlantedBug> = []

    public init() {}

    /// The fewest entries a ReadEntries answer carries (when the member has them), whatever
    /// the read batch bounds: a backfill proves downwards from the top, the top proves the
    /// checksum of the entry below it, and that checksum proves the data of the entry below
    /// that. An answer of two entries proves no data, so with a count or byte bound that cut
    /// answers to two, a gap never closed (swarm-drawn limits, seed 8: every member of a
    /// stream kept a gap for the whole liveness phase).
    public static let backfillAnswerCountMin = 3

    /// The most deadlines a server holds: each belongs to something live and bounded here.
    /// A call has one timeout, a read waiter one deadline, a waiting NewWriter one answer
    /// time, a queued put one expiry; a stream has at most one fast-forward and one backfill
    /// retry; the topology watch has one poll and one round timeout, the registration one.
    public func timerCountMax(streamCount: Int) -> Int {
        callsInFlightMax + pollWaitersMax + newWriterWaitsMax + streamCount * (queuedPutsMax + 2) + 3
    }

    package func plantedBugIsActive(_ bug: PlantedBug) -> Bool {
        #if DEBUG
            return plantedBugs.contains(bug)
        #else
            return false
        #endif
    }
}

/// Where a server learns its cluster's topology (docs/protocol.md, "How servers learn it").
public struct TopologySource: Sendable {
    public var rootStream: StreamURI
    public var rootMembers: [NodeID]

    public init(rootStream: StreamURI, rootMembers: [NodeID]) {
        self.rootStream = rootStream
        self.rootMembers = rootMembers
    }
}

/// What a state machine asks its host to do. The host carries these out in order.
public enum Effect: Sendable {
    case send(Message, to: NodeID)
    case disk(DiskRequest)
    /// A human-readable account of a decision, for the trace (only when notes are enabled).
    case note(String)
    /// A majority accepted one round of requests (only when quorum records are enabled).
    case quorum(QuorumRecord)
    /// A bound refused a request for load or time (always emitted; nodes count them).
    case refused(Refusal)
    /// A put this node coordinated was answered: how long it took from its arrival, and
    /// whether a majority acknowledged it (always emitted; nodes keep a histogram).
    case putFinished(Duration, acknowledged: Bool)
    /// The topology's server table changed: reach each server at its address from now on.
    case servers([NodeID: ServerAddress])
}

/// One round of requests a majority of `members` accepted: a put, or one claim phase after
/// NewWriter. `streamVersion` is the version the requests carried.
public struct QuorumRecord: Sendable {
    public var stream: StreamURI
    public var streamVersion: UInt64
    public var members: [NodeID]
    /// When the round's requests went out, on the coordinator's monotonic clock.
    public var startedAt: Instant

    package init(stream: StreamURI, streamVersion: UInt64, members: [NodeID], startedAt: Instant) {
        self.stream = stream
        self.streamVersion = streamVersion
        self.members = members
        self.startedAt = startedAt
    }
}

/// Where an answer goes: the requesting node and its request id.
public struct Route: Hashable, Sendable, CustomStringConvertible {
    public var node: NodeID
    public var requestID: RequestID

    public init(node: NodeID, requestID: RequestID) {
        self.node = node
        self.requestID = requestID
    }

    public var description: String { "\(node)#\(requestID)" }
}

/// Both clock readings at the moment an event is handled. The core reads no clock itself.
public struct NodeTime: Sendable {
    public var monotonic: Instant
    public var wall: WallTime

    public init(monotonic: Instant, wall: WallTime) {
        self.monotonic = monotonic
        self.wall = wall
    }
}
