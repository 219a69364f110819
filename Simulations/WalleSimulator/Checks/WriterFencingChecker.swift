import WalleCore
import WalleEnvironment

/// Invariant 6, writer fencing: once a writer's claim succeeded, nothing of an older writer
/// commits above its claimed tail (6(b)), no put acknowledged to an older writer lies above it
/// (checked both when the put is acknowledged and when the claim succeeds, 6(a)).
struct WriterFencingChecker {
    struct EntryContent: Hashable {
        var uri: StreamURI
        var id: EntryID
        var checksum: UInt64
    }

    /// Who wrote each entry's content (the newest writer, if two wrote the same). A claim
    /// re-stamps entries under its own id without changing them, so fencing is decided by who
    /// wrote the data, not by the stamp: in seed 1465 a failed claim of an older writer
    /// re-stamped a newer writer's uncommitted entries on one member, and a later claim
    /// committed them there. That was the newer writer's data, not fenced data.
    private var authors: [EntryContent: WriterID] = [:]

    /// A well-behaved writer made `entry` (hostile clients' forgeries are not recorded).
    mutating func written(_ uri: StreamURI, _ entry: Entry) {
        let key = EntryContent(uri: uri, id: entry.id, checksum: entry.checksum)
        authors[key] = max(authors[key] ?? .zero, entry.writerID)
    }

    /// 6(b): an entry new to L, of an older writer, above a newer writer's claimed tail.
    func committed(
        _ uri: StreamURI, _ entry: Entry, by node: NodeID, what: String, claims: ClaimLedger, verdict: Verdict
    ) {
        let author = authors[EntryContent(uri: uri, id: entry.id, checksum: entry.checksum)] ?? entry.writerID
        for claim in claims.of(uri) where claim.writer > author && claim.tail.id < entry.id && entry.id > 0 {
            verdict.fail(
                .writerFencing, [node],
                "\(what): \(entry.brief) committed above \(claim.writer)'s claimed tail \(claim.tail.id)")
        }
    }

    /// A put acknowledged to an older writer above a newer writer's claimed tail.
    func acknowledged(_ uri: StreamURI, _ entry: Entry, by node: NodeID, claims: ClaimLedger, verdict: Verdict) {
        for claim in claims.of(uri) where claim.writer > entry.writerID && claim.tail.id < entry.id {
            verdict.fail(
                .writerFencing, [node],
                "\(entry.brief) acknowledged to \(entry.writerID) lies above "
                    + "\(claim.writer)'s claimed tail \(claim.tail.id)")
        }
    }

    /// 6(a): a claimed tail below a put already acknowledged to an older writer.
    func claimed(
        _ uri: StreamURI, _ writer: WriterID, _ tail: Entry, by node: NodeID, acknowledged: AckLedger,
        verdict: Verdict
    ) {
        for entry in acknowledged.sorted(uri) where entry.writerID < writer && entry.id > tail.id {
            verdict.fail(
                .writerFencing, [node],
                "\(writer) claimed tail \(tail.id) below \(entry.brief), acknowledged to an older writer")
        }
    }
}
