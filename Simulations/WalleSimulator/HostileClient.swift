import WalleCore
import WalleEnvironment

/// What a hostile request must get back. The oracle checks every answer against it.
enum HostileExpectation: Equatable {
    /// Invalid by construction: any success is a violation ("hostile-acknowledged"). With
    /// codes, the refusal must carry one of them.
    case refused(Set<WalleError.Code>?)
    /// A request a real client may also send (a replay, a probe): any answer.
    case anything
}

/// A client that sends what well-behaved clients never do (docs/simulation.md, "Hostile
/// clients"; WS-7, WS-9, WS-10): out-of-range and malformed fields, server-to-server messages
/// from a client, forged puts and commit markers under the current writer's id, stale and
/// future writer ids, replays of honest clients' requests, reversed and huge read ranges,
/// unknown streams. It learns writer ids and tails the way a real attacker would, through
/// WriterStatus.
///
/// It stops at the heal, like every fault. Its requests are bounded: at most
/// `pendingMax` wait for an answer, and it remembers a few writer ids per stream.
final class HostileClient {
    let id: NodeID
    private var random: SimRandom
    private let agenda: Agenda
    private let trace: Trace
    private let counters: SimCounters
    private let actionGapMax: Duration
    private let streams: [StreamURI]
    /// Unowned: the cluster holds its hostile clients (see `ReaderHost.cluster`).
    private unowned let cluster: Cluster
    private let network: SimNetwork
    private let overheard: OverheardRequests
    private unowned let observer: any ClientObserver
    /// Its own requests count from 2^48; replays keep the small ids honest clients use, so an
    /// answer never lands on the wrong request.
    private var nextRequestID: RequestID = 1 << 48
    private var pending: [RequestID: Request] = [:]
    /// What WriterStatus said last, per stream: the writer ids seen (newest last) and a tail.
    private var learned: [StreamURI: (writers: [WriterID], committed: EntryID, tail: EntryID)] = [:]
    private(set) var stopped = false

    static let pendingMax = 256
    static let writersRemembered = 4
    static let answerWaitMax: Int64 = 10_000_000_000
    /// Values that break naive arithmetic: 0, 1, 2^32, the id bound and just above, 2^63, 2^64−1.
    static let edgeIDs: [UInt64] = [
        0, 1, 1 << 32, ProtocolBounds.entryIDMax, ProtocolBounds.entryIDMax + 1, 1 << 63, UInt64.max - 1, UInt64.max,
    ]

    struct Request {
        var expectation: HostileExpectation
        var what: String
        var uri: StreamURI
        /// A read whose answer the read oracle checks like any reader's.
        var read: ReaderHost.ReadRequest?
        var sentAt: Int64
    }

    init(
        id: NodeID, random: SimRandom, agenda: Agenda, trace: Trace, counters: SimCounters, actionGapMax: Duration,
        streams: [StreamURI], cluster: Cluster, network: SimNetwork, overheard: OverheardRequests,
        observer: any ClientObserver
    ) {
        self.id = id
        self.random = random
        self.agenda = agenda
        self.trace = trace
        self.counters = counters
        self.actionGapMax = actionGapMax
        self.streams = streams
        self.cluster = cluster
        self.network = network
        self.overheard = overheard
        self.observer = observer
    }

    func stop() { stopped = true }

    /// One hostile request, then the next one after a drawn gap.
    func act() {
        guard !stopped else { return }
        let gap = random.int(in: Int64(1_000_000)...max(1_000_000, actionGapMax.nanoseconds))
        agenda.schedule(at: agenda.trueNow + gap, .hostile(id))
        if pending.count >= Self.pendingMax {
            // Requests to a server that was down or cut off are never answered: forget them.
            pending = pending.filter { agenda.trueNow - $0.value.sentAt < Self.answerWaitMax }
        }
        guard pending.count < Self.pendingMax,
            let uri = streams.isEmpty ? nil : random.pick(streams)
        else {
            return
        }
        let servers = cluster.servers.filter { !$0.isRetired }.map(\.id)
        let target = random.pick(servers)
        switch random.int(in: 0...9) {
        case 0: send(.writerStatus(requestID(), uri), to: target, .anything, "probe")
        case 1: badClaim(uri, to: target)
        case 2: serverMessage(uri, to: target)
        case 3, 4: forgedPut(uri, to: target)
        case 5, 6: forgedMarker(uri, to: target)
        case 7: badRead(uri, to: target)
        case 8: replay(to: target)
        default: unknownStream(to: target)
        }
    }

