import WalleEnvironment

/// A disk under test and the means to drive it: the simulated disk and WiredTiger both run
/// the same clauses (docs/architecture.md, "Contracts").
public protocol DiskUnderTest: AnyObject {
    func submit(_ request: DiskRequest)
    /// Returns the completions of everything submitted so far, once all have arrived.
    func settle() -> [DiskCompletion]
    /// The process stops and starts again on the same storage; returns what `recover` gives.
    func restart() throws -> RecoveredState
}

/// The `Disk` contract, as clauses that each return what they found wrong (empty: kept).
///
/// Where the two implementations could differ, the clause says which is right:
/// - a read covers the id range `[lower, lower + countMax)`: holes make it return fewer than
///   `countMax` entries rather than reach further (the core asks again from the hole);
/// - the recovered window stops at the first hole above the committed entry.
public enum DiskContract {
    public static let clauses: [(name: String, check: @Sendable (any DiskUnderTest) throws -> [String])] = [
        ("writes are visible to later reads at once, before any sync", readsSeeWrites),
        ("reads merge both tables, live wins, holes stay, bounded by countMax", readsMerge),
        ("deleteLiveEntries removes every live id from the bound, above holes too", deleteAboveHoles),
        ("deleteEntries removes every id below the bound from both tables, holes and all", deleteBelow),
        ("a completed sync covers every earlier write across a restart", syncedSurvives),
        ("a dropped and re-created stream starts empty", dropForgets),
        ("recovery lists streams by URI, with the window from the committed entry", recoverySorted),
    ]

    static let a = try! StreamURI("/contract/a")
    static let b = try! StreamURI("/contract/b")

    static func metadata(committed: EntryID = 0, writer: UInt64 = 5) -> StreamMetadata {
        var metadata = StreamMetadata(topology: StreamTopology(version: 2, members: [NodeID(1), NodeID(2), NodeID(3)]))
        metadata.writerID = WriterID(ts: 40, id: writer)
        metadata.writerAddress = "writer-\(writer)"
        metadata.leaseMilliseconds = 1000
        metadata.committedID = committed
        return metadata
    }

    static func entry(_ id: EntryID, tag: UInt8 = 0) -> Entry {
        Entry(
            id: id, writerID: WriterID(ts: 40, id: 5), checksum: id &* 31 &+ UInt64(tag),
            data: [tag, UInt8(truncatingIfNeeded: id)])
    }

    /// Reads `range` and returns the entries of the read's completion.
    static func read(
        _ disk: any DiskUnderTest, _ uri: StreamURI, _ range: Range<EntryID>, countMax: Int = 100
    ) -> [Entry]? {
        let token = UInt64.random(in: 1_000...UInt64.max)
        disk.submit(.read(token: token, uri, range: range, countMax: countMax))
        for case .read(token, let entries) in disk.settle() { return entries }
        return nil
    }

    static func expect(_ failures: inout [String], _ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { failures.append(message()) }
    }

    static func readsSeeWrites(_ disk: any DiskUnderTest) -> [String] {
        var failures: [String] = []
        disk.submit(.write([.createStream(a, metadata())]))
        disk.submit(.write((1...3).map { .putEntry(a, .live, entry($0)) }))
        let entries = read(disk, a, 0..<10)
        expect(
            &failures, entries == [Entry.zero] + (1...3).map { entry($0) },
            "read gave \(entries.map { $0.map(\.id) } ?? [])")
        return failures
    }

    static func readsMerge(_ disk: any DiskUnderTest) -> [String] {
        var failures: [String] = []
        disk.submit(.write([.createStream(a, metadata())]))
        disk.submit(.write([
            .putEntry(a, .backfill, entry(5)), .putEntry(a, .backfill, entry(6)), .putEntry(a, .live, entry(6, tag: 9)),
            .putEntry(a, .live, entry(8)),
        ]))
        let merged = read(disk, a, 4..<10)
        expect(&failures, merged == [entry(5), entry(6, tag: 9), entry(8)], "merged read gave \(merged ?? [])")
        let bounded = read(disk, a, 4..<10, countMax: 2)
        expect(&failures, bounded == [entry(5)], "countMax 2 from 4 must cover ids 4 and 5 only, gave \(bounded ?? [])")
        return failures
    }

    static func deleteAboveHoles(_ disk: any DiskUnderTest) -> [String] {
        var failures: [String] = []
        disk.submit(.write([.createStream(a, metadata())]))
        disk.submit(.write([
            .putEntry(a, .live, entry(1)), .putEntry(a, .live, entry(2)), .putEntry(a, .live, entry(5)),
            .putEntry(a, .backfill, entry(3))]))
        disk.submit(.write([.deleteLiveEntries(a, from: 2)]))
        let entries = read(disk, a, 0..<10)
        expect(
            &failures, entries == [Entry.zero, entry(1), entry(3)],
            "after delete from 2: \(entries.map { $0.map(\.id) } ?? [])")
        return failures
    }

