import WalleCore
import WalleEnvironment
import WalleSimulator

/// What the fuzzer knows of its target, so that many messages are nearly valid (they reach the
/// deep paths of a handler) before one field is bent.
public struct FuzzContext: Sendable {
    public var target: NodeID
    public var servers: [NodeID]
    public var streams: [StreamURI]
    /// Per stream: the committed entry and the last entry the target holds (or the fuzzer saw).
    public var committed: [StreamURI: Entry] = [:]
    public var tail: [StreamURI: Entry] = [:]
    public var writers: [StreamURI: WriterID] = [:]
    /// Requests the target sent to others, which a fuzzed answer may match.
    public var calls: [(target: NodeID, requestID: RequestID)] = []

    public init(target: NodeID, servers: [NodeID], streams: [StreamURI]) {
        self.target = target
        self.servers = servers
        self.streams = streams
    }
}

/// Generates hostile messages from a seed: every message type (public, internal, every reply),
/// fields drawn from edge values (0, 1, 2^32, 2^62, 2^63, 2^64−1, ...), values near what the
/// target holds, and valid values, from server, client and impossible identities.
public struct MessageFuzzer {
    private var random: SimRandom
    private var nextRequestID: RequestID = 1

    public init(seed: UInt64) { random = SimRandom.fork(seed: seed, "fuzz") }

    static let edges: [UInt64] = [
        0, 1, 2, 255, 1 << 31, (1 << 32) - 1, 1 << 32, (1 << 62) - 1, 1 << 62, (1 << 62) + 1, (1 << 63) - 1, 1 << 63,
        UInt64.max - 1, UInt64.max,
    ]
    static let leaseEdges: [Int64] = [0, -1, 1, 99, 100, 1000, 60_000, 60_001, Int64.max, Int64.min, Int64.min + 1]

    /// The next message and the identity it claims to come from.
    public mutating func next(_ context: FuzzContext) -> (message: Message, source: NodeID) {
        let kind = random.int(in: 0...14)
        if kind == 13, let call = context.calls.isEmpty ? nil : random.pick(context.calls) {
            // An answer to a call the target made, from the node it asked (or not).
            let source = random.chance(0.9) ? call.target : identity(context, server: random.chance(0.5))
            return (.response(call.requestID, reply(context)), source)
        }
        let uri = stream(context)
        let requestID = id(near: nextRequestID)
        nextRequestID &+= 1
        switch kind {
        case 0:
            return (
                .claimWriter(requestID, uri, writerAddress: address(), leaseMilliseconds: lease()),
                identity(context, server: false))
        case 1: return (.writerStatus(requestID, uri), identity(context, server: false))
        case 2:
            let (entry, marker) = entryAndMarker(context, uri)
            return (
                .putEntry(requestID, uri, committedID: marker.id, committedChecksum: marker.checksum, entry),
                identity(context, server: false))
        case 3:
            return (
                .pollStream(requestID, uri, pollEntryID: id(near: context.committed[uri]?.id ?? 0)),
                identity(context, server: false))
        case 4:
            let start = id(near: context.committed[uri]?.id ?? 0)
            return (
                .streamEntries(requestID, uri, start: start, end: id(near: start)),
                identity(context, server: false))
        case 5: return (.streamStatus(requestID, uri), identity(context, server: false))
        case 14: return (.topologyRequest(requestID, topologyRequest(context, uri)), identity(context, server: false))
        default:
            return (
                internalMessage(kind, context, uri, header(context, uri, requestID)),
                identity(context, server: true))
        }
    }

    private mutating func internalMessage(
        _ kind: Int, _ context: FuzzContext, _ uri: StreamURI, _ header: InternalHeader
    ) -> Message {
        switch kind {
        case 6:
            return .newWriter(
                header, writer(context, uri, newer: true), writerAddress: address(), leaseMilliseconds: lease())
        case 7: return .writerInfo(header)
        case 8:
            let (entry, marker) = entryAndMarker(context, uri)
            let kinds: [PutKind] = [.write, .write, .claimAlign, .claimCommit]
            let putKind = random.pick(kinds)
            let committed = putKind == .write || random.chance(0.3)
                ? marker : Marker(id: entry.id, checksum: entry.checksum)
            return .putEntryInternal(
                header, putKind, entry, committedID: committed.id, committedChecksum: committed.checksum)
        case 9: return .tailEntries(header)
        case 10: return .restampEntries(header, entries(context, uri, count: random.int(in: 0...6)))
        case 11:
            let start = id(near: context.committed[uri]?.id ?? 0)
            return .readEntries(header, start: start, end: id(near: start))
        default: return .writerInfo(header)
        }
    }

