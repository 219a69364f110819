public import WalleEnvironment

/// Why a frame was refused. The transport logs it and closes that connection only.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The length prefix is larger than `Wire.frameBytesMax`.
        case oversized
        /// The body ended before its fields did, or has bytes left over.
        case malformed
        /// The type byte names no message this version knows.
        case unknownType
        /// The first frame was not a hello, or a hello came later.
        case badHello
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind.rawValue): \(message)" }
}

/// What a connection carries: a hello first, then protocol messages.
public enum Frame: Sendable {
    /// The first frame on every connection, in both directions: who is speaking.
    case hello(NodeID)
    case message(Message)
}

/// The wire format of docs/wire-format.md: every frame is `length u32` (little-endian, the
/// body's size) then the body, `type u8` followed by the fields of that type. Integers are
/// little-endian, strings are `u16 length + UTF-8`, lists are a count then the items. Nothing
/// here depends on Swift: another language implements it from the document.
public enum Wire {
    /// Version 1 of the format; a hello carries it and a node refuses any other.
    public static let version: UInt16 = 1
    /// "WALL" in ASCII: lets a node tell a Walle peer from something else on the port.
    public static let helloMagic: UInt32 = 0x4C4C_4157
    /// A frame body may not exceed this. The largest legal message is a claim's re-stamp of
    /// every uncommitted byte a stream may hold (64 MiB by default) or a 16 MiB read answer;
    /// anything bigger is refused before it is buffered.
    public static let frameBytesMax = 80 << 20
    /// Before the hello only a hello may come (15 bytes): a connection that has not said who
    /// it is cannot make a node buffer more than this.
    public static let helloFrameBytesMax = 64
    /// A client may send only public requests; the largest is a PutEntry of `Entry.dataSizeMax`
    /// bytes with its header and stream name (well under 64 KiB).
    public static let clientFrameBytesMax = Entry.dataSizeMax + (64 << 10)
    /// Error messages longer than this are cut (they are for people, not for machines).
    static let errorMessageBytesMax = 4096

    /// The frame with its length prefix.
    public static func encode(_ frame: Frame) -> [UInt8] {
        var body = ByteWriter(capacity: 64)
        body.u32(0)  // length, filled in below
        switch frame {
        case .hello(let node):
            body.u8(FrameType.hello.rawValue)
            body.u32(helloMagic)
            body.u16(version)
            body.u64(node.rawValue)
        case .message(let message):
            encode(message, into: &body)
        }
        var bytes = body.bytes
        let length = UInt32(bytes.count - 4)
        for index in 0..<4 { bytes[index] = UInt8(truncatingIfNeeded: length >> UInt32(8 * index)) }
        return bytes
    }

    /// Decodes one frame body (without its length prefix).
    public static func decode(_ body: [UInt8]) throws(WireError) -> Frame {
        guard let first = body.first else { throw WireError(.malformed, "empty frame") }
        guard let type = FrameType(rawValue: first) else {
            throw WireError(.unknownType, "frame type \(first) is unknown")
        }
        var reader = ByteReader(bytes: body, what: "\(type) frame")
        do {
            _ = try reader.u8()
            let frame = try decode(type, &reader)
            try reader.finish()
            return frame
        } catch {
            throw WireError(.malformed, error.message)
        }
    }
}

/// One byte per message kind. Numbers are never reused: an old node refuses a new kind.
enum FrameType: UInt8, CustomStringConvertible {
    case hello = 1
    case claimWriter = 10
    case writerStatus = 11
    case putEntry = 12
    case pollStream = 13
    case streamEntries = 14
    case streamStatus = 15
    case topologyRequest = 16
    case newWriter = 20
    case writerInfo = 21
    case putEntryInternal = 22
    case tailEntries = 23
    case restampEntries = 24
    case readEntries = 25
    case response = 30

    var description: String { "type-\(rawValue)" }
}

enum ReplyType: UInt8 {
    case ok = 0
    case claimed = 1
    case writerInfo = 2
    case streamStatus = 3
    case putAcknowledged = 4
    case entry = 5
    case entries = 6
    case failed = 7
}

// MARK: Encoding

