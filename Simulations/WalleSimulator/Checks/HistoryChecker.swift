import WalleCore
import WalleEnvironment

/// The client-history checker (docs/simulation.md, "The client-history checker"): what clients
/// saw, judged against a model of an append-only log with one exclusive writer, with nothing
/// from the servers' bookkeeping but a final read. It runs in every seed beside the server-side
/// oracles and reports `client-history`.
///
/// Per stream it keeps the checksum of every entry a client saw committed (an acknowledged put,
/// a claimed tail, a read), 8 bytes per id, and a few numbers per writer; nothing else.
/// - H1, one log: every observation of an id has the same checksum, and an entry whose
///   predecessor is known chains onto it (so no corrupt byte reaches a client unnoticed).
/// - H2, claims are linearizable: a claim's tail is at or above every put acknowledged
///   before the claim was invoked.
/// - H3, one writer: no put is acknowledged to a writer when a claim by a newer writer had
///   completed before the put was invoked.
/// - H4, the final read: every id a client saw committed is in a final read of the stream's
///   most advanced live member, with the checksum clients saw (an entry whose outcome was
///   unknown needs nothing: it may be there or not).
final class HistoryChecker {
    private struct StreamHistory {
        /// Checksums by id of entries clients saw committed; 0: none seen (Entry0's is known).
        var checksums: [UInt64] = [0]
        var known: [Bool] = [true]
        var highestAcknowledged: EntryID = 0
        /// (completion time, writer) of claims, each writer newer than the one before: the
        /// newest writer whose claim had completed by any instant (one per claim at most).
        var claims: [(at: Int64, writer: WriterID)] = []
    }

    /// A writer client's own numbers: the highest acknowledged id when its claim was invoked,
    /// and when each put still in flight was invoked (removed when it is acknowledged or the
    /// writer closes or claims again; bounded by the writer's pipeline).
    private struct WriterHistory {
        var acknowledgedAtClaim: EntryID = 0
        var invokedAt: [EntryID: Int64] = [:]
    }

    private var streams: [StreamURI: StreamHistory] = [:]
    private var writers: [NodeID: WriterHistory] = [:]
    private let verdict: Verdict
    private let now: () -> Int64

    init(verdict: Verdict, now: @escaping () -> Int64) {
        self.verdict = verdict
        self.now = now
    }

    func claimInvoked(_ uri: StreamURI, by client: NodeID) {
        writers[client] = WriterHistory(acknowledgedAtClaim: streams[uri]?.highestAcknowledged ?? 0)
    }

    func putInvoked(_ entry: Entry, by client: NodeID) {
        writers[client, default: WriterHistory()].invokedAt[entry.id] = now()
    }

    func closed(_ client: NodeID) { writers[client] = nil }

    func claimed(_ uri: StreamURI, _ writer: WriterID, tail: Entry, by client: NodeID) {
        let before = writers[client]?.acknowledgedAtClaim ?? 0
        if tail.id < before {
            fail([client], "claim of \(uri) by \(writer) returned tail \(tail.id), below entry \(before) "
                + "acknowledged before the claim was invoked (H2)")
        }
        observe(uri, tail, by: client, what: "claimed tail")
        var stream = streams[uri] ?? StreamHistory()
        if writer > (stream.claims.last?.writer ?? .zero) { stream.claims.append((now(), writer)) }
        streams[uri] = stream
    }

    func acknowledged(_ uri: StreamURI, _ entry: Entry, by client: NodeID) {
        let invokedAt = writers[client]?.invokedAt.removeValue(forKey: entry.id)
        if let invokedAt, let newer = newestWriter(uri, before: invokedAt), newer > entry.writerID {
            fail([client], "put \(entry.id) of \(uri) by \(entry.writerID) was acknowledged, but \(newer) "
                + "had claimed the stream before the put was invoked (H3)")
        }
        observe(uri, entry, by: client, what: "acknowledged put")
        streams[uri, default: StreamHistory()].highestAcknowledged = max(
            streams[uri]?.highestAcknowledged ?? 0, entry.id)
    }

    func read(_ uri: StreamURI, _ entries: [Entry], by client: NodeID) {
        for entry in entries { observe(uri, entry, by: client, what: "read") }
    }

