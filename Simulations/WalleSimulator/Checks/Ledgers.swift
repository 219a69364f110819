import WalleCore
import WalleEnvironment

/// L, the oracle's committed log per stream (id → checksum). Fed by everything that is
/// committed by definition: entries servers report committed, acknowledged puts, claimed
/// tails, read answers.
struct CommittedLog {
    private var entries: [StreamURI: [EntryID: UInt64]] = [:]

    func checksum(_ uri: StreamURI, _ id: EntryID) -> UInt64? { entries[uri]?[id] }

    mutating func insert(_ uri: StreamURI, _ entry: Entry) {
        entries[uri, default: [:]][entry.id] = entry.checksum
    }

    /// A stream's committed entries in id order.
    func sorted(_ uri: StreamURI) -> [(id: EntryID, checksum: UInt64)] {
        (entries[uri] ?? [:]).sorted(by: { $0.key < $1.key }).map { (id: $0.key, checksum: $0.value) }
    }

    var count: Int { entries.values.reduce(0) { $0 + $1.count } }

    /// The highest committed id seen on a stream (0 for none).
    func highest(_ uri: StreamURI) -> EntryID { entries[uri]?.keys.max() ?? 0 }
}

/// Every successful claim per stream, in the order they were seen.
struct ClaimLedger {
    typealias Claim = (writer: WriterID, tail: Entry)
    private var claims: [StreamURI: [Claim]] = [:]

    func of(_ uri: StreamURI) -> [Claim] { claims[uri] ?? [] }

    func newest(_ uri: StreamURI) -> Claim? { of(uri).max(by: { $0.writer < $1.writer }) }

    mutating func append(_ uri: StreamURI, _ writer: WriterID, _ tail: Entry) {
        claims[uri, default: []].append((writer, tail))
    }
}

/// Acknowledged puts per stream, and when the latest came (liveness reads it).
struct AckLedger {
    private var acknowledged: [StreamURI: [EntryID: Entry]] = [:]
    private var last: [StreamURI: (time: Int64, id: EntryID)] = [:]

    mutating func record(_ uri: StreamURI, _ entry: Entry, at now: Int64) {
        acknowledged[uri, default: [:]][entry.id] = entry
        last[uri] = (now, max(last[uri]?.id ?? 0, entry.id))
    }

    /// A stream's acknowledged entries in id order.
    func sorted(_ uri: StreamURI) -> [Entry] {
        (acknowledged[uri] ?? [:]).sorted(by: { $0.key < $1.key }).map(\.value)
    }

    func lastAcknowledgedAt(_ uri: StreamURI) -> Int64? { last[uri]?.time }

    func highestAcknowledged(_ uri: StreamURI) -> EntryID { last[uri]?.id ?? 0 }

    var count: Int { acknowledged.values.reduce(0) { $0 + $1.count } }
}
