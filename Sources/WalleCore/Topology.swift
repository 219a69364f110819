public import WalleEnvironment

/// A cluster's topology: every stream's member list and version ([TOPO-*]). Version N is
/// stored as entry N of the root stream, so the topology has the same durability and
/// ordering as any log, and its manager is simply that stream's writer (§10).
public struct Topology: Hashable, Sendable {
    public var version: UInt64
    public var streams: [StreamURI: StreamTopology]

    public init(version: UInt64, streams: [StreamURI: StreamTopology]) {
        self.version = version
        self.streams = streams
    }

    public static let empty = Topology(version: 0, streams: [:])

    /// Encoded size limit: a topology must fit in one entry.
    public static let encodedSizeMax = Entry.dataSizeMax

    /// A fixed little-endian layout, streams sorted by URI, so equal topologies encode to
    /// equal bytes on every platform:
    /// `version u64, count u32, { uri-length u16, uri, stream-version u64, member-count u16,
    /// members u64... }`.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        append(version, to: &bytes)
        append32(UInt32(streams.count), to: &bytes)
        for uri in streams.keys.sorted() {
            let stream = streams[uri]!
            let name = Array(uri.rawValue.utf8)
            append16(UInt16(name.count), to: &bytes)
            bytes += name
            append(stream.version, to: &bytes)
            append16(UInt16(stream.members.count), to: &bytes)
            for member in stream.members { append(member.rawValue, to: &bytes) }
        }
        return bytes
    }

    /// Decodes entry data; Entry0 (empty data) is the empty topology at version 0.
    public static func decode(_ bytes: [UInt8], entryID: EntryID) throws(WalleError) -> Topology {
        if bytes.isEmpty && entryID == 0 { return .empty }
        var reader = ByteReader(bytes: bytes)
        let version = try reader.u64()
        guard version == entryID else {
            throw WalleError(.dataLoss, "topology entry \(entryID) holds version \(version) ([TOPO-1])")
        }
        var streams: [StreamURI: StreamTopology] = [:]
        let count = try reader.u32()
        for _ in 0..<count {
            let length = Int(try reader.u16())
            let name = String(decoding: try reader.bytes(length), as: UTF8.self)
            let uri = try StreamURI(name)
            let streamVersion = try reader.u64()
            let memberCount = Int(try reader.u16())
            var members: [NodeID] = []
            for _ in 0..<memberCount { members.append(NodeID(try reader.u64())) }
            streams[uri] = StreamTopology(version: streamVersion, members: members)
        }
        guard reader.isAtEnd else { throw WalleError(.dataLoss, "topology entry \(entryID) has trailing bytes") }
        return Topology(version: version, streams: streams)
    }

    private func append(_ value: UInt64, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    private func append32(_ value: UInt32, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    private func append16(_ value: UInt16, to bytes: inout [UInt8]) {
        bytes.append(UInt8(truncatingIfNeeded: value))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
    }
}

/// Reads the little-endian fields of `Topology.encoded`, failing on truncation.
struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    var isAtEnd: Bool { offset == bytes.count }

    mutating func bytes(_ count: Int) throws(WalleError) -> [UInt8] {
        guard count >= 0, offset + count <= bytes.count else {
            throw WalleError(.dataLoss, "topology is truncated at byte \(offset)")
        }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func u64() throws(WalleError) -> UInt64 {
        try bytes(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    mutating func u32() throws(WalleError) -> UInt32 {
        try bytes(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    mutating func u16() throws(WalleError) -> UInt16 {
        try bytes(2).reversed().reduce(UInt16(0)) { $0 << 8 | UInt16($1) }
    }
}
