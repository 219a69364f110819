import WalleCore
import WalleEnvironment

/// Invariant 7, lease exclusivity: at any true instant at most one writer of a stream is
/// exclusive, and what an exclusive writer holds as committed is in L.
struct LeaseExclusivityChecker {
    /// One writer client as the check sees it.
    struct Writer {
        var id: NodeID
        var writerID: WriterID
    }

    /// `writer` is exclusive on `uri`; `others` are the other writers exclusive on it now.
    func exclusive(
        _ writer: Writer, on uri: StreamURI, committed marker: CommitMarker, others: [Writer], log: CommittedLog,
        verdict: Verdict
    ) {
        for other in others {
            verdict.fail(
                .leaseExclusivity, [writer.id, other.id],
                "\(writer.writerID) and \(other.writerID) are both exclusive on \(uri)")
        }
        if let known = log.checksum(uri, marker.id), known != marker.checksum {
            verdict.fail(
                .leaseExclusivity, [writer.id], "exclusive writer's committed entry \(marker.id) is not the log's")
        }
    }
}

/// Every refusal a writer meets under load (full queues, windows and call tables, answers
/// held for a sync, timeouts) is retryable: a writer closes only when a newer writer was
/// proposed for its stream (it was fenced), never because a limit said no.
struct WriterClosedChecker {
    /// The newest writer any NewWriter carried, per stream: what may fence a writer.
    private var newestWriterProposed: [StreamURI: WriterID] = [:]

    mutating func newWriterSent(_ uri: StreamURI, _ writer: WriterID) {
        newestWriterProposed[uri] = max(newestWriterProposed[uri] ?? .zero, writer)
    }

    func closed(_ node: NodeID, _ uri: StreamURI, writer: WriterID, by error: WalleError, verdict: Verdict) {
        guard writer != .zero, (newestWriterProposed[uri] ?? .zero) <= writer else { return }
        verdict.fail(
            .writerClosedUnfenced, [node],
            "\(node.short) closed on \(uri) by \(error); no newer writer than \(writer) was proposed")
    }
}

/// Invariant 8: server reads return committed entries only, contiguous from the start, and
/// nothing below the first entry the server knew when it was asked (a trimmed stream).
struct ServerReadsChecker {
    /// Checks an answer; returns the entries it proves committed, for L.
    func answered(_ request: ReaderHost.ReadRequest, _ reply: Reply, reader: NodeID, verdict: Verdict) -> [Entry] {
        let served: [Entry] = switch reply {
        case .entry(let entry): [entry]
        case .entries(let entries): entries
        default: []
        }
        if let below = served.first(where: { $0.id < request.firstEntryKnown }) {
            verdict.fail(
                .serverReads, [request.server, reader],
                "\(request.uri) entry \(below.id) served below the first entry \(request.firstEntryKnown)")
            return []
        }
        switch (request.kind, reply) {
        case (.poll(let from), .entry(let entry)):
            if entry.id < from {
                verdict.fail(.serverReads, [request.server, reader], "PollStream from \(from) returned \(entry.id)")
            }
            return [entry]
        case (.entries(let start, let end), .entries(let entries)):
            for (offset, entry) in entries.enumerated() where entry.id != start + EntryID(offset) || entry.id >= end {
                verdict.fail(
                    .serverReads, [request.server, reader],
                    "StreamEntries [\(start),\(end)) returned \(entry.id) at position \(offset)")
                return []
            }
            return entries
        default:
            return []
        }
    }
}