    /// H4 against `final`: the committed entries, in id order, of the stream's most advanced
    /// live member (its served entries from `first`).
    func finalRead(_ uri: StreamURI, first: EntryID, _ final: [Entry]) {
        guard let stream = streams[uri], let last = final.last else { return }
        precondition(final.count < 1 << 28, "a final read beyond any simulated stream")
        var byID: [EntryID: UInt64] = [:]
        for entry in final { byID[entry.id] = entry.checksum }
        let upper = min(last.id, EntryID(stream.checksums.count - 1))
        for id in stride(from: first, through: upper, by: 1) where stream.known[Int(id)] {
            guard let checksum = byID[id] else {
                fail([], "entry \(id) of \(uri), seen committed by a client, is missing from the final read (H4)")
                return
            }
            guard checksum == stream.checksums[Int(id)] else {
                fail([], "entry \(id) of \(uri) reads xx=\(hex16(checksum)) at the end; clients saw "
                    + "xx=\(hex16(stream.checksums[Int(id)])) (H4)")
                return
            }
        }
        if stream.highestAcknowledged > last.id {
            fail([], "entry \(stream.highestAcknowledged) of \(uri) was acknowledged, but the final read ends at "
                + "\(last.id) (H4)")
        }
    }

    /// H1 for one entry a client saw committed.
    private func observe(_ uri: StreamURI, _ entry: Entry, by client: NodeID, what: String) {
        var stream = streams[uri] ?? StreamHistory()
        defer { streams[uri] = stream }
        let index = Int(clamping: entry.id)
        // Ids come from clients' own views of one stream; a run writes far fewer than this.
        precondition(index < 1 << 28, "an id beyond any simulated stream")
        if index >= stream.checksums.count {
            stream.checksums += [UInt64](repeating: 0, count: index + 1 - stream.checksums.count)
            stream.known += [Bool](repeating: false, count: index + 1 - stream.known.count)
        }
        if stream.known[index] {
            if stream.checksums[index] != entry.checksum {
                fail([client], "\(what) \(entry.brief) of \(uri): clients saw xx=\(hex16(stream.checksums[index])) "
                    + "at that id before (H1)")
            }
            return
        }
        if index > 0, stream.known[index - 1], entry.id > 0,
            !entry.chains(onto: stream.checksums[index - 1])
        {
            fail([client], "\(what) \(entry.brief) of \(uri) does not chain onto entry \(entry.id - 1) (H1)")
        }
        stream.checksums[index] = entry.checksum
        stream.known[index] = true
    }

    /// The newest writer whose claim of `uri` had completed at `time`.
    private func newestWriter(_ uri: StreamURI, before time: Int64) -> WriterID? {
        streams[uri]?.claims.last { $0.at < time }?.writer
    }

    private func fail(_ nodes: [NodeID], _ detail: String) {
        verdict.fail(.clientHistory, nodes, detail)
    }
}

/// What clients report, passed to the server-side oracle and to the client-history checker,
/// in that order.
final class ClientEvents: ClientObserver {
    private unowned let oracle: Oracle
    let history: HistoryChecker

    init(oracle: Oracle, history: HistoryChecker) {
        self.oracle = oracle
        self.history = history
    }

    func writerEvent(_ host: WriterHost, _ event: WriterEvent) {
        oracle.writerEvent(host, event)
        switch event {
        case .claimed(let writer, let tail): history.claimed(host.uri, writer, tail: tail, by: host.id)
        case .putAcknowledged(let entry): history.acknowledged(host.uri, entry, by: host.id)
        case .closed: history.closed(host.id)
        case .claimFailed: break
        }
    }

    func observeWriter(_ host: WriterHost) { oracle.observeWriter(host) }

    func entryWritten(_ uri: StreamURI, _ entry: Entry) { oracle.entryWritten(uri, entry) }

    func claimInvoked(_ host: WriterHost) {
        oracle.claimInvoked(host)
        history.claimInvoked(host.uri, by: host.id)
    }

    func putInvoked(_ host: WriterHost, _ entry: Entry) {
        oracle.putInvoked(host, entry)
        history.putInvoked(entry, by: host.id)
    }

    func readAnswered(_ request: ReaderHost.ReadRequest, _ reply: Reply, reader: NodeID) {
        oracle.readAnswered(request, reply, reader: reader)
        switch reply {
        case .entry(let entry): history.read(request.uri, [entry], by: reader)
        case .entries(let entries): history.read(request.uri, entries, by: reader)
        default: break
        }
    }

    func hostileAnswered(
        _ expectation: HostileExpectation, _ what: String, _ reply: Reply, client: NodeID, server: NodeID
    ) {
        oracle.hostileAnswered(expectation, what, reply, client: client, server: server)
    }

    func claimed(_ uri: StreamURI, _ writer: WriterID, _ tail: Entry, by node: NodeID) {
        oracle.claimed(uri, writer, tail, by: node)
    }
}