extension Wire {
    static func encode(_ message: Message, into w: inout ByteWriter) {
        switch message {
        case .claimWriter(let r, let uri, let address, let lease):
            w.u8(FrameType.claimWriter.rawValue); w.u64(r); w.string16(uri.rawValue)
            w.string16(address); w.u64(UInt64(bitPattern: lease))
        case .writerStatus(let r, let uri):
            w.u8(FrameType.writerStatus.rawValue); w.u64(r); w.string16(uri.rawValue)
        case .putEntry(let r, let uri, let committedID, let committedChecksum, let entry):
            w.u8(FrameType.putEntry.rawValue); w.u64(r); w.string16(uri.rawValue)
            w.u64(committedID); w.u64(committedChecksum); w.entry(entry)
        case .pollStream(let r, let uri, let pollID):
            w.u8(FrameType.pollStream.rawValue); w.u64(r); w.string16(uri.rawValue); w.u64(pollID)
        case .streamEntries(let r, let uri, let start, let end):
            w.u8(FrameType.streamEntries.rawValue); w.u64(r); w.string16(uri.rawValue)
            w.u64(start); w.u64(end)
        case .streamStatus(let r, let uri):
            w.u8(FrameType.streamStatus.rawValue); w.u64(r); w.string16(uri.rawValue)
        case .topologyRequest(let r, let request):
            w.u8(FrameType.topologyRequest.rawValue); w.u64(r); w.topologyRequest(request)
        case .newWriter(let h, let writer, let address, let lease):
            w.u8(FrameType.newWriter.rawValue); w.header(h); w.writerID(writer)
            w.string16(address); w.u64(UInt64(bitPattern: lease))
        case .writerInfo(let h):
            w.u8(FrameType.writerInfo.rawValue); w.header(h)
        case .putEntryInternal(let h, let kind, let entry, let committedID, let committedChecksum):
            w.u8(FrameType.putEntryInternal.rawValue); w.header(h); w.u8(kind.wireValue)
            w.entry(entry); w.u64(committedID); w.u64(committedChecksum)
        case .tailEntries(let h):
            w.u8(FrameType.tailEntries.rawValue); w.header(h)
        case .restampEntries(let h, let entries):
            w.u8(FrameType.restampEntries.rawValue); w.header(h); w.entries(entries)
        case .readEntries(let h, let start, let end):
            w.u8(FrameType.readEntries.rawValue); w.header(h); w.u64(start); w.u64(end)
        case .response(let r, let reply):
            w.u8(FrameType.response.rawValue); w.u64(r); w.reply(reply)
        }
    }
}

extension PutKind {
    var wireValue: UInt8 {
        switch self {
        case .write: return 0
        case .claimAlign: return 1
        case .claimCommit: return 2
        }
    }
}

/// The kind byte of a TopologyRequest. Numbers are never reused.
enum TopologyRequestKind {
    static let fetch: UInt8 = 0
    static let createStream: UInt8 = 1
    static let addMember: UInt8 = 2
    static let removeMember: UInt8 = 3
    static let registerServer: UInt8 = 4
    static let trim: UInt8 = 5
}

extension ByteWriter {
    mutating func topologyRequest(_ request: TopologyRequest) {
        switch request {
        case .fetch:
            u8(TopologyRequestKind.fetch)
        case .createStream(let uri, let members):
            u8(TopologyRequestKind.createStream); string16(uri.rawValue)
            u16(UInt16(truncatingIfNeeded: members.count))
            for member in members.prefix(Int(UInt16.max)) { u64(member.rawValue) }
        case .addMember(let uri, let node):
            u8(TopologyRequestKind.addMember); string16(uri.rawValue); u64(node.rawValue)
        case .removeMember(let uri, let node):
            u8(TopologyRequestKind.removeMember); string16(uri.rawValue); u64(node.rawValue)
        case .registerServer(let node, let address):
            u8(TopologyRequestKind.registerServer); u64(node.rawValue); string16(address)
        case .trim(let uri, let first):
            u8(TopologyRequestKind.trim); string16(uri.rawValue); u64(first)
        }
    }

    mutating func writerID(_ writer: WriterID) {
        u64(writer.ts)
        u64(writer.id)
    }

    mutating func entry(_ entry: Entry) {
        u64(entry.id)
        writerID(entry.writerID)
        u64(entry.checksum)
        u32(UInt32(entry.data.count))
        raw(entry.data)
    }

    mutating func entries(_ entries: [Entry]) {
        u32(UInt32(entries.count))
        for item in entries { entry(item) }
    }

    mutating func header(_ header: InternalHeader) {
        u64(header.requestID)
        string16(header.stream.rawValue)
        u64(header.target.rawValue)
        u64(header.streamVersion)
    }

    mutating func info(_ info: WriterInfo) {
        writerID(info.writerID)
        string16(info.writerAddress)
        u64(UInt64(bitPattern: info.leaseMilliseconds))
        u64(UInt64(bitPattern: info.remainingLeaseMilliseconds))
        u64(info.streamVersion)
        u64(info.server.rawValue)
        u64(info.committedID)
        u64(info.tailID)
        writerID(info.tailWriterID)
        u8(info.hasGap ? 1 : 0)
    }

