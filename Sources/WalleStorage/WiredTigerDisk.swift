import Foundation
import Metrics
public import WalleEnvironment
import WiredTigerShim

/// The `Disk` interface on WiredTiger (docs/operating.md, "Data directory").
///
/// Layout: one metadata table (`table:walle-metadata`, stream URI → `StorageCodec` metadata)
/// and per stream a live and a backfill table (`table:live-<uri>`, `table:backfill-<uri>`,
/// with `/` written as `-`), keyed by entry id. Each `write` request is one transaction.
/// Commits do not sync; a `sync` request goes to the one sync thread, which flushes
/// WiredTiger's log to the device once for every request waiting (group commit) and then
/// completes them all. Reads run at once on the caller's thread.
///
/// Threading: `submit` and `recover` are called from the node's event loop only. Completions
/// go to `deliver`, from the loop's thread (reads) or the sync thread (syncs); `deliver` must
/// hop to the event loop and never call the node back synchronously.
public final class WiredTigerDisk: Disk, @unchecked Sendable {
    public typealias Deliver = @Sendable (DiskCompletion) -> Void

    private let directory: String
    private var connection: OpaquePointer?
    /// The event loop's session: writes, reads, recovery.
    private var session: OpaquePointer?
    private var cursors: [String: OpaquePointer] = [:]
    private let syncer: SyncThread
    private let compactor: CompactThread
    private let deliver: Deliver
    /// A write or sync failed: nothing after it may be acknowledged, so the node must stop.
    private let fatal: @Sendable (WalleError) -> Void

    static let metadataTable = "table:walle-metadata"
    /// What every WiredTiger database directory holds: the version file, the turtle file
    /// (where the metadata starts) and the metadata file.
    static let databaseFiles = ["WiredTiger", "WiredTiger.turtle", "WiredTiger.wt"]

