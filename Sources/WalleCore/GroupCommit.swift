import WalleEnvironment

/// Group commit: acknowledgements wait for a sync that covers their write, and one sync
/// covers every write submitted before it ([DUR-2]). At most one sync is in flight; waiters
/// that arrive meanwhile share the next one.
///
/// Invariant: waiters are in non-decreasing write-sequence order, so they are released from
/// the front.
struct GroupCommit {
    /// What to do once a write is durable.
    enum Continuation {
        case reply(Route, Reply)
        /// NewWriter (a key of the core's `newWriterWaits`): answer at its `until` (after the
        /// previous lease) once the writer id is synced, OK only if its writer is still the one
        /// installed then.
        case newWriterAnswer(UInt64)
        /// Keep the backfill going once its progress is durable.
        case resumeBackfill(StreamURI)
    }

    private(set) var writeSequence: UInt64 = 0
    private(set) var syncedSequence: UInt64 = 0
    private var syncInFlight: (token: UInt64, upTo: UInt64)?
    private var nextToken: UInt64 = 0
    private var waiters: [(sequence: UInt64, continuation: Continuation)] = []
    private var waitersHead = 0

    var waiterCount: Int { waiters.count - waitersHead }
    /// Every write submitted so far is durable (this event's writes are not submitted yet).
    var everythingSynced: Bool { syncedSequence >= writeSequence }
    /// Slots held, released or not (for the bound check): at most `storedCountMax`.
    var storedCount: Int { waiters.count }
    /// Released slots kept before the array is compacted. Compacting when at least this many
    /// and at least half are released costs O(1) per waiter amortized, and keeps the released
    /// slots at most max(this, the live ones).
    static let releasedKeptMax = 1024
    var storedCountMax: Int { 2 * waiterCount + Self.releasedKeptMax }

    /// Called for every write transaction submitted to the disk.
    mutating func recordWrite() { writeSequence += 1 }

    /// Waits for everything written so far. Returns a sync request to submit, if one is needed
    /// now, or `nil` when the continuation can run at once or a sync is already on its way.
    mutating func await(_ continuation: Continuation) -> (run: Continuation?, sync: DiskRequest?) {
        if syncedSequence >= writeSequence { return (continuation, nil) }
        precondition(waiters.last.map { $0.sequence <= writeSequence } ?? true)
        waiters.append((writeSequence, continuation))
        return (nil, startSyncIfIdle())
    }

    /// A sync finished: returns the continuations it released and the next sync, if any.
    mutating func synced(token: UInt64) -> (released: [Continuation], sync: DiskRequest?) {
        guard let inFlight = syncInFlight, inFlight.token == token else { return ([], nil) }
        syncInFlight = nil
        syncedSequence = max(syncedSequence, inFlight.upTo)
        var released: [Continuation] = []
        while waitersHead < waiters.count, waiters[waitersHead].sequence <= syncedSequence {
            released.append(waiters[waitersHead].continuation)
            waitersHead += 1
        }
        // Released waiters leave the array, not only the head index: under steady load a
        // sync is always in flight and the array is never empty, so clearing only when empty
        // let it grow with every put ever acknowledged.
        if waitersHead == waiters.count {
            waiters.removeAll(keepingCapacity: true)
            waitersHead = 0
        } else if waitersHead >= Self.releasedKeptMax && waitersHead * 2 >= waiters.count {
            waiters.removeFirst(waitersHead)
            waitersHead = 0
        }
        return (released, waiterCount > 0 ? startSyncIfIdle() : nil)
    }

    private mutating func startSyncIfIdle() -> DiskRequest? {
        guard syncInFlight == nil else { return nil }
        nextToken += 1
        syncInFlight = (nextToken, writeSequence)
        return .sync(token: nextToken)
    }
}