    /// A trim: below the bound nothing stays, in either table, whatever holes lie between; at
    /// and above it nothing goes; and it lasts across a restart once synced.
    static func deleteBelow(_ disk: any DiskUnderTest) throws -> [String] {
        var failures: [String] = []
        disk.submit(.write([.createStream(a, metadata(committed: 9))]))
        disk.submit(.write(
            [1, 2, 6, 7, 9].map { .putEntry(a, .live, entry($0)) }
                + [3, 4, 7, 8].map { .putEntry(a, .backfill, entry($0)) }))
        disk.submit(.write([.deleteEntries(a, below: 7)]))
        let entries = read(disk, a, 0..<10)
        expect(
            &failures, entries?.map(\.id) == [7, 8, 9], "after delete below 7: \(entries.map { $0.map(\.id) } ?? [])")
        // Nothing left below: a second trim at the same bound, or below it, changes nothing.
        disk.submit(.write([.deleteEntries(a, below: 7), .deleteEntries(a, below: 2)]))
        disk.submit(.sync(token: 1))
        _ = disk.settle()
        let recovered = try disk.restart()
        let after = read(disk, a, 0..<10)
        expect(&failures, after?.map(\.id) == [7, 8, 9], "after a restart: \(after.map { $0.map(\.id) } ?? [])")
        expect(&failures, recovered.streams.first?.window.first?.id == 9, "the window still starts at 9")
        return failures
    }

    static func syncedSurvives(_ disk: any DiskUnderTest) throws -> [String] {
        var failures: [String] = []
        disk.submit(.write([.createStream(a, metadata())]))
        disk.submit(.write((1...3).map { .putEntry(a, .live, entry($0)) } + [.setMetadata(a, metadata(committed: 1))]))
        disk.submit(.sync(token: 7))
        let completions = disk.settle()
        let synced = completions.contains { if case .synced(7) = $0 { return true } else { return false } }
        expect(&failures, synced, "sync 7 did not complete")
        let recovered = try disk.restart()
        expect(&failures, recovered.streams.map(\.uri) == [a], "recovered streams \(recovered.streams.map(\.uri))")
        if let stream = recovered.streams.first {
            expect(&failures, stream.metadata == metadata(committed: 1), "metadata \(stream.metadata)")
            expect(&failures, stream.window == (1...3).map { entry($0) }, "window \(stream.window.map(\.id))")
        }
        return failures
    }

    static func dropForgets(_ disk: any DiskUnderTest) throws -> [String] {
        var failures: [String] = []
        disk.submit(.write([.createStream(a, metadata())]))
        disk.submit(.write([.putEntry(a, .live, entry(1)), .putEntry(a, .backfill, entry(2))]))
        disk.submit(.write([.dropStream(a)]))
        disk.submit(.write([.createStream(a, metadata(writer: 6))]))
        let entries = read(disk, a, 0..<10)
        expect(&failures, entries == [Entry.zero], "re-created stream reads \(entries.map { $0.map(\.id) } ?? [])")
        disk.submit(.write([.dropStream(b)]))  // dropping what does not exist is harmless
        disk.submit(.sync(token: 1))
        _ = disk.settle()
        let recovered = try disk.restart()
        expect(
            &failures, recovered.streams.map(\.metadata) == [metadata(writer: 6)],
            "recovered \(recovered.streams.map(\.uri))")
        expect(
            &failures, recovered.streams.first?.window == [Entry.zero],
            "window \(recovered.streams.first?.window.map(\.id) ?? [])")
        return failures
    }

    static func recoverySorted(_ disk: any DiskUnderTest) throws -> [String] {
        var failures: [String] = []
        disk.submit(.write([.createStream(b, metadata())]))
        disk.submit(.write([.createStream(a, metadata(committed: 0))]))
        disk.submit(.write([
            .putEntry(a, .live, entry(1)), .putEntry(a, .live, entry(2)), .putEntry(a, .live, entry(4))]))
        disk.submit(.write([.setMetadata(a, metadata(committed: 1))]))
        disk.submit(.sync(token: 2))
        _ = disk.settle()
        let recovered = try disk.restart()
        expect(&failures, recovered.streams.map(\.uri) == [a, b], "recovered order \(recovered.streams.map(\.uri))")
        expect(
            &failures, recovered.streams.first?.window == [entry(1), entry(2)],
            "window stops at the hole: \(recovered.streams.first?.window.map(\.id) ?? [])")
        return failures
    }
}
