import Foundation
import WiredTigerShim

/// Gives a trimmed table's space back to the file system. A range truncate frees pages that
/// later writes reuse, but the file keeps its size; compaction rewrites the blocks at the end of
/// the file into the freed space and shortens it. It runs here, on its own session, after the
/// trim's transaction commits, so the event loop never waits for it. A trim deletes in steps
/// (one write each), so a table waits `settleDelay` after its last step before it is compacted:
/// one checkpoint and compaction per trim, not one per step. Best effort: a compaction that
/// fails (WiredTiger busy with a checkpoint) is not retried, and the next trim compacts again.
final class CompactThread: @unchecked Sendable {
    private let session: OpaquePointer
    private let condition = NSCondition()
    /// Tables waiting, each once, with when each is due. Bounded by `queuedMax`: two tables per
    /// stream, and a trim that finds the queue full leaves its table to the next trim.
    private var queued: [(table: String, due: Date)] = []
    static let queuedMax = 256
    /// A table is compacted this long after its last trim step.
    private let settleDelay: TimeInterval
    private var stopping = false
    /// The table being compacted now.
    private var current: String?
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    /// Compactions finished, for tests and metrics.
    private(set) var compactedCount = 0

    init(session: OpaquePointer, settleDelay: TimeInterval = 1) {
        self.session = session
        self.settleDelay = settleDelay
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "walle-compact"
        self.thread = thread
        thread.start()
    }

    func compact(_ table: String) {
        condition.lock()
        let due = Date(timeIntervalSinceNow: settleDelay)
        if let index = queued.firstIndex(where: { $0.table == table }) {
            queued[index].due = due
        } else if queued.count < Self.queuedMax {
            queued.append((table, due))
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
        while true {
            condition.lock()
            var table: String?
            while table == nil && !stopping {
                if let index = queued.indices.min(by: { queued[$0].due < queued[$1].due }) {
                    if queued[index].due <= Date() {
                        table = queued.remove(at: index).table
                    } else {
                        _ = condition.wait(until: queued[index].due)
                    }
                } else {
                    condition.wait()
                }
            }
            current = table
            condition.unlock()
            guard let table else { break }
            // The truncate's pages are freed by a checkpoint; compaction then moves the blocks
            // at the end of the file into them, and the checkpoint after it shortens the file
            // now instead of at the next periodic one (up to 60 s later).
            _ = walle_wt_checkpoint(session)
            _ = walle_wt_compact(session, table)
            _ = walle_wt_checkpoint(session)
            condition.lock()
            current = nil
            compactedCount += 1
            condition.broadcast()
            condition.unlock()
        }
        _ = walle_wt_session_close(session)
        finished.signal()
    }
}
