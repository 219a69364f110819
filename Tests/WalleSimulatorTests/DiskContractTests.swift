import Testing
import WalleContracts
import WalleEnvironment
@testable import WalleSimulator

/// The simulated disk under the shared disk contract, with this test as its host: scheduled
/// completions run in time order, and a restart is a crash that keeps nothing unsynced.
final class SimDiskUnderTest: DiskUnderTest, SimScheduler {
    var trueNow: Int64 = 0
    private var events: [(time: Int64, event: SimEvent)] = []
    private var disk: SimDisk!

    init() {
        let profile = DiskProfile(
            syncLatencyMin: .microseconds(50), syncLatencyMax: .milliseconds(2), readLatencyMin: .microseconds(10),
            readLatencyMax: .microseconds(200))
        disk = SimDisk(scheduler: self, node: NodeID(1), random: SimRandom(seed: 11), profile: profile)
    }

    func schedule(at time: Int64, _ event: SimEvent) { events.append((time, event)) }

    func submit(_ request: DiskRequest) { disk.submit(request) }

    func settle() -> [DiskCompletion] {
        var completions: [DiskCompletion] = []
        // Stable by time: equal times keep their scheduling order, as in the world's queue.
        for (time, event) in events.enumerated()
            .sorted(by: { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }).map(\.element)
        {
            trueNow = max(trueNow, time)
            switch event {
            case .diskSynced(_, let token, let upTo, _):
                disk.syncCompleted(upTo: upTo)
                completions.append(.synced(token: token))
            case .diskRead(_, let token, let entries, _):
                completions.append(.read(token: token, entries))
            default:
                preconditionFailure("a disk schedules only its completions")
            }
        }
        events.removeAll()
        return completions
    }

    func restart() throws -> RecoveredState {
        _ = settle()
        _ = disk.crash(keep: 0)
        return try disk.recover()
    }
}

@Suite("Disk contract: simulated disk")
struct SimDiskContractTests {
    @Test("The simulated disk keeps every clause of the disk contract", arguments: DiskContract.clauses.map(\.name))
    func clause(_ name: String) throws {
        let check = DiskContract.clauses.first { $0.name == name }!.check
        let failures = try check(SimDiskUnderTest())
        #expect(failures.isEmpty, "\(name): \(failures)")
    }

    @Test("A crash loses what was written but not synced")
    func crashLosesUnsynced() throws {
        let subject = SimDiskUnderTest()
        let uri = try StreamURI("/contract/crash")
        subject.submit(.write([
            .createStream(uri, StreamMetadata(topology: StreamTopology(version: 1, members: [NodeID(1)])))]))
        subject.submit(.sync(token: 1))
        _ = subject.settle()
        subject.submit(.write([
            .putEntry(uri, .live, Entry(id: 1, writerID: WriterID(ts: 1, id: 1), checksum: 3, data: [1]))]))
        let recovered = try subject.restart()
        #expect(recovered.streams.first?.window == [Entry.zero])
    }
}

/// A disk that ignores deletes: the contract must notice (a check that cannot fail proves nothing).
final class DeleteIgnoringDisk: DiskUnderTest {
    let inner = SimDiskUnderTest()

    func submit(_ request: DiskRequest) {
        if case .write(let operations) = request {
            inner.submit(.write(operations.filter {
                if case .deleteLiveEntries = $0 { return false } else { return true }
            }))
        } else {
            inner.submit(request)
        }
    }

    func settle() -> [DiskCompletion] { inner.settle() }
    func restart() throws -> RecoveredState { try inner.restart() }
}

@Suite("Disk contract: a planted bug")
struct DiskContractCatchesTests {
    @Test("A disk that ignores deleteLiveEntries breaks the delete clause")
    func catchesIgnoredDeletes() throws {
        let clause = DiskContract.clauses.first { $0.name.hasPrefix("deleteLiveEntries") }!
        #expect(!(try clause.check(DeleteIgnoringDisk())).isEmpty)
    }
}
