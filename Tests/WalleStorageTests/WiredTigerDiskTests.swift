import Foundation
import Testing
import WalleEnvironment
@testable import WalleStorage

/// Collects a disk's completions (from any thread) for a test to wait on.
final class Completions: @unchecked Sendable {
    private let condition = NSCondition()
    private var synced: Set<UInt64> = []
    private var reads: [UInt64: [Entry]] = [:]
    private var fatalErrors: [WalleError] = []
    private var compactionReports: [CompactionReport] = []

    func deliver(_ completion: DiskCompletion) {
        condition.lock()
        switch completion {
        case .synced(let token): synced.insert(token)
        case .read(let token, let entries): reads[token] = entries
        }
        condition.broadcast()
        condition.unlock()
    }

    func fatal(_ error: WalleError) {
        condition.lock()
        fatalErrors.append(error)
        condition.unlock()
    }

    func compacted(_ report: CompactionReport) {
        condition.lock()
        compactionReports.append(report)
        condition.unlock()
    }

    var compactions: [CompactionReport] {
        condition.lock()
        defer { condition.unlock() }
        return compactionReports
    }

    /// Waits up to 10 s for the sync `token`.
    func waitSynced(_ token: UInt64) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(10)
        while !synced.contains(token) {
            if !condition.wait(until: deadline) { return false }
        }
        return true
    }

    func read(_ token: UInt64) -> [Entry]? {
        condition.lock()
        defer { condition.unlock() }
        return reads[token]
    }

    var errors: [WalleError] {
        condition.lock()
        defer { condition.unlock() }
        return fatalErrors
    }
}

