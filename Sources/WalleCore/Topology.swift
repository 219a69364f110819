public import WalleEnvironment

/// A cluster's topology: every stream's member list and version ([TOPO-*]). Version N is
/// stored as entry N of the root stream, so the topology has the same durability and
/// ordering as any log, and its manager is simply that stream's writer (docs/protocol.md,
/// "Topology").
public struct Topology: Hashable, Sendable {
    public var version: UInt64
    public var streams: [StreamURI: StreamTopology]
    /// Each registered server's address, `HOST:PORT` as it registered it (`[MEM-1]`): where
    /// servers and clients reach it. A `--peers` or `--cluster` list is only where to look first.
    public var servers: [NodeID: ServerAddress]
    /// Each trimmed stream's first entry (`walle trim`): members delete what lies below it and
    /// serve nothing there. A stream not listed is not trimmed (its first entry is 0). Kept
    /// apart from `StreamTopology`, which members compare to tell a membership change: a trim
    /// moves no stream version.
    public var firstEntryIDs: [StreamURI: EntryID]

    public init(
        version: UInt64, streams: [StreamURI: StreamTopology], servers: [NodeID: ServerAddress] = [:],
        firstEntryIDs: [StreamURI: EntryID] = [:]
    ) {
        self.version = version
        self.streams = streams
        self.servers = servers
        self.firstEntryIDs = firstEntryIDs
    }

    /// The stream's first entry: 0 until it is trimmed.
    public func firstEntryID(of uri: StreamURI) -> EntryID { firstEntryIDs[uri] ?? 0 }

    public static let empty = Topology(version: 0, streams: [:])

    /// Encoded size limit: a topology must fit in one entry.
    public static let encodedSizeMax = Entry.dataSizeMax