    /// Opens (or creates) the database in `directory`, which must exist. Throws a typed error
    /// naming the directory when it is missing, in use by another process, or unreadable.
    /// `compacted` hears of each compaction of a trimmed table, on the compaction thread.
    public init(
        directory: String, cacheMegabytes: Int = 256, deliver: @escaping Deliver,
        fatal: @escaping @Sendable (WalleError) -> Void,
        compacted: @escaping @Sendable (CompactionReport) -> Void = { _ in }
    ) throws(WalleError) {
        self.directory = directory
        self.deliver = deliver
        self.fatal = fatal
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw WalleError(.notFound, "data directory \(directory) does not exist")
        }
        guard isDirectory.boolValue else {
            throw WalleError(.invalidArgument, "data directory \(directory) is not a directory")
        }
        // Only an empty directory becomes a new database. WiredTiger's `create` would otherwise
        // set aside files it does not recognise and start empty, hiding the loss of a
        // damaged database behind a server that looks new.
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        if !contents.isEmpty {
            let missing = Self.databaseFiles.filter { !contents.contains($0) }
            if missing.count == Self.databaseFiles.count {
                throw WalleError(
                    .invalidArgument, "data directory \(directory) is not empty and holds no WiredTiger database")
            }
            if !missing.isEmpty {
                throw WalleError(
                    .dataLoss, "data directory \(directory) is damaged: \(missing.joined(separator: ", ")) missing")
            }
        }
        // Checkpoints every 60 s bound recovery time and let WiredTiger archive old log files.
        let config = (contents.isEmpty ? "create," : "")
            + "log=(enabled=true,file_max=64MB),transaction_sync=(enabled=false),"
            + "cache_size=\(cacheMegabytes)MB,session_max=64,checkpoint=(wait=60)"
        var opened: OpaquePointer?
        let status = walle_wt_open(directory, config, &opened)
        guard status == 0, let opened else { throw Self.openError(directory, status) }
        connection = opened
        var loopSession: OpaquePointer?
        var syncSession: OpaquePointer?
        var compactSession: OpaquePointer?
        guard walle_wt_open_session(opened, &loopSession) == 0, let loopSession,
            walle_wt_open_session(opened, &syncSession) == 0, let syncSession,
            walle_wt_open_session(opened, &compactSession) == 0, let compactSession
        else {
            _ = walle_wt_close(opened)
            throw WalleError(.internal, "data directory \(directory): WiredTiger opened no session")
        }
        session = loopSession
        syncer = SyncThread(session: syncSession, deliver: deliver, fatal: fatal)
        compactor = CompactThread(session: compactSession, directory: directory, report: compacted)
        if let error = Self.check(
            walle_wt_create(loopSession, Self.metadataTable, "key_format=S,value_format=u"),
            "create the metadata table")
        {
            close()
            throw WalleError(error.code, "data directory \(directory): \(error.message)")
        }
        syncer.start()
        compactor.start()
    }

    /// Compactions of trimmed tables ended so far (they run in the background; a refused one
    /// counts once it is given up on).
    public var compactionsFinished: Int { compactor.compacted }

    deinit { close() }

    /// Stops the sync thread and closes WiredTiger (a clean shutdown: everything committed is
    /// durable afterwards). Safe to call twice.
    public func close() {
        guard let connection else { return }
        syncer.stop()
        compactor.stop()
        cursors.removeAll()
        _ = walle_wt_close(connection)
        self.connection = nil
        session = nil
    }

    static func openError(_ directory: String, _ status: Int32) -> WalleError {
        let reason = String(cString: walle_wt_strerror(status))
        if status == EBUSY {
            return WalleError(.unavailable, "data directory \(directory) is in use by another process (\(reason))")
        }
        return WalleError(
            .dataLoss, "data directory \(directory) cannot be opened by WiredTiger: \(reason) (error \(status))")
    }

    static func check(_ status: Int32, _ what: @autoclosure () -> String) -> WalleError? {
        guard status != 0 else { return nil }
        return WalleError(.internal, "WiredTiger could not \(what()): \(String(cString: walle_wt_strerror(status)))")
    }

    // MARK: Disk

    public func submit(_ request: DiskRequest) {
        precondition(connection != nil, "submit after close")
        switch request {
        case .write(let operations):
            if let error = write(operations) { fatal(error) }
        case .sync(let token):
            syncer.request(token)
        case .read(let token, let uri, let range, let countMax):
            do {
                deliver(.read(token: token, try read(uri, range: range, countMax: countMax)))
            } catch {
                fatal(error)
            }
        }
    }

    public func recover() throws(WalleError) -> RecoveredState {
        let metadata = try cursor(Self.metadataTable)
        defer { _ = walle_cursor_reset(metadata) }
        var streams: [RecoveredStream] = []
        var status = walle_cursor_next(metadata)
        while status == 0 {
            var name: UnsafePointer<CChar>?
            guard walle_cursor_get_name(metadata, &name) == 0, let name else {
                throw WalleError(.dataLoss, "data directory \(directory): unreadable metadata key")
            }
            let uri = try StreamURI(String(cString: name))
            let stream = try StorageCodec.decodeMetadata(uri, try bytesAtCursor(metadata))
            streams.append(RecoveredStream(
                uri: uri, metadata: stream, window: try window(uri, from: stream.committedID)))
            status = walle_cursor_next(metadata)
        }
        guard status == walle_wt_notfound else {
            throw Self.check(status, "scan the metadata table")!
        }
        return RecoveredState(streams: streams.sorted { $0.uri < $1.uri })
    }

    // MARK: Writes

    private func write(_ operations: [DiskOperation]) -> WalleError? {
        // Table creation is not transactional: it goes first. A re-created stream starts from
        // empty tables whatever an earlier drop left behind (WS-6).
        for case .createStream(let uri, _) in operations {
            if let error = recreateTables(uri) { return error }
        }
        guard let session else { return WalleError(.internal, "the disk is closed") }
        if let error = Self.check(walle_wt_begin(session), "begin a transaction") { return error }
        do {
            for operation in operations { try apply(operation) }
            syncer.countEntries(operations.reduce(0) { if case .putEntry = $1 { $0 + 1 } else { $0 } })
        } catch {
            _ = walle_wt_rollback(session)
            return error
        }
        if let error = Self.check(walle_wt_commit(session), "commit a transaction") { return error }
        // A trim's space goes back to the file system once its truncate is committed.
        for case .deleteEntries(let uri, _) in operations {
            for table in [DiskTable.live, .backfill] { compactor.compact(Self.tableName(uri, table)) }
        }
        return nil
    }

    private func apply(_ operation: DiskOperation) throws(WalleError) {
        switch operation {
        case .createStream(let uri, let metadata):
            try put(metadata, uri)
            try put(.zero, table: Self.tableName(uri, .live))
        case .putEntry(let uri, let table, let entry):
            try put(entry, table: Self.tableName(uri, table))
        case .deleteLiveEntries(let uri, let from):
            try deleteEntries(table: Self.tableName(uri, .live), from: from)
        case .deleteEntries(let uri, let below):
            guard let session else { throw WalleError(.internal, "the disk is closed") }
            for table in [DiskTable.live, .backfill] {
                let name = Self.tableName(uri, table)
                let status = walle_wt_truncate_below(session, name, below)
                if let error = Self.check(status, "trim \(name) below \(below)") { throw error }
            }
        case .setMetadata(let uri, let metadata):
            try put(metadata, uri)
        case .dropStream(let uri):
            // The metadata row goes in the transaction; without it the tables are never read
            // again, and a later createStream empties them first.
            let metadata = try cursor(Self.metadataTable)
            let status = uri.rawValue.withCString { walle_cursor_remove_name(metadata, $0) }
            guard status == 0 || status == walle_wt_notfound else { throw Self.check(status, "drop \(uri)")! }
        }
    }

    private func put(_ metadata: StreamMetadata, _ uri: StreamURI) throws(WalleError) {
        let table = try cursor(Self.metadataTable)
        let bytes = StorageCodec.encode(metadata)
        let status = uri.rawValue.withCString { name in
            bytes.withUnsafeBytes { walle_cursor_insert_name(table, name, $0.baseAddress, $0.count) }
        }
        if let error = Self.check(status, "write the metadata of \(uri)") { throw error }
    }

    private func put(_ entry: Entry, table name: String) throws(WalleError) {
        let table = try cursor(name)
        let bytes = StorageCodec.encode(entry)
        let status = bytes.withUnsafeBytes { walle_cursor_insert_id(table, entry.id, $0.baseAddress, $0.count) }
        if let error = Self.check(status, "write entry \(entry.id) to \(name)") { throw error }
    }

    /// Removes every key >= `from`. The ids are collected first (a live table's suffix above
    /// the committed entry is bounded by the uncommitted-entries limit), then removed by key.
    private func deleteEntries(table name: String, from: EntryID) throws(WalleError) {
        var ids: [EntryID] = []
        try visit(name, from: from, below: .max) { _, id in ids.append(id) }
        let table = try cursor(name)
        for id in ids {
            if let error = Self.check(walle_cursor_remove_id(table, id), "delete entry \(id) from \(name)") {
                throw error
            }
        }
    }

    private func recreateTables(_ uri: StreamURI) -> WalleError? {
        guard let session else { return WalleError(.internal, "the disk is closed") }
        compactor.forget([DiskTable.live, .backfill].map { Self.tableName(uri, $0) })
        for table in [DiskTable.live, .backfill] {
            let name = Self.tableName(uri, table)
            if let cursor = cursors.removeValue(forKey: name) { _ = walle_cursor_close(cursor) }
            let dropped = drop(name, session)
            if dropped != 0 && dropped != ENOENT, let error = Self.check(dropped, "empty \(name)") { return error }
            if let error = Self.check(walle_wt_create(session, name, "key_format=Q,value_format=u"), "create \(name)") {
                return error
            }
        }
        return nil
    }

    /// Tries of a drop that WiredTiger refuses with EBUSY, `dropRetryDelay` apart: about a
    /// second in all, after a checkpoint of our own has waited for the one under way.
    static let dropAttemptCountMax = 50
    static let dropRetryDelay: TimeInterval = 0.02

    /// Drops `name`. A drop needs the table to itself, and a checkpoint (the periodic one or the
    /// compaction thread's) that holds it makes WiredTiger answer EBUSY: a failed write stops
    /// the node, so a refused drop waits for the checkpoint and is tried again.
    private func drop(_ name: String, _ session: OpaquePointer) -> Int32 {
        var status = walle_wt_drop(session, name)
        guard status == EBUSY else { return status }
        _ = walle_wt_checkpoint(session)
        for _ in 1..<Self.dropAttemptCountMax {
            status = walle_wt_drop(session, name)
            guard status == EBUSY else { return status }
            Thread.sleep(forTimeInterval: Self.dropRetryDelay)
        }
        return status
    }

    // MARK: Reads

    /// Entries with ids in `[range.lowerBound, min(range.upperBound, lowerBound + countMax))`,
    /// live winning over backfill, ascending, with holes where neither table has one.
    private func read(_ uri: StreamURI, range: Range<EntryID>, countMax: Int) throws(WalleError) -> [Entry] {
        let end = min(range.upperBound, range.lowerBound + UInt64(max(0, countMax)))
        guard range.lowerBound < end else { return [] }
        var found: [EntryID: Entry] = [:]
        for table in [DiskTable.backfill, .live] {
            for entry in try scan(Self.tableName(uri, table), from: range.lowerBound, below: end) {
                found[entry.id] = entry
            }
        }
        return found.keys.sorted().map { found[$0]! }
    }

    private func window(_ uri: StreamURI, from committed: EntryID) throws(WalleError) -> [Entry] {
        var window: [Entry] = []
        for entry in try scan(Self.tableName(uri, .live), from: committed, below: .max) {
            guard entry.id == committed + UInt64(window.count) else { break }
            window.append(entry)
        }
        guard window.first?.id == committed else {
            throw WalleError(
                .dataLoss, "data directory \(directory): committed entry \(committed) of \(uri) is missing")
        }
        return window
    }

    private func scan(_ name: String, from start: EntryID, below end: EntryID) throws(WalleError) -> [Entry] {
        var entries: [Entry] = []
        try visit(name, from: start, below: end) { table, id throws(WalleError) in
            entries.append(try StorageCodec.decodeEntry(id: id, try bytesAtCursor(table)))
        }
        return entries
    }

    /// Calls `body` with the cursor at each key in `[start, end)`, ascending, then resets it.
    private func visit(
        _ name: String, from start: EntryID, below end: EntryID,
        _ body: (OpaquePointer, EntryID) throws(WalleError) -> Void
    ) throws(WalleError) {
        let table = try cursor(name)
        defer { _ = walle_cursor_reset(table) }
        walle_cursor_set_id(table, start)
        var status = walle_cursor_seek_at_or_after(table)
        while status == 0 {
            var id: UInt64 = 0
            _ = walle_cursor_get_id(table, &id)
            guard id < end else { return }
            try body(table, id)
            status = walle_cursor_next(table)
        }
        guard status == walle_wt_notfound else { throw Self.check(status, "read \(name)")! }
    }

    private func bytesAtCursor(_ cursor: OpaquePointer) throws(WalleError) -> [UInt8] {
        var data: UnsafeRawPointer?
        var size = 0
        if let error = Self.check(walle_cursor_get_bytes(cursor, &data, &size), "read a value") { throw error }
        guard let data else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: size))
    }

    // MARK: Tables and cursors

    static func tableName(_ uri: StreamURI, _ table: DiskTable) -> String {
        // URIs hold only a-z 0-9 _ /, so writing / as - keeps names distinct.
        let name = String(uri.rawValue.map { $0 == "/" ? "-" : $0 })
        return table == .live ? "table:live\(name)" : "table:backfill\(name)"
    }

    /// A cached cursor on `name`; a stream's tables that do not exist yet (a read racing its
    /// creation never happens: the core creates a stream before touching it) are an error.
    private func cursor(_ name: String) throws(WalleError) -> OpaquePointer {
        if let cursor = cursors[name] { return cursor }
        guard let session else { throw WalleError(.internal, "the disk is closed") }
        var opened: OpaquePointer?
        let status = walle_wt_open_cursor(session, name, &opened)
        guard status == 0, let opened else { throw Self.check(status == 0 ? -1 : status, "open \(name)")! }
        cursors[name] = opened
        return opened
    }
}

