import Testing
import WalleContracts
import WalleEnvironment
@testable import WalleStorage

/// WiredTiger under the shared disk contract. A restart here is a clean close and reopen;
/// kill -9 of a real node is the loopback suite's job.
final class WiredTigerUnderTest: DiskUnderTest {
    let directory: DataDirectory
    private var completions = Completions()
    private var disk: WiredTigerDisk
    private var syncTokens: [UInt64] = []
    private var readTokens: [UInt64] = []

    init() throws {
        directory = try DataDirectory()
        disk = try open(directory, completions)
    }

    /// WiredTiger closes before the directory goes (its threads still write to it).
    deinit { disk.close() }

    func submit(_ request: DiskRequest) {
        switch request {
        case .sync(let token): syncTokens.append(token)
        case .read(let token, _, _, _): readTokens.append(token)
        case .write: break
        }
        disk.submit(request)
    }

    func settle() -> [DiskCompletion] {
        defer {
            syncTokens.removeAll()
            readTokens.removeAll()
        }
        let synced = syncTokens.filter { completions.waitSynced($0) }.map { DiskCompletion.synced(token: $0) }
        return synced + readTokens.compactMap { token in completions.read(token).map { .read(token: token, $0) } }
    }

    func restart() throws -> RecoveredState {
        disk.close()
        completions = Completions()
        disk = try open(directory, completions)
        return try disk.recover()
    }
}

@Suite("Disk contract: WiredTiger")
struct WiredTigerContractTests {
    @Test("WiredTiger keeps every clause of the disk contract", arguments: DiskContract.clauses.map(\.name))
    func clause(_ name: String) throws {
        let check = DiskContract.clauses.first { $0.name == name }!.check
        let failures = try check(try WiredTigerUnderTest())
        #expect(failures.isEmpty, "\(name): \(failures)")
    }
}
