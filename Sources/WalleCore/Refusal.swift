import WalleEnvironment

/// The bound that refused a request for load or time, named by its configuration field. The
/// answer itself is a retryable typed error; the core also emits `Effect.refused`, so a node
/// counts refusals by bound (the simulator per seed, a sweep per limit), never by parsing
/// messages.
public enum Refusal: String, CaseIterable, Sendable, Comparable {
    /// A put would leave less than a quarter of the call table (`putCallsMax`).
    case putCalls = "putCallsMax"
    /// The call table is full (`callsInFlightMax`).
    case calls = "callsInFlightMax"
    /// One peer holds its share of the call table unanswered (`callsPerPeerMax`).
    case callsPerPeer = "callsPerPeerMax"
    case newWriterWaits = "newWriterWaitsMax"
    case pollWaiters = "pollWaitersMax"
    case diskReads = "diskReadsMax"
    case syncWaiters = "syncWaitersMax"
    /// The uncommitted window is full ([LOG-2]).
    case uncommittedEntries = "uncommittedEntriesMax"
    case uncommittedBytes = "uncommittedBytesMax"
    case queuedPuts = "queuedPutsMax"
    /// An older copy of a resent queued put gave its place to the newest.
    case queuedPutRoutes = "queuedPutRoutesMax"
    /// A queued put's predecessor did not arrive in time.
    case queuedPutTimeout = "queuedPutTimeout"
    /// A server-to-server call went unanswered.
    case callTimeout = "callTimeout"

    /// A deadline ran out, rather than a table or queue being full.
    public var isTimeout: Bool { self == .queuedPutTimeout || self == .callTimeout }

    public static func < (lhs: Refusal, rhs: Refusal) -> Bool { lhs.rawValue < rhs.rawValue }
}