    /// A fixed little-endian layout, streams sorted by URI and servers by id, so equal
    /// topologies encode to equal bytes on every platform:
    /// `version u64, count u32, { uri-length u16, uri, stream-version u64, member-count u16,
    /// members u64... }`, then, only when a server has registered or a stream is trimmed,
    /// `server-count u32, { id u64, address-length u16, address }`, then, only when a stream
    /// is trimmed, `trim-count u32, { uri-length u16, uri, first-entry u64 }`. A topology
    /// without either encodes as before the tables existed; the server count is 0 only when a
    /// trim table follows.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter()
        writer.u64(version)
        writer.u32(UInt32(streams.count))
        // Sorted pairs, not keys then lookups: the same order, and no lookup that could miss.
        for (uri, stream) in streams.sorted(by: { $0.key < $1.key }) {
            writer.string16(uri.rawValue)
            writer.u64(stream.version)
            writer.u16(UInt16(stream.members.count))
            for member in stream.members { writer.u64(member.rawValue) }
        }
        if !servers.isEmpty || !firstEntryIDs.isEmpty {
            writer.u32(UInt32(servers.count))
            for (id, address) in servers.sorted(by: { $0.key < $1.key }) {
                writer.u64(id.rawValue)
                writer.string16(address.description)
            }
        }
        if !firstEntryIDs.isEmpty {
            writer.u32(UInt32(firstEntryIDs.count))
            for (uri, first) in firstEntryIDs.sorted(by: { $0.key < $1.key }) {
                writer.string16(uri.rawValue)
                writer.u64(first)
            }
        }
        return writer.bytes
    }

    /// `encoded().count` without encoding: the manager checks every change against the entry
    /// size, and encoding a topology near 1 MiB for each queued change was work done twice.
    public var encodedByteCount: Int {
        let streamBytes = streams.reduce(8 + 4) { sum, pair in
            sum + Self.encodedByteCount(pair.key, members: pair.value.members.count)
        }
        guard !servers.isEmpty || !firstEntryIDs.isEmpty else { return streamBytes }
        let serverBytes = servers.values.reduce(streamBytes + 4) { sum, address in
            sum + Self.encodedByteCount(address: address)
        }
        guard !firstEntryIDs.isEmpty else { return serverBytes }
        return firstEntryIDs.keys.reduce(serverBytes + 4) { sum, uri in sum + Self.encodedByteCount(trimOf: uri) }
    }

    /// The bytes one trimmed stream takes in the trim table.
    static func encodedByteCount(trimOf uri: StreamURI) -> Int { 2 + uri.rawValue.utf8.count + 8 }

    /// The bytes one server takes in the server table.
    static func encodedByteCount(address: ServerAddress) -> Int { 8 + 2 + address.description.utf8.count }

    /// The bytes one stream takes in the encoding.
    static func encodedByteCount(_ uri: StreamURI, members: Int) -> Int {
        2 + uri.rawValue.utf8.count + 8 + 2 + 8 * members
    }

    /// Servers a stream may list: upstream's quorum sizes stay small, and a member list is
    /// copied into every message's fan-out.
    public static let membersMax = 16

    /// Decodes entry data; Entry0 (empty data) is the empty topology at version 0.
    ///
    /// The root stream's writer is a client, so a topology is hostile input like any other:
    /// every stream must have 1 to `membersMax` distinct server ids (not zero, not a client's)
    /// and a version from 1 to `ProtocolBounds.versionMax`.
    public static func decode(_ bytes: [UInt8], entryID: EntryID) throws(WalleError) -> Topology {
        if bytes.isEmpty && entryID == 0 { return .empty }
        guard entryID <= ProtocolBounds.versionMax else {
            throw WalleError(.invalidArgument, "topology version \(entryID) is above \(ProtocolBounds.versionMax)")
        }
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
            guard streamVersion >= 1, streamVersion <= ProtocolBounds.versionMax else {
                throw WalleError(.invalidArgument, "topology \(entryID): \(uri) has version \(streamVersion)")
            }
            let memberCount = Int(try reader.u16())
            guard memberCount >= 1, memberCount <= membersMax else {
                throw WalleError(
                    .invalidArgument, "topology \(entryID): \(uri) has \(memberCount) members, not 1 to \(membersMax)")
            }
            var members: [NodeID] = []
            for _ in 0..<memberCount { members.append(NodeID(try reader.u64())) }
            guard members.allSatisfy(\.isServer), Set(members).count == memberCount else {
                throw WalleError(
                    .invalidArgument,
                    "topology \(entryID): \(uri) lists members \(members) that are not distinct server ids")
            }
            guard streams[uri] == nil else {
                throw WalleError(.invalidArgument, "topology \(entryID) lists \(uri) twice")
            }
            streams[uri] = StreamTopology(version: streamVersion, members: members)
        }
        let servers = reader.isAtEnd ? [:] : try decodeServers(&reader, entryID: entryID)
        let firstEntryIDs = reader.isAtEnd ? [:] : try decodeTrims(&reader, streams: streams, entryID: entryID)
        try reader.finish()
        return Topology(version: version, streams: streams, servers: servers, firstEntryIDs: firstEntryIDs)
    }

    /// The server table: ids ascending (so each once), each a server id with an address that
    /// parses; empty only when a trim table follows (one encoding per topology). The count is
    /// hostile: each server reads at least 10 bytes or throws, so the loop ends within the
    /// entry's bytes.
    private static func decodeServers(
        _ reader: inout ByteReader, entryID: EntryID
    ) throws(WalleError) -> [NodeID: ServerAddress] {
        let count = try reader.u32()
        guard count >= 1 || !reader.isAtEnd else {
            throw WalleError(.invalidArgument, "topology \(entryID): an empty server table")
        }
        var servers: [NodeID: ServerAddress] = [:]
        var previous = NodeID(0)
        for _ in 0..<count {
            let id = NodeID(try reader.u64())
            let text = try reader.string16()
            let address: ServerAddress
            do {
                address = try ServerAddress(parsing: text)
            } catch {
                throw WalleError(error.code, "topology \(entryID): server \(id.rawValue): \(error.message)")
            }
            if let error = Boundary.checkServer(id, "registered server") {
                throw WalleError(error.code, "topology \(entryID): \(error.message)")
            }
            guard id > previous else {
                throw WalleError(.invalidArgument, "topology \(entryID): server \(id) is out of order or listed twice")
            }
            servers[id] = address
            previous = id
        }
        return servers
    }

    /// The trim table: at least one stream, URIs ascending, each a stream of the topology with
    /// a first entry from 1 to `ProtocolBounds.entryIDMax`. Each row reads at least 10 bytes or
    /// throws, so a hostile count ends within the entry's bytes.
    private static func decodeTrims(
        _ reader: inout ByteReader, streams: [StreamURI: StreamTopology], entryID: EntryID
    ) throws(WalleError) -> [StreamURI: EntryID] {
        let count = try reader.u32()
        guard count >= 1 else { throw WalleError(.invalidArgument, "topology \(entryID): an empty trim table") }
        var firstEntryIDs: [StreamURI: EntryID] = [:]
        var previous: StreamURI?
        for _ in 0..<count {
            let uri = try StreamURI(try reader.string16())
            let first = try reader.u64()
            guard streams[uri] != nil else {
                throw WalleError(.invalidArgument, "topology \(entryID): trims \(uri), which it does not list")
            }
            guard first >= 1, first <= ProtocolBounds.entryIDMax else {
                throw WalleError(.invalidArgument, "topology \(entryID): \(uri) has first entry \(first)")
            }
            if let previous, !(previous < uri) {
                throw WalleError(.invalidArgument, "topology \(entryID): trim of \(uri) is out of order or twice")
            }
            firstEntryIDs[uri] = first
            previous = uri
        }
        return firstEntryIDs
    }
}
