/// A node's two clocks, read separately (docs/protocol.md, "Clocks"): monotonic for every lease
/// and timeout, wall time only for writer ids.
public protocol Clock: AnyObject {
    var now: Instant { get }
    var wallNow: WallTime { get }
    /// Ask the host to call the node back at or after `instant` (one pending wake-up per node;
    /// a later request replaces the earlier one).
    func scheduleWakeup(at instant: Instant)
}

/// Sends messages. Deliveries come back to the receiving node as events; nothing is returned
/// here, and a message may be delayed, reordered or lost.
public protocol Network: AnyObject {
    func send(_ message: Message, from source: NodeID, to target: NodeID)
}

/// Durable storage at the level the protocol needs: streams, entries, metadata, transactions
/// and sync. Completions come back to the node as events (`DiskCompletion`).
///
/// Contract (every implementation follows it: the simulated disk now, WiredTiger next):
/// - Writes are applied in submission order and are visible to later reads at once.
/// - A `sync` completes only when every write submitted before it is durable.
/// - After a crash, the recovered state is a prefix (in submission order) of the writes, that
///   includes at least every write covered by a completed sync.
public protocol Disk: AnyObject {
    func submit(_ request: DiskRequest)
    /// The durable state, read when the node starts. Streams are sorted by URI.
    func recover() throws(WalleError) -> RecoveredState
}

public enum DiskTable: Hashable, Sendable {
    /// Entries that arrive through the live path: puts, claim re-stamps, gap commits.
    case live
    /// Entries fetched by the gap filler; kept apart so both tables are pure appends
    /// (docs/protocol.md, "Gap commit, fast-forward and backfill").
    case backfill
}

/// Everything a server keeps about a stream besides its entries (docs/protocol.md, "Committed
/// id, tail, window").
public struct StreamMetadata: Hashable, Sendable {
    public var topology: StreamTopology
    public var writerID: WriterID
    public var writerAddress: String
    public var leaseMilliseconds: Int64
    public var committedID: EntryID
    /// `[gapStart, gapEnd)` is not verified locally; equal means no gap (docs/protocol.md, "Gap
    /// commit, fast-forward and backfill"). The backfill works downwards: entry `gapEnd` is
    /// verified, and each fetched entry below it is checked against the one above, so
    /// `gapEnd` falls until it reaches `gapStart`.
    public var gapStart: EntryID
    public var gapEnd: EntryID
    /// Checksum of entry `gapStart − 1`: the lowest backfilled entry must chain onto it.
    public var gapPreviousChecksum: UInt64
    /// Checksum of entry `gapEnd`: fetched entries must lead exactly to it (WS-4).
    public var gapEndChecksum: UInt64
    /// Live entries in `[gapStart, gapKeptEnd]` include a gap commit's kept uncommitted
    /// suffix: unverified, never served to readers, overwritten by verified copies. One of
    /// them may be the last copy of an acknowledged entry, so they are not deleted (0: none).
    public var gapKeptEnd: EntryID
    /// The wait the last installed writer's NewWriter answer owed the writers before it, in
    /// milliseconds from the install: what a restart must wait out again, since it cannot
    /// know how much of it passed. Persisting it keeps a restarted member from making every
    /// claim wait `leaseMax` (issue 12). −1: unknown (metadata of format 1), wait `leaseMax`.
    public var pendingWaitMilliseconds: Int64
    /// The stream's first entry as the topology says, once this member learned it: nothing
    /// below it is served, fetched or kept (docs/protocol.md, "Trimming"). 0: not trimmed.
    public var firstEntryID: EntryID
    /// Every entry below this id is deleted from both tables: the background deletion of a
    /// trim has come this far (it works up to `min(firstEntryID, committedID)`).
    public var trimmedBelow: EntryID

    public init(topology: StreamTopology) {
        self.topology = topology
        self.writerID = .zero
        self.writerAddress = ""
        self.leaseMilliseconds = 0
        self.committedID = 0
        self.gapStart = 0
        self.gapEnd = 0
        self.gapPreviousChecksum = 0
        self.gapEndChecksum = 0
        self.gapKeptEnd = 0
        self.pendingWaitMilliseconds = 0
        self.firstEntryID = 0
        self.trimmedBelow = 0
    }

    public var hasGap: Bool { gapStart < gapEnd }
}

public enum DiskOperation: Sendable {
    /// Creates the stream's tables and writes its metadata and Entry0.
    case createStream(StreamURI, StreamMetadata)
    /// Inserts or overwrites one entry.
    case putEntry(StreamURI, DiskTable, Entry)
    /// Deletes every live entry with id >= the given id (drops a stale uncommitted suffix).
    case deleteLiveEntries(StreamURI, from: EntryID)
    /// Deletes every entry with id < the given id from both tables (a trim: WiredTiger
    /// truncates the range, and the space is reused).
    case deleteEntries(StreamURI, below: EntryID)
    case setMetadata(StreamURI, StreamMetadata)
    /// Forgets the stream: its tables and metadata go (this server left its member list).
    /// A later re-add starts from nothing instead of a stale history (closes WS-6).
    case dropStream(StreamURI)
}

public enum DiskRequest: Sendable {
    /// One transaction: applied atomically, durable once a later sync completes.
    case write([DiskOperation])
    /// Completes with `.synced(token)` once every earlier write is durable.
    case sync(token: UInt64)
    /// Reads up to `countMax` entries with ids in `range`, merged from both tables (live wins),
    /// in id order, possibly with holes. Completes with `.read(token, entries)`.
    case read(token: UInt64, StreamURI, range: Range<EntryID>, countMax: Int)
}

public enum DiskCompletion: Sendable {
    case synced(token: UInt64)
    case read(token: UInt64, [Entry])
}

public struct RecoveredStream: Sendable {
    public var uri: StreamURI
    public var metadata: StreamMetadata
    /// Live entries with id >= the committed id, ascending: the window [C..T].
    public var window: [Entry]

    public init(uri: StreamURI, metadata: StreamMetadata, window: [Entry]) {
        self.uri = uri
        self.metadata = metadata
        self.window = window
    }
}

public struct RecoveredState: Sendable {
    public var streams: [RecoveredStream]

    public init(streams: [RecoveredStream]) { self.streams = streams }
}
