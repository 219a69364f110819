/// One log entry ([ENTRY-*]).
///
/// Content equality is (id, checksum, data); the writer id is the writer that last wrote this
/// copy and may differ between replicas of the same committed entry ([ENTRY-3]).
public struct Entry: Hashable, Sendable {
    public var id: EntryID
    public var writerID: WriterID
    public var checksum: UInt64
    public var data: [UInt8]

    public init(id: EntryID, writerID: WriterID, checksum: UInt64, data: [UInt8]) {
        self.id = id
        self.writerID = writerID
        self.checksum = checksum
        self.data = data
    }

    /// Entry 0 exists in every stream from its creation and is committed from the start.
    public static let zero = Entry(id: 0, writerID: .zero, checksum: 0, data: [])

    /// Data limit per entry: exactly 1 MiB is allowed ([ENTRY-2]).
    public static let dataSizeMax = 1 << 20

    /// The same entry content, whoever stamped it.
    public func sameContent(as other: Entry) -> Bool {
        id == other.id && checksum == other.checksum && data == other.data
    }

    /// A copy stamped with another writer id (a claim re-stamps the winning tail;
    /// docs/protocol.md, "ClaimWriter", phase 4).
    public func stamped(_ writer: WriterID) -> Entry {
        Entry(id: id, writerID: writer, checksum: checksum, data: data)
    }
}