    // MARK: Fields

    /// A request to the manager: a server core refuses it (it runs none); the members are
    /// servers, strangers, clients, zero, repeated, or too many; an address is well formed, a
    /// host without a port, a port out of range, or bytes that are no host at all; a trim's first
    /// entry is an edge value or one near the start.
    private mutating func topologyRequest(_ context: FuzzContext, _ uri: StreamURI) -> TopologyRequest {
        let node = random.chance(0.7) ? random.pick(context.servers) : NodeID(random.pick(Self.edges))
        switch random.int(in: 0...5) {
        case 0: return .fetch
        case 5: return .trim(uri, firstEntryID: id(near: 1))
        case 1:
            let count = random.chance(0.9) ? random.int(in: 0...4) : random.int(in: 17...40)
            let members = (0..<count).map { _ in random.chance(0.8) ? random.pick(context.servers) : node }
            return .createStream(uri, members: members)
        case 2: return .addMember(uri, node)
        case 3: return .removeMember(uri, node)
        default:
            let addresses = ["127.0.0.1:7001", "fuzz.example:9", "[::1]:65535", "host", "h:0", "h:70000", "a b:1", ":1"]
            return .registerServer(node, address: random.pick(addresses))
        }
    }

    /// An edge value, a value near `base`, or anything.
    private mutating func id(near base: UInt64) -> UInt64 {
        switch random.int(in: 0...9) {
        case 0...3: return random.pick(Self.edges)
        case 4...8: return base &+ UInt64(bitPattern: random.int(in: Int64(-3)...3))
        default: return random.next()
        }
    }

    private mutating func lease() -> Int64 {
        random.chance(0.6) ? random.pick(Self.leaseEdges) : random.int(in: Int64(100)...5000)
    }

    private mutating func address() -> String {
        switch random.int(in: 0...4) {
        case 0: return ""
        case 1: return String(repeating: "x", count: random.int(in: 200...400))
        default: return "fuzz:\(random.int(in: 0...99))"
        }
    }

    private mutating func stream(_ context: FuzzContext) -> StreamURI {
        random.chance(0.9) ? random.pick(context.streams) : try! StreamURI("/fuzz/unknown")
    }

    /// A server, a client, or an identity no node should have (0, the target itself, 2^64−1).
    private mutating func identity(_ context: FuzzContext, server: Bool) -> NodeID {
        switch random.int(in: 0...9) {
        case 0...6: return server ? random.pick(context.servers) : NodeID(NodeID.clientBit | random.next())
        case 7, 8: return server ? NodeID(NodeID.clientBit | 7) : random.pick(context.servers)
        default: return random.pick([NodeID(0), context.target, NodeID(UInt64.max), NodeID(1 << 62)])
        }
    }

    private mutating func header(_ context: FuzzContext, _ uri: StreamURI, _ requestID: RequestID) -> InternalHeader {
        let target = random.chance(0.9) ? context.target : NodeID(random.pick(Self.edges))
        let version = random.chance(0.7) ? UInt64(random.int(in: 0...3)) : random.pick(Self.edges)
        return InternalHeader(requestID: requestID, stream: uri, target: target, streamVersion: version)
    }

    private mutating func writer(_ context: FuzzContext, _ uri: StreamURI, newer: Bool) -> WriterID {
        let current = context.writers[uri] ?? .zero
        switch random.int(in: 0...5) {
        case 0: return current
        case 1: return WriterID(ts: current.ts &+ 1, id: random.next())
        case 2: return .zero
        case 3: return WriterID(ts: random.pick(Self.edges), id: random.pick(Self.edges))
        default:
            return newer ? WriterID(ts: current.ts &+ UInt64(random.int(in: 1...1000)), id: random.next()) : current
        }
    }

