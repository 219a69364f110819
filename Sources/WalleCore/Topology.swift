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
        var writer = ByteWriter()
        writer.u64(version)
        writer.u32(UInt32(streams.count))
        for uri in streams.keys.sorted() {
            let stream = streams[uri]!
            writer.string16(uri.rawValue)
            writer.u64(stream.version)
            writer.u16(UInt16(stream.members.count))
            for member in stream.members { writer.u64(member.rawValue) }
        }
        return writer.bytes
    }

    /// Decodes entry data; Entry0 (empty data) is the empty topology at version 0.
    public static func decode(_ bytes: [UInt8], entryID: EntryID) throws(WalleError) -> Topology {
        if bytes.isEmpty && entryID == 0 { return .empty }
        var reader = ByteReader(bytes: bytes, what: "topology entry \(entryID)")
        let version = try reader.u64()
        guard version == entryID else {
            throw WalleError(.dataLoss, "topology entry \(entryID) holds version \(version) ([TOPO-1])")
        }
        var streams: [StreamURI: StreamTopology] = [:]
        let count = try reader.u32()
        for _ in 0..<count {
            let uri = try StreamURI(try reader.string16())
            let streamVersion = try reader.u64()
            let memberCount = Int(try reader.u16())
            var members: [NodeID] = []
            for _ in 0..<memberCount { members.append(NodeID(try reader.u64())) }
            streams[uri] = StreamTopology(version: streamVersion, members: members)
        }
        try reader.finish()
        return Topology(version: version, streams: streams)
    }
}
