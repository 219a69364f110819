import Foundation
import WiredTigerShim

/// What one compaction of a trimmed table did, for the node's log and for tests.
public struct CompactionReport: Sendable, Equatable {
    /// The WiredTiger table, `table:live-orders`.
    public let table: String
    /// The table file's size when the compaction started and when it ended.
    public let bytesBefore: Int
    public let bytesAfter: Int
    /// 1 for the first try.
    public let attempt: Int
    /// WiredTiger's reason when the checkpoint or the compaction failed.
    public let failure: String?
    /// A failed compaction that is tried again after `CompactThread.retryDelay`.
    public let willRetry: Bool
}

/// Gives a trimmed table's space back to the file system. A range truncate frees pages that
/// later writes reuse, but the file keeps its size; compaction rewrites the blocks at the end of
/// the file into the freed space and shortens it. It runs here, on its own session, after the
/// trim's transaction commits, so the event loop never waits for it. A trim deletes in steps
/// (one write each), so a table waits `settleDelay` after its last step before it is compacted:
/// one checkpoint and compaction per trim, not one per step. WiredTiger refuses a compaction
/// with EBUSY while a checkpoint holds the table or eviction is under pressure, so a failed one
/// is tried again, up to `attemptCountMax` times; after that the next trim compacts again.
final class CompactThread: @unchecked Sendable {
    private let session: OpaquePointer
    /// The database directory, where a table `table:NAME` lives in the file `NAME.wt`.
    private let directory: String
    private let report: @Sendable (CompactionReport) -> Void
    private let condition = NSCondition()
    /// Tables waiting, each once, with when each is due and the attempts made. Bounded by
    /// `queuedMax`: two tables per stream, and a trim that finds the queue full leaves its table
    /// to the next trim.
    private var queued: [(table: String, due: Date, attempts: Int)] = []
    static let queuedMax = 256
    /// A table is compacted this long after its last trim step.
    private let settleDelay: TimeInterval
    /// Between a failed compaction and its next try: long enough for a checkpoint to end.
    static let retryDelay: TimeInterval = 5
    /// Tries per trim; with `retryDelay`, a table is given up on after about 20 s of refusals.
    static let attemptCountMax = 5
    private var stopping = false
    /// The table being compacted now.
    private var current: String?
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    /// Compactions that ended (succeeded or gave up), for tests and metrics.
    private(set) var compactedCount = 0

    init(
        session: OpaquePointer, directory: String, settleDelay: TimeInterval = 1,
        report: @escaping @Sendable (CompactionReport) -> Void
    ) {
        self.session = session
        self.directory = directory
        self.settleDelay = settleDelay
        self.report = report
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "walle-compact"
        self.thread = thread
        thread.start()
    }

    /// Queues `table` (again): a trim step restarts its settle delay and its attempts.
    func compact(_ table: String) {
        condition.lock()
        let due = Date(timeIntervalSinceNow: settleDelay)
        if let index = queued.firstIndex(where: { $0.table == table }) {
            queued[index].due = due
            queued[index].attempts = 0
        } else if queued.count < Self.queuedMax {
            queued.append((table, due, 0))
        }
        condition.broadcast()
        condition.unlock()
    }

    /// Takes `tables` off the queue and waits for a compaction of one of them to end: a drop
    /// of a table that is being compacted fails with EBUSY.
    func forget(_ tables: [String]) {
        condition.lock()
        queued.removeAll { tables.contains($0.table) }
        while let current, tables.contains(current) { condition.wait() }
        condition.unlock()
    }

    /// Compactions done so far.
    var compacted: Int {
        condition.lock()
        defer { condition.unlock() }
        return compactedCount
    }

    /// Ends the thread after the compaction under way; the tables still queued wait for the
    /// next trim.
    func stop() {
        guard thread != nil else { return }
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        finished.wait()
        thread = nil
    }

    private func run() {
        while let (table, attempts) = next() {
            let outcome = compactOnce(table, attempt: attempts + 1)
            condition.lock()
            current = nil
            if outcome.willRetry, queued.count < Self.queuedMax, !queued.contains(where: { $0.table == table }) {
                queued.append((table, Date(timeIntervalSinceNow: Self.retryDelay), attempts + 1))
            } else {
                compactedCount += 1
            }
            condition.broadcast()
            condition.unlock()
            report(outcome)
        }
        _ = walle_wt_session_close(session)
        finished.signal()
    }

    /// The next due table and the attempts made on it, waiting until one is due; nil once
    /// stopping. Marks it current.
    private func next() -> (String, Int)? {
        condition.lock()
        defer { condition.unlock() }
        while !stopping {
            guard let index = queued.indices.min(by: { queued[$0].due < queued[$1].due }) else {
                condition.wait()
                continue
            }
            guard queued[index].due <= Date() else {
                _ = condition.wait(until: queued[index].due)
                continue
            }
            let entry = queued.remove(at: index)
            current = entry.table
            return (entry.table, entry.attempts)
        }
        return nil
    }

    private func compactOnce(_ table: String, attempt: Int) -> CompactionReport {
        let before = fileSize(table)
        // The truncate's pages are freed by a checkpoint; compaction then moves the blocks
        // at the end of the file into them, and the checkpoint after it shortens the file
        // now instead of at the next periodic one (up to 60 s later).
        var status = walle_wt_checkpoint(session)
        if status == 0 { status = walle_wt_compact(session, table) }
        if status == 0 { status = walle_wt_checkpoint(session) }
        let failure = status == 0 ? nil : String(cString: walle_wt_strerror(status))
        return CompactionReport(
            table: table, bytesBefore: before, bytesAfter: fileSize(table), attempt: attempt, failure: failure,
            willRetry: failure != nil && attempt < Self.attemptCountMax)
    }

    private func fileSize(_ table: String) -> Int {
        let path = directory + "/" + table.dropFirst("table:".count) + ".wt"
        return ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }
}