/// A fresh data directory, removed when the test ends.
final class DataDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("walle-wt-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

let uri = try! StreamURI("/contract/stream")

func metadata(committed: EntryID = 0) -> StreamMetadata {
    var metadata = StreamMetadata(topology: StreamTopology(version: 3, members: [NodeID(1), NodeID(2), NodeID(7)]))
    metadata.writerID = WriterID(ts: 99, id: 5)
    metadata.writerAddress = "client-7"
    metadata.leaseMilliseconds = 1500
    metadata.committedID = committed
    return metadata
}

func entry(_ id: EntryID, tag: UInt8 = 0) -> Entry {
    Entry(
        id: id, writerID: WriterID(ts: 99, id: 5), checksum: id &* 0x9E37 &+ UInt64(tag),
        data: [tag, UInt8(id & 0xFF), 1, 2, 3])
}

func open(_ directory: DataDirectory, _ completions: Completions) throws -> WiredTigerDisk {
    try WiredTigerDisk(
        directory: directory.path, cacheMegabytes: 16, deliver: { completions.deliver($0) },
        fatal: { completions.fatal($0) }, compacted: { completions.compacted($0) })
}

@Suite("WiredTiger disk")
struct WiredTigerDiskTests {
    @Test("Synced writes survive a reopen; the window starts at the committed entry")
    func recoversSyncedWrites() throws {
        let directory = try DataDirectory()
        let completions = Completions()
        do {
            let disk = try open(directory, completions)
            disk.submit(.write([.createStream(uri, metadata())]))
            disk.submit(.write(
                (1...5).map { .putEntry(uri, .live, entry($0)) } + [.setMetadata(uri, metadata(committed: 2))]))
            disk.submit(.sync(token: 1))
            #expect(completions.waitSynced(1))
            disk.close()
        }
        let disk = try open(directory, Completions())
        let recovered = try disk.recover()
        #expect(recovered.streams.count == 1)
        let stream = try #require(recovered.streams.first)
        #expect(stream.uri == uri)
        #expect(stream.metadata == metadata(committed: 2))
        #expect(stream.window.map(\.id) == [2, 3, 4, 5])
        #expect(stream.window == (2...5).map { entry($0) })
        #expect(completions.errors.isEmpty)
    }

    @Test("Short stream names survive a reopen (their bytes live inline in the Swift string)")
    func recoversShortNames() throws {
        let directory = try DataDirectory()
        let names = try ["/a", "/demo", "/cluster/root"].map { try StreamURI($0) }
        do {
            let completions = Completions()
            let disk = try open(directory, completions)
            for name in names { disk.submit(.write([.createStream(name, metadata())])) }
            disk.submit(.sync(token: 1))
            #expect(completions.waitSynced(1))
            disk.close()
        }
        let recovered = try open(directory, Completions()).recover()
        #expect(recovered.streams.map(\.uri) == names.sorted())
    }

    @Test("Reads merge the tables, live wins, holes stay holes, the id span is bounded")
    func readsMerge() throws {
        let directory = try DataDirectory()
        let completions = Completions()
        let disk = try open(directory, completions)
        disk.submit(.write([.createStream(uri, metadata())]))
        disk.submit(.write([
            .putEntry(uri, .backfill, entry(1)), .putEntry(uri, .backfill, entry(2)),
            .putEntry(uri, .live, entry(2, tag: 9)), .putEntry(uri, .live, entry(4)),
        ]))
        disk.submit(.read(token: 7, uri, range: 0..<10, countMax: 100))
        #expect(completions.read(7) == [.zero, entry(1), entry(2, tag: 9), entry(4)])
        disk.submit(.read(token: 8, uri, range: 1..<10, countMax: 2))
        #expect(completions.read(8) == [entry(1), entry(2, tag: 9)])
    }

    @Test("deleteLiveEntries drops the live suffix only; dropStream forgets the stream")
    func deletesAndDrops() throws {
        let directory = try DataDirectory()
        let completions = Completions()
        let disk = try open(directory, completions)
        disk.submit(.write([.createStream(uri, metadata())]))
        disk.submit(.write((1...6).map { .putEntry(uri, .live, entry($0)) } + [.putEntry(uri, .backfill, entry(5))]))
        disk.submit(.write([.deleteLiveEntries(uri, from: 4)]))
        disk.submit(.read(token: 1, uri, range: 0..<10, countMax: 10))
        #expect(completions.read(1)?.map(\.id) == [0, 1, 2, 3, 5], "backfill's 5 stays")
        disk.submit(.write([.dropStream(uri)]))
        #expect(try disk.recover().streams.isEmpty)
        // A re-add starts from nothing (WS-6).
        disk.submit(.write([.createStream(uri, metadata())]))
        disk.submit(.read(token: 2, uri, range: 0..<10, countMax: 10))
        #expect(completions.read(2) == [.zero])
    }

    @Test("A trim gives the space back: after the range truncate and its compaction the table file shrinks")
    func trimShrinksTheFile() async throws {
        let directory = try DataDirectory()
        let file = directory.path + "/live-contract-stream.wt"
        func size() -> Int { ((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int) ?? 0 }
        var disk = try open(directory, Completions())
        disk.submit(.write([.createStream(uri, metadata(committed: 3200))]))
        // 3200 entries of 2 KiB (6.4 MiB), in batches; closing checkpoints them into the file.
        let data = [UInt8](repeating: 7, count: 2 << 10)
        for batch in stride(from: 1, through: 3200, by: 100) {
            disk.submit(.write((batch..<batch + 100).map { id in
                .putEntry(uri, .live, Entry(id: EntryID(id), writerID: .zero, checksum: UInt64(id), data: data))
            }))
        }
        disk.close()
        let before = size()
        #expect(before > 4 << 20, "the entries reached the file: \(before) bytes")
        let trimming = Completions()
        disk = try open(directory, trimming)
        disk.submit(.write([.deleteEntries(uri, below: 3190)]))
        let deadline = ContinuousClock.now + .seconds(60)
        while disk.compactionsFinished < 2 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(disk.compactionsFinished == 2, "both tables were compacted")
        // Shorter before the disk closes (closing checkpoints too): compaction's own work.
        let compacted = size()
        disk.close()
        let after = size()
        #expect(compacted < before / 10, "\(before) bytes before the trim, \(compacted) once compacted")
        // The node logs these: the live table's report names its file's sizes.
        let live = trimming.compactions.first { $0.table == "table:live-contract-stream" }
        #expect(
            live?.failure == nil && (live?.bytesBefore ?? 0) > before / 2 && live?.bytesAfter == compacted,
            "\(String(describing: live))")
        // Entries of 2 KiB live on leaf pages, which compaction moves; WiredTiger 3.2 does not
        // move overflow items (values over half a leaf page), so a file of large entries keeps
        // more, though later writes reuse the space.
        #expect(after < before / 10, "\(before) bytes before the trim, \(after) after")
        // What the trim kept is still there.
        let completions = Completions()
        disk = try open(directory, completions)
        disk.submit(.read(token: 1, uri, range: 3180..<3201, countMax: 100))
        #expect(completions.read(1)?.map(\.id) == Array(3190...3200))
        disk.close()
    }

    @Test("A missing, a non-directory and a locked data directory are typed errors")
    func badDirectories() throws {
        let missing = "/tmp/walle-missing-\(UUID().uuidString)"
        #expect(throws: WalleError.self) { try WiredTigerDisk(directory: missing, deliver: { _ in }, fatal: { _ in }) }
        do {
            _ = try WiredTigerDisk(directory: missing, deliver: { _ in }, fatal: { _ in })
        } catch {
            #expect(error.code == .notFound)
            #expect(error.message.contains(missing))
        }
        let directory = try DataDirectory()
        let first = try open(directory, Completions())
        do {
            _ = try open(directory, Completions())
            Issue.record("a second open of the same directory must fail")
        } catch let error as WalleError {
            #expect(error.message.contains(directory.path))
        }
        first.close()
    }

    @Test("Garbage in the data directory is a typed error, not a crash")
    func corruptDirectory() throws {
        let directory = try DataDirectory()
        try Data("not a database".utf8).write(to: URL(fileURLWithPath: directory.path + "/WiredTiger"))
        try Data(repeating: 0xAB, count: 4096).write(to: URL(fileURLWithPath: directory.path + "/WiredTiger.wt"))
        do {
            _ = try open(directory, Completions())
            Issue.record("a directory without WiredTiger.turtle must be refused")
        } catch let error as WalleError {
            #expect(error.code == .dataLoss)
            #expect(error.message.contains("WiredTiger.turtle"))
        }
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
                == ["WiredTiger", "WiredTiger.wt"],
            "nothing set aside")
        // A directory with something else in it is not taken over either.
        let other = try DataDirectory()
        try Data("notes".utf8).write(to: URL(fileURLWithPath: other.path + "/notes.txt"))
        do {
            _ = try open(other, Completions())
            Issue.record("a non-empty directory without a database must be refused")
        } catch let error as WalleError {
            #expect(error.code == .invalidArgument)
        }
    }

    @Test("Stored values round-trip, and truncated ones are DataLoss")
    func codec() throws {
        var stored = metadata(committed: 41)
        stored.gapStart = 3
        stored.gapEnd = 40
        stored.gapPreviousChecksum = 77
        stored.gapEndChecksum = 88
        stored.gapKeptEnd = 12
        stored.pendingWaitMilliseconds = 1234
        stored.firstEntryID = 5
        stored.trimmedBelow = 4
        let bytes = StorageCodec.encode(stored)
        #expect(try StorageCodec.decodeMetadata(uri, bytes) == stored)
        // Format 2 (before the first entry) decodes as a stream never trimmed.
        var formatTwo = Array(bytes.dropLast(16))
        formatTwo[0] = 2
        var untrimmed = stored
        untrimmed.firstEntryID = 0
        untrimmed.trimmedBelow = 0
        #expect(try StorageCodec.decodeMetadata(uri, formatTwo) == untrimmed)
        // Format 1 (before the pending wait too) still decodes, with the wait unknown.
        var formatOne = Array(bytes.dropLast(24))
        formatOne[0] = 1
        var legacy = untrimmed
        legacy.pendingWaitMilliseconds = -1
        #expect(try StorageCodec.decodeMetadata(uri, formatOne) == legacy)
        #expect(throws: WalleError.self) { try StorageCodec.decodeMetadata(uri, Array(bytes.dropLast())) }
        let value = StorageCodec.encode(entry(9))
        #expect(try StorageCodec.decodeEntry(id: 9, value) == entry(9))
        #expect(throws: WalleError.self) { try StorageCodec.decodeEntry(id: 9, Array(value.prefix(10))) }
    }
}
