public import WalleEnvironment

/// How entries and stream metadata are laid out in storage values (docs/operating.md,
/// "Data directory"). A format byte leads each value so a later layout can be told apart.
public enum StorageCodec {
    static let entryFormat: UInt8 = 1
    /// 2 added the pending wait, 3 the first entry; format 1 still decodes with the wait
    /// unknown (−1), formats 1 and 2 with the stream not trimmed.
    static let metadataFormat: UInt8 = 3

    /// `format u8, writer-ts u64, writer-id u64, checksum u64, data...` (the id is the key).
    public static func encode(_ entry: Entry) -> [UInt8] {
        var writer = ByteWriter(capacity: 25 + entry.data.count)
        writer.u8(entryFormat)
        writer.u64(entry.writerID.ts)
        writer.u64(entry.writerID.id)
        writer.u64(entry.checksum)
        writer.raw(entry.data)
        return writer.bytes
    }

    public static func decodeEntry(id: EntryID, _ bytes: [UInt8]) throws(WalleError) -> Entry {
        var reader = ByteReader(bytes: bytes, what: "stored entry \(id)")
        let format = try reader.u8()
        guard format == entryFormat else {
            throw WalleError(.dataLoss, "stored entry \(id) has format \(format), expected \(entryFormat)")
        }
        let writer = WriterID(ts: try reader.u64(), id: try reader.u64())
        let checksum = try reader.u64()
        return Entry(id: id, writerID: writer, checksum: checksum, data: try reader.bytes(reader.remaining))
    }

    /// `format u8, stream-version u64, member-count u16, members u64..., writer-ts u64,
    /// writer-id u64, address (u16 length, UTF-8), lease-ms i64, committed u64, gap-start u64,
    /// gap-end u64, gap-previous-checksum u64, gap-end-checksum u64, gap-kept-end u64,
    /// pending-wait-ms i64, first-entry u64, trimmed-below u64` (the wait since format 2, the
    /// trim's two fields since 3).
    public static func encode(_ metadata: StreamMetadata) -> [UInt8] {
        var writer = ByteWriter(capacity: 128)
        writer.u8(metadataFormat)
        writer.u64(metadata.topology.version)
        writer.u16(UInt16(metadata.topology.members.count))
        for member in metadata.topology.members { writer.u64(member.rawValue) }
        writer.u64(metadata.writerID.ts)
        writer.u64(metadata.writerID.id)
        writer.string16(metadata.writerAddress)
        writer.u64(UInt64(bitPattern: metadata.leaseMilliseconds))
        for value in [
            metadata.committedID, metadata.gapStart, metadata.gapEnd, metadata.gapPreviousChecksum,
            metadata.gapEndChecksum, metadata.gapKeptEnd,
        ] {
            writer.u64(value)
        }
        writer.u64(UInt64(bitPattern: metadata.pendingWaitMilliseconds))
        writer.u64(metadata.firstEntryID)
        writer.u64(metadata.trimmedBelow)
        return writer.bytes
    }

    public static func decodeMetadata(_ uri: StreamURI, _ bytes: [UInt8]) throws(WalleError) -> StreamMetadata {
        var reader = ByteReader(bytes: bytes, what: "metadata of \(uri)")
        let format = try reader.u8()
        guard (1...metadataFormat).contains(format) else {
            throw WalleError(.dataLoss, "metadata of \(uri) has format \(format), expected 1 to \(metadataFormat)")
        }
        let version = try reader.u64()
        var members: [NodeID] = []
        for _ in 0..<Int(try reader.u16()) { members.append(NodeID(try reader.u64())) }
        var metadata = StreamMetadata(topology: StreamTopology(version: version, members: members))
        metadata.writerID = WriterID(ts: try reader.u64(), id: try reader.u64())
        metadata.writerAddress = try reader.string16()
        metadata.leaseMilliseconds = Int64(bitPattern: try reader.u64())
        metadata.committedID = try reader.u64()
        metadata.gapStart = try reader.u64()
        metadata.gapEnd = try reader.u64()
        metadata.gapPreviousChecksum = try reader.u64()
        metadata.gapEndChecksum = try reader.u64()
        metadata.gapKeptEnd = try reader.u64()
        metadata.pendingWaitMilliseconds = format == 1 ? -1 : Int64(bitPattern: try reader.u64())
        metadata.firstEntryID = format < 3 ? 0 : try reader.u64()
        metadata.trimmedBelow = format < 3 ? 0 : try reader.u64()
        try reader.finish()
        return metadata
    }
}