    private func requestID() -> RequestID {
        nextRequestID += 1
        return nextRequestID
    }

    private func send(
        _ message: Message, to target: NodeID, _ expectation: HostileExpectation, _ what: String,
        read: ReaderHost.ReadRequest? = nil
    ) {
        guard let uri = message.stream else { preconditionFailure("hostile clients send requests") }
        guard pending[message.requestID] == nil else { return }
        pending[message.requestID] = Request(
            expectation: expectation, what: what, uri: uri, read: read, sentAt: agenda.trueNow)
        counters.count(.hostileRequest)
        trace.line(agenda.trueNow, "\(id.short) hostile \(what): \(message)")
        network.send(message, from: id, to: target)
    }

    // MARK: The requests

    /// Leases out of bounds or 0, empty or overlong addresses ([CLAIM-0], WS-8).
    private func badClaim(_ uri: StreamURI, to target: NodeID) {
        let leases: [Int64] = [0, -1, 99, 60_001, Int64.max, Int64.min]
        if random.chance(0.5) {
            let lease = random.pick(leases)
            send(.claimWriter(requestID(), uri, writerAddress: "hostile", leaseMilliseconds: lease), to: target,
                 .refused([.invalidArgument]), "claim with lease \(lease)ms")
        } else {
            let address = random.chance(0.5)
                ? "" : String(repeating: "a", count: ProtocolBounds.writerAddressBytesMax + 1)
            send(.claimWriter(requestID(), uri, writerAddress: address, leaseMilliseconds: 1000), to: target,
                 .refused([.invalidArgument]), "claim with a \(address.utf8.count)-byte address")
        }
    }

    /// Every server-to-server message, from a client: refused for its role whatever it holds.
    private func serverMessage(_ uri: StreamURI, to target: NodeID) {
        let header = InternalHeader(
            requestID: requestID(), stream: uri, target: target, streamVersion: random.pick(Self.edgeIDs))
        let writer = WriterID(ts: random.next(), id: random.next())
        let entry = Entry(id: random.pick(Self.edgeIDs), writerID: writer, checksum: random.next(), data: [1])
        let message: Message
        switch random.int(in: 0...5) {
        case 0: message = .newWriter(header, writer, writerAddress: "impostor:1", leaseMilliseconds: 0)
        case 1: message = .writerInfo(header)
        case 2:
            message = .putEntryInternal(
                header, .claimCommit, entry, committedID: entry.id, committedChecksum: entry.checksum)
        case 3: message = .tailEntries(header)
        case 4: message = .restampEntries(header, [entry])
        default: message = .readEntries(header, start: 0, end: UInt64.max)
        }
        send(message, to: target, .refused([.permissionDenied]), "server message from a client")
    }

    /// A put whose entry cannot be the writer's: a random checksum (it never chains), edge ids,
    /// the zero, a stale, the current or a future writer id, a marker at or above its entry
    /// (WS-10), oversized or zero-length data.
    private func forgedPut(_ uri: StreamURI, to target: NodeID) {
        let known = learned[uri]
        var id: EntryID = random.chance(0.5)
            ? random.pick(Self.edgeIDs) : (known?.tail ?? 0) + EntryID(random.int(in: 0...4))
        if id == 0 { id = 1 }
        let data: [UInt8] = random.chance(0.02)
            ? [UInt8](repeating: 7, count: Entry.dataSizeMax + 1)
            : [UInt8](repeating: 9, count: random.int(in: 0...16))
        let writer = pickWriter(uri, allowZero: true)
        let marker: EntryID = random.chance(0.3) ? id &+ UInt64(random.int(in: 0...1)) : (known?.committed ?? 0)
        let entry = Entry(id: id, writerID: writer, checksum: random.next(), data: data)
        send(.putEntry(requestID(), uri, committedID: marker, committedChecksum: random.next(), entry),
             to: target, .refused(nil), "forged put e\(id) by \(writer) marker \(marker)")
    }

