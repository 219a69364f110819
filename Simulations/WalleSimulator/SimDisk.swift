import WalleEnvironment

/// What a disk holds: per stream, metadata and the live and backfill tables.
struct DiskImage {
    struct StreamImage {
        var metadata: StreamMetadata
        var live: [EntryID: Entry] = [:]
        var backfill: [EntryID: Entry] = [:]

        /// Live wins over backfill ([8.6]).
        func entry(_ id: EntryID) -> Entry? { live[id] ?? backfill[id] }

        /// What a reader may be served: nothing inside the gap, where a gap commit's kept
        /// suffix waits unverified, and nothing below the first entry.
        func servedEntry(_ id: EntryID) -> Entry? {
            metadata.gapStart <= id && id < metadata.gapEnd || id < metadata.firstEntryID ? nil : entry(id)
        }
    }

    var streams: [StreamURI: StreamImage] = [:]

    mutating func apply(_ operations: [DiskOperation]) {
        for operation in operations {
            switch operation {
            case .createStream(let uri, let metadata):
                streams[uri] = StreamImage(metadata: metadata, live: [0: .zero])
            case .putEntry(let uri, .live, let entry):
                streams[uri]!.live[entry.id] = entry
            case .putEntry(let uri, .backfill, let entry):
                streams[uri]!.backfill[entry.id] = entry
            case .deleteLiveEntries(let uri, let from):
                // Every id >= from, even above a hole (a gap commit leaves one): the contract.
                streams[uri]!.live = streams[uri]!.live.filter { $0.key < from }
            case .deleteEntries(let uri, let below):
                streams[uri]!.live = streams[uri]!.live.filter { $0.key >= below }
                streams[uri]!.backfill = streams[uri]!.backfill.filter { $0.key >= below }
            case .setMetadata(let uri, let metadata):
                streams[uri]!.metadata = metadata
            case .dropStream(let uri):
                streams.removeValue(forKey: uri)
            }
        }
    }
}

/// The simulated disk: writes are visible at once but durable only when a later sync
/// completes; syncs complete in order after a latency. Keeps the durable image apart from the
/// current one so a crash can keep only what was synced.
public final class SimDisk: Disk {
    /// Where completions are scheduled: the run's agenda, or a test's host for the disk contract.
    unowned let scheduler: any SimScheduler
    let node: NodeID
    private var random: SimRandom
    let profile: DiskProfile
    /// What reads see: every write applied.
    private(set) var current = DiskImage()
    /// What survives a crash: writes covered by a completed sync.
    private(set) var durable = DiskImage()
    private var unsynced: [[DiskOperation]] = []
    private var submittedCount: UInt64 = 0
    private var durableCount: UInt64 = 0
    private var lastSyncDone: Int64 = 0
    /// Every (stream, id, checksum) that has ever been durable here, for the
    /// acknowledged-durability oracle.
    private(set) var everDurable: Set<DurableEntryKey> = []
    var incarnation: UInt64 = 0
    /// Asked at every sync: the true time it may not complete before (a targeted stall).
    var syncStall: ((SimDisk) -> Int64?)?

    init(scheduler: any SimScheduler, node: NodeID, random: SimRandom, profile: DiskProfile) {
        self.scheduler = scheduler
        self.node = node
        self.random = random
        self.profile = profile
    }

    public func submit(_ request: DiskRequest) {
        switch request {
        case .write(let operations):
            current.apply(operations)
            unsynced.append(operations)
            submittedCount += 1
        case .sync(let token):
            if let until = syncStall?(self) { stall(until: until) }
            let latency = random.int(in: profile.syncLatencyMin.nanoseconds...profile.syncLatencyMax.nanoseconds)
            let done = max(lastSyncDone, scheduler.trueNow + latency)
            lastSyncDone = done
            scheduler.schedule(
                at: done, .diskSynced(node, token: token, upTo: submittedCount, incarnation: incarnation))
        case .read(let token, let uri, let range, let countMax):
            let entries = read(uri, range: range, countMax: countMax)
            let latency = random.int(in: profile.readLatencyMin.nanoseconds...profile.readLatencyMax.nanoseconds)
            scheduler.schedule(
                at: scheduler.trueNow + latency, .diskRead(node, token: token, entries, incarnation: incarnation))
        }
    }

    /// Syncs do not complete before `until` (an fsync stall).
    func stall(until: Int64) {
        lastSyncDone = max(lastSyncDone, until)
    }

    /// The process died: only what was synced survives, plus (when `keep` says so) a prefix of
    /// the unsynced writes in submission order, as a log-structured engine would keep.
    /// Returns how many unsynced transactions were kept.
    func crash(keep: Int) -> Int {
        let kept = min(keep, unsynced.count)
        for operations in unsynced.prefix(kept) {
            durable.apply(operations)
            for case .putEntry(let uri, _, let entry) in operations {
                everDurable.insert(DurableEntryKey(uri: uri, id: entry.id, checksum: entry.checksum))
            }
        }
        unsynced.removeAll()
        current = durable
        durableCount = submittedCount
        incarnation += 1
        return kept
    }

    var unsyncedCount: Int { unsynced.count }

    /// A sync finished: writes up to `upTo` become durable.
    func syncCompleted(upTo: UInt64) {
        while durableCount < upTo && !unsynced.isEmpty {
            let operations = unsynced.removeFirst()
            durable.apply(operations)
            durableCount += 1
            for case .putEntry(let uri, _, let entry) in operations {
                everDurable.insert(DurableEntryKey(uri: uri, id: entry.id, checksum: entry.checksum))
            }
        }
    }

    public func recover() throws(WalleError) -> RecoveredState {
        var streams: [RecoveredStream] = []
        for uri in durable.streams.keys.sorted() {
            let image = durable.streams[uri]!
            var window: [Entry] = []
            var id = image.metadata.committedID
            while let entry = image.live[id] {
                window.append(entry)
                id += 1
            }
            streams.append(RecoveredStream(uri: uri, metadata: image.metadata, window: window))
        }
        return RecoveredState(streams: streams)
    }

    private func read(_ uri: StreamURI, range: Range<EntryID>, countMax: Int) -> [Entry] {
        guard let image = current.streams[uri] else { return [] }
        let end = min(range.upperBound, range.lowerBound + UInt64(countMax))
        var entries: [Entry] = []
        for id in range.lowerBound..<end {
            if let entry = image.entry(id) { entries.append(entry) }
        }
        return entries
    }
}

struct DurableEntryKey: Hashable {
    var uri: StreamURI
    var id: EntryID
    var checksum: UInt64
}
