import WalleCore
import WalleEnvironment

/// Invariants 1 (committed immutability) and 4 (chain validity): an entry that enters L at a
/// known id has the same checksum, and a new one chains onto L's entry below it.
struct CommittedLogChecker {
    /// Whether `entry` is new to L (then the caller goes on to check and insert it).
    func admit(
        _ uri: StreamURI, _ entry: Entry, by node: NodeID, what: String, log: CommittedLog, verdict: Verdict
    ) -> Bool {
        if let known = log.checksum(uri, entry.id) {
            if known != entry.checksum {
                verdict.fail(
                    .committedImmutability, [node],
                    "\(what): \(uri) entry \(entry.id) has xx=\(hex16(entry.checksum)), committed xx=\(hex16(known))")
            }
            return false
        }
        if entry.id > 0, let previous = log.checksum(uri, entry.id - 1), !entry.chains(onto: previous) {
            verdict.fail(
                .chainValidity, [node],
                "\(what): \(uri) entry \(entry.id) does not chain onto committed \(entry.id - 1)")
        }
        return true
    }
}