    private mutating func data() -> [UInt8] {
        switch random.int(in: 0...49) {
        case 0: return [UInt8](repeating: 1, count: Entry.dataSizeMax + 1)
        case 1: return [UInt8](repeating: 2, count: Entry.dataSizeMax)
        case 2...10: return []
        default: return (0..<random.int(in: 1...40)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        }
    }

    /// Mostly the next entry of the stream, chained and under the current writer, so that
    /// puts are applied and the window grows; then one field bent.
    private mutating func entryAndMarker(_ context: FuzzContext, _ uri: StreamURI) -> (Entry, Marker) {
        let tail = context.tail[uri] ?? .zero
        let committed = context.committed[uri] ?? .zero
        let payload = data()
        var entry = Entry(
            id: tail.id &+ 1, writerID: context.writers[uri] ?? WriterID(ts: 1, id: 1),
            checksum: chainChecksum(previous: tail.checksum, data: payload), data: payload)
        var marker = Marker(id: committed.id, checksum: committed.checksum)
        // Zero to three independent bends, so that a heartbeat can also carry a marker near 2^64.
        for _ in 0..<random.int(in: 0...3) {
            switch random.int(in: 0...5) {
            case 0: entry.id = id(near: tail.id)
            case 1: entry.writerID = writer(context, uri, newer: false)
            case 2: entry.checksum = random.next()
            case 3: marker = Marker(id: id(near: tail.id), checksum: random.chance(0.5) ? tail.checksum : random.next())
            case 4: entry = Entry(id: 0, writerID: entry.writerID, checksum: 0, data: [])
            default: marker.id = random.pick(Self.edges)
            }
        }
        return (entry, marker)
    }

    private mutating func entries(_ context: FuzzContext, _ uri: StreamURI, count: Int) -> [Entry] {
        var previous = random.chance(0.7) ? (context.committed[uri] ?? .zero) : (context.tail[uri] ?? .zero)
        let writer = writer(context, uri, newer: random.chance(0.5))
        var result: [Entry] = []
        for _ in 0..<count {
            let payload = data().prefix(64)
            var entry = Entry(
                id: previous.id &+ 1, writerID: writer,
                checksum: chainChecksum(previous: previous.checksum, data: Array(payload)),
                data: Array(payload))
            if random.chance(0.1) { entry.id = id(near: entry.id) }
            if random.chance(0.1) { entry.checksum = random.next() }
            result.append(entry)
            previous = entry
        }
        return result
    }

    private mutating func info(_ context: FuzzContext, _ uri: StreamURI) -> WriterInfo {
        WriterInfo(
            writerID: writer(context, uri, newer: true), writerAddress: address(), leaseMilliseconds: lease(),
            remainingLeaseMilliseconds: lease(), streamVersion: random.chance(0.7) ? 1 : random.pick(Self.edges),
            server: random.pick(context.servers), committedID: id(near: context.committed[uri]?.id ?? 0),
            tailID: id(near: context.tail[uri]?.id ?? 0), tailWriterID: writer(context, uri, newer: false),
            hasGap: random.chance(0.2))
    }

    private mutating func reply(_ context: FuzzContext) -> Reply {
        let uri = stream(context)
        switch random.int(in: 0...7) {
        case 0: return .ok
        case 1: return .claimed(writer(context, uri, newer: true), tail: context.tail[uri] ?? .zero)
        case 2: return .writerInfo(info(context, uri))
        case 3: return .streamStatus((0..<random.int(in: 0...4)).map { _ in info(context, uri) })
        case 4: return .putAcknowledged(servers: Array(context.servers.prefix(random.int(in: 0...3))))
        case 5: return .entry(entryAndMarker(context, uri).0)
        case 6: return .entries(entries(context, uri, count: random.int(in: 0...8)))
        default:
            let code = random.pick(WalleError.Code.allCases)
            return .failed(WalleError(code, "fuzzed"))
        }
    }
}

/// A commit marker as the fuzzer bends it.
struct Marker {
    var id: EntryID
    var checksum: UInt64
}
