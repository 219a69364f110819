import WalleCore
import WalleEnvironment

/// Invariants 9 (a server's committed id never goes down while it is up) and 11 (its stored
/// writer id never goes down); the entries a server newly reports committed go into L.
struct ServerProgressChecker {
    /// The last view of each server, per checked stream (same order as the stream list).
    private struct Baseline {
        var committed: [EntryID]
        var writer: [WriterID]
    }

    private var baselines: [NodeID: Baseline] = [:]

    /// A server that is up, after an event: `metadata(uri)` is its view of a stream (nil: not
    /// a member), `served(uri, id)` an entry it serves, and `commit` feeds L, in stream order.
    mutating func observe(
        _ node: NodeID, streams: [StreamURI], metadata: (StreamURI) -> StreamMetadata?,
        served: (StreamURI, EntryID) -> Entry?, commit: (StreamURI, Entry) -> Void, verdict: Verdict
    ) {
        var baseline = baselines[node] ?? Baseline(
            committed: Array(repeating: 0, count: streams.count), writer: Array(repeating: .zero, count: streams.count))
        defer { baselines[node] = baseline }
        for (index, uri) in streams.enumerated() {
            guard let metadata = metadata(uri) else {
                // Not (or no longer) a member: a later re-add starts from nothing (WS-6).
                baseline.committed[index] = 0
                baseline.writer[index] = .zero
                continue
            }
            let last = baseline.committed[index]
            if metadata.committedID < last {
                verdict.fail(
                    .committedIDMonotonic, [node], "\(uri) committed id went from \(last) to \(metadata.committedID)")
            } else if metadata.committedID > last {
                for id in (last + 1)...metadata.committedID {
                    if let entry = served(uri, id) { commit(uri, entry) }
                }
                baseline.committed[index] = metadata.committedID
            }
            if metadata.writerID < baseline.writer[index] {
                verdict.fail(
                    .writerIDsNeverDecrease, [node],
                    "\(uri) writer went from \(baseline.writer[index]) to \(metadata.writerID)")
            }
            baseline.writer[index] = metadata.writerID
        }
    }

    /// A restarted server may report a lower committed id ([CRASH-2]): it starts over from
    /// what it recovered. Its writer id must still not be lower than what was durable.
    mutating func restarted(_ node: NodeID, streams: [StreamURI], metadata: (StreamURI) -> StreamMetadata?) {
        guard var baseline = baselines[node] else { return }
        for (index, uri) in streams.enumerated() where index < baseline.committed.count {
            guard let metadata = metadata(uri) else { continue }
            baseline.committed[index] = metadata.committedID
            baseline.writer[index] = metadata.writerID
        }
        baselines[node] = baseline
    }
}