    mutating func reply(_ reply: Reply) {
        switch reply {
        case .ok:
            u8(ReplyType.ok.rawValue)
        case .claimed(let writer, let tail):
            u8(ReplyType.claimed.rawValue); writerID(writer); entry(tail)
        case .writerInfo(let item):
            u8(ReplyType.writerInfo.rawValue); info(item)
        case .streamStatus(let infos):
            u8(ReplyType.streamStatus.rawValue); u16(UInt16(infos.count))
            for item in infos { info(item) }
        case .putAcknowledged(let servers):
            u8(ReplyType.putAcknowledged.rawValue); u16(UInt16(servers.count))
            for server in servers { u64(server.rawValue) }
        case .entry(let item):
            u8(ReplyType.entry.rawValue); entry(item)
        case .entries(let items):
            u8(ReplyType.entries.rawValue); entries(items)
        case .failed(let error):
            u8(ReplyType.failed.rawValue); u8(error.code.wireValue)
            string16(String(decoding: error.message.utf8.prefix(Wire.errorMessageBytesMax), as: UTF8.self))
        }
    }
}

extension WalleError.Code {
    /// Stable numbers: the order of `allCases` is not part of the format.
    static let wireValues: [WalleError.Code: UInt8] = [
        .invalidArgument: 1, .failedPrecondition: 2, .notFound: 3, .outOfRange: 4, .dataLoss: 5,
        .internal: 6, .unavailable: 7, .resourceExhausted: 8, .deadlineExceeded: 9, .permissionDenied: 10,
    ]

    var wireValue: UInt8 { Self.wireValues[self]! }
}

// MARK: Decoding

extension Wire {
    static func decode(_ type: FrameType, _ r: inout ByteReader) throws(WalleError) -> Frame {
        switch type {
        case .hello:
            let magic = try r.u32()
            let version = try r.u16()
            guard magic == helloMagic else {
                throw WalleError(.invalidArgument, "hello has magic \(magic), not a Walle peer")
            }
            guard version == Wire.version else {
                throw WalleError(
                    .invalidArgument, "hello speaks wire version \(version), this node speaks \(Wire.version)")
            }
            return .hello(NodeID(try r.u64()))
        case .claimWriter:
            return .message(.claimWriter(
                try r.u64(), try r.uri(), writerAddress: try r.string16(),
                leaseMilliseconds: Int64(bitPattern: try r.u64())))
        case .writerStatus:
            return .message(.writerStatus(try r.u64(), try r.uri()))
        case .putEntry:
            return .message(.putEntry(
                try r.u64(), try r.uri(), committedID: try r.u64(), committedChecksum: try r.u64(), try r.entry()))
        case .pollStream:
            return .message(.pollStream(try r.u64(), try r.uri(), pollEntryID: try r.u64()))
        case .streamEntries:
            return .message(.streamEntries(try r.u64(), try r.uri(), start: try r.u64(), end: try r.u64()))
        case .streamStatus:
            return .message(.streamStatus(try r.u64(), try r.uri()))
        case .topologyRequest:
            return .message(.topologyRequest(try r.u64(), try r.topologyRequest()))
        default:
            return .message(try decodeInternal(type, &r))
        }
    }

    private static func decodeInternal(_ type: FrameType, _ r: inout ByteReader) throws(WalleError) -> Message {
        switch type {
        case .newWriter:
            return .newWriter(
                try r.header(), try r.writerID(), writerAddress: try r.string16(),
                leaseMilliseconds: Int64(bitPattern: try r.u64()))
        case .writerInfo:
            return .writerInfo(try r.header())
        case .putEntryInternal:
            let header = try r.header()
            let kind = try r.putKind()
            return .putEntryInternal(
                header, kind, try r.entry(), committedID: try r.u64(), committedChecksum: try r.u64())
        case .tailEntries:
            return .tailEntries(try r.header())
        case .restampEntries:
            return .restampEntries(try r.header(), try r.entries())
        case .readEntries:
            return .readEntries(try r.header(), start: try r.u64(), end: try r.u64())
        case .response:
            return .response(try r.u64(), try r.reply())
        case .hello, .claimWriter, .writerStatus, .putEntry, .pollStream, .streamEntries, .streamStatus,
            .topologyRequest:
            preconditionFailure("public frames are decoded by the caller")
        }
    }
}

extension ByteReader {
    mutating func uri() throws(WalleError) -> StreamURI { try StreamURI(try string16()) }

    mutating func writerID() throws(WalleError) -> WriterID { WriterID(ts: try u64(), id: try u64()) }