/// The one thread that syncs: it takes every sync request waiting, flushes the log to the
/// device once, and completes them all.
final class SyncThread: @unchecked Sendable {
    private let session: OpaquePointer
    private let deliver: WiredTigerDisk.Deliver
    private let fatal: @Sendable (WalleError) -> Void
    private let condition = NSCondition()
    private var waiting: [UInt64] = []
    /// Entries written since the last flush began (the ones it makes durable).
    private var entriesUnsynced = 0
    private var stopping = false
    private let flushDuration = Metrics.Timer(label: "walle_fsync_duration_seconds")
    private let entriesPerSync = Recorder(label: "walle_sync_entries", aggregate: true)
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    init(
        session: OpaquePointer, deliver: @escaping WiredTigerDisk.Deliver,
        fatal: @escaping @Sendable (WalleError) -> Void
    ) {
        self.session = session
        self.deliver = deliver
        self.fatal = fatal
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "walle-sync"
        self.thread = thread
        thread.start()
    }

    func countEntries(_ count: Int) {
        guard count > 0 else { return }
        condition.lock()
        entriesUnsynced += count
        condition.unlock()
    }

    func request(_ token: UInt64) {
        condition.lock()
        waiting.append(token)
        condition.signal()
        condition.unlock()
    }

    /// Finishes the syncs already asked for, then ends the thread.
    func stop() {
        guard thread != nil else { return }
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        finished.wait()
        thread = nil
    }

    private func run() {
        while true {
            condition.lock()
            while waiting.isEmpty && !stopping { condition.wait() }
            let tokens = waiting
            waiting.removeAll()
            let entries = entriesUnsynced
            entriesUnsynced = 0
            let done = stopping && tokens.isEmpty
            condition.unlock()
            if done { break }
            let started = DispatchTime.now().uptimeNanoseconds
            if let error = WiredTigerDisk.check(walle_wt_log_flush_sync(session), "sync the log") {
                fatal(error)
                break
            }
            flushDuration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
            entriesPerSync.record(entries)
            for token in tokens { deliver(.synced(token: token)) }
        }
        _ = walle_wt_session_close(session)
        finished.signal()
    }
}
