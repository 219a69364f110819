public import WalleEnvironment

/// "Entry `id` with `checksum` is committed": the marker a writer sends with each put and
/// heartbeat, a member's memory of one it could not apply yet, and a writer's own committed
/// position. A member applies one only once its own entry at `id` has that checksum.
public struct CommitMarker: Hashable, Sendable {
    public var id: EntryID
    public var checksum: UInt64

    public init(id: EntryID, checksum: UInt64) {
        self.id = id
        self.checksum = checksum
    }

    /// Nothing committed yet beyond Entry0.
    public static let zero = CommitMarker(id: 0, checksum: 0)
}