    mutating func entry() throws(WalleError) -> Entry {
        let id = try u64()
        let writer = try writerID()
        let checksum = try u64()
        let count = Int(try u32())
        guard count <= Entry.dataSizeMax else {
            throw WalleError(.invalidArgument, "entry \(id) has \(count) bytes, limit is \(Entry.dataSizeMax)")
        }
        return Entry(id: id, writerID: writer, checksum: checksum, data: try bytes(count))
    }

    /// A count can claim more items than the frame holds: each item is at least
    /// `itemBytesMin`, so a count that cannot fit is refused before anything is reserved.
    mutating func count(_ width: Int, itemBytesMin: Int, _ what: String) throws(WalleError) -> Int {
        let count = width == 2 ? Int(try u16()) : Int(try u32())
        guard count * itemBytesMin <= remaining else {
            throw WalleError(.invalidArgument, "\(what) count \(count) does not fit in the \(remaining) bytes left")
        }
        return count
    }

    mutating func entries() throws(WalleError) -> [Entry] {
        var result: [Entry] = []
        for _ in 0..<(try count(4, itemBytesMin: 36, "entry")) { result.append(try entry()) }
        return result
    }

    mutating func header() throws(WalleError) -> InternalHeader {
        InternalHeader(requestID: try u64(), stream: try uri(), target: NodeID(try u64()), streamVersion: try u64())
    }

    /// A kind byte, then the kind's fields. The member count is bounded by what the frame
    /// holds; the boundary then checks it against the topology's limit.
    mutating func topologyRequest() throws(WalleError) -> TopologyRequest {
        let kind = try u8()
        switch kind {
        case TopologyRequestKind.fetch: return .fetch
        case TopologyRequestKind.createStream:
            let uri = try uri()
            var members: [NodeID] = []
            for _ in 0..<(try count(2, itemBytesMin: 8, "member")) { members.append(NodeID(try u64())) }
            return .createStream(uri, members: members)
        case TopologyRequestKind.addMember: return .addMember(try uri(), NodeID(try u64()))
        case TopologyRequestKind.removeMember: return .removeMember(try uri(), NodeID(try u64()))
        case TopologyRequestKind.registerServer: return .registerServer(NodeID(try u64()), address: try string16())
        case TopologyRequestKind.trim: return .trim(try uri(), firstEntryID: try u64())
        default: throw WalleError(.invalidArgument, "topology request kind \(kind) is unknown")
        }
    }

    mutating func putKind() throws(WalleError) -> PutKind {
        let value = try u8()
        switch value {
        case 0: return .write
        case 1: return .claimAlign
        case 2: return .claimCommit
        default: throw WalleError(.invalidArgument, "put kind \(value) is unknown")
        }
    }

    mutating func info() throws(WalleError) -> WriterInfo {
        let writer = try writerID()
        let address = try string16()
        let lease = Int64(bitPattern: try u64())
        let remaining = Int64(bitPattern: try u64())
        let version = try u64()
        let server = NodeID(try u64())
        let committed = try u64()
        let tail = try u64()
        let tailWriter = try writerID()
        let gap = try u8()
        guard gap <= 1 else { throw WalleError(.invalidArgument, "has-gap flag is \(gap), not 0 or 1") }
        return WriterInfo(
            writerID: writer, writerAddress: address, leaseMilliseconds: lease,
            remainingLeaseMilliseconds: remaining, streamVersion: version, server: server,
            committedID: committed, tailID: tail, tailWriterID: tailWriter, hasGap: gap == 1)
    }

    mutating func reply() throws(WalleError) -> Reply {
        let value = try u8()
        guard let type = ReplyType(rawValue: value) else {
            throw WalleError(.invalidArgument, "reply type \(value) is unknown")
        }
        switch type {
        case .ok: return .ok
        case .claimed: return .claimed(try writerID(), tail: try entry())
        case .writerInfo: return .writerInfo(try info())
        case .streamStatus:
            var infos: [WriterInfo] = []
            for _ in 0..<(try count(2, itemBytesMin: 75, "status")) { infos.append(try info()) }
            return .streamStatus(infos)
        case .putAcknowledged:
            var servers: [NodeID] = []
            for _ in 0..<(try count(2, itemBytesMin: 8, "server")) { servers.append(NodeID(try u64())) }
            return .putAcknowledged(servers: servers)
        case .entry: return .entry(try entry())
        case .entries: return .entries(try entries())
        case .failed:
            let code = try u8()
            guard let known = WalleError.Code.wireValues.first(where: { $0.value == code })?.key else {
                throw WalleError(.invalidArgument, "error code \(code) is unknown")
            }
            return .failed(WalleError(known, try string16()))
        }
    }
}