    /// A heartbeat under a writer id it learned (often the current one) whose commit marker
    /// names an id near the stream's tail with a checksum of its own making. Members must
    /// refuse it wherever they hold an entry there of a writer not older than the heartbeat's;
    /// the oracle checks that at each member (`Oracle.heartbeatDelivered`).
    private func forgedMarker(_ uri: StreamURI, to target: NodeID) {
        guard let known = learned[uri], let writer = known.writers.last else {
            send(.writerStatus(requestID(), uri), to: target, .anything, "probe")
            return
        }
        let base = random.chance(0.5) ? known.committed : known.tail
        let markerID = base + EntryID(random.int(in: 0...3))
        let beat = Entry(id: 0, writerID: writer, checksum: 0, data: [])
        send(.putEntry(requestID(), uri, committedID: markerID, committedChecksum: random.next(), beat),
             to: target, .anything, "forged commit marker \(markerID) by \(writer)")
    }

    /// Reversed and out-of-bound ranges, huge polls; sometimes a plain read, checked like any.
    private func badRead(_ uri: StreamURI, to target: NodeID) {
        let a = random.pick(Self.edgeIDs)
        let b = random.pick(Self.edgeIDs)
        switch random.int(in: 0...2) {
        case 0 where a >= b || a > ProtocolBounds.entryIDMax:
            send(.streamEntries(requestID(), uri, start: a, end: b), to: target,
                 .refused([.invalidArgument]), "read [\(a),\(b))")
        case 1 where a > ProtocolBounds.entryIDMax:
            send(.pollStream(requestID(), uri, pollEntryID: a), to: target, .refused([.invalidArgument]), "poll \(a)")
        default:
            let start = EntryID(random.int(in: 0...Int64(learned[uri]?.committed ?? 0) + 2))
            let request = ReaderHost.ReadRequest(
                uri: uri, server: target, kind: .entries(start: start, end: UInt64.max))
            send(.streamEntries(requestID(), uri, start: start, end: UInt64.max), to: target,
                 .anything, "read to the end", read: request)
        }
    }

    /// An honest client's request, sent again under this client's id (a replayed message).
    private func replay(to target: NodeID) {
        guard let message = overheard.messages.isEmpty ? nil : random.pick(overheard.messages) else { return }
        send(message, to: target, .anything, "replay")
    }

    private func unknownStream(to target: NodeID) {
        let uri = try! StreamURI("/hostile/no_such_stream_\(random.int(in: 0...3))")
        send(.writerStatus(requestID(), uri), to: target, .refused([.notFound]), "unknown stream")
    }

    private func pickWriter(_ uri: StreamURI, allowZero: Bool) -> WriterID {
        let seen = learned[uri]?.writers ?? []
        switch random.int(in: 0...3) {
        case 0 where allowZero: return .zero
        case 1: return WriterID(ts: random.pick([ProtocolBounds.writerTimestampMax, UInt64.max, 1]), id: random.next())
        default: return seen.isEmpty ? WriterID(ts: 1, id: 1) : random.pick(seen)
        }
    }

    // MARK: Answers

    func receive(_ message: Message, from source: NodeID) {
        guard case .response(let requestID, let reply) = message,
            let request = pending.removeValue(forKey: requestID)
        else {
            return
        }
        observer.hostileAnswered(request.expectation, request.what, reply, client: id, server: source)
        if let read = request.read { observer.readAnswered(read, reply, reader: id) }
        switch reply {
        case .writerInfo(let info):
            learn(info, request.uri)
        case .claimed(let writer, let tail):
            // A replayed claim really claims: its tail is committed and it fences older writers.
            observer.claimed(request.uri, writer, tail, by: id)
        default:
            break
        }
    }

    private func learn(_ info: WriterInfo, _ uri: StreamURI) {
        var entry = learned[uri] ?? ([], 0, 0)
        if !info.writerID.isZero, entry.writers.last != info.writerID {
            entry.writers.append(info.writerID)
            if entry.writers.count > Self.writersRemembered { entry.writers.removeFirst() }
        }
        entry.committed = info.committedID
        entry.tail = info.tailID
        learned[uri] = entry
    }
}

/// The last public requests honest clients sent, for hostile clients to replay: a ring of
/// `countMax`, so it holds what is recent, never what has passed.
final class OverheardRequests {
    static let countMax = 64
    private(set) var messages: [Message] = []
    private var next = 0

    func record(_ message: Message) {
        if messages.count < Self.countMax {
            messages.append(message)
        } else {
            messages[next] = message
        }
        next = (next + 1) % Self.countMax
    }
}
