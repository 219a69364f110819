import WalleEnvironment

// Trimming (docs/protocol.md, "Trimming"): the topology names a stream's first entry, and each
// member deletes what lies below it once it learns that.
extension StreamReplica {
    /// Takes `first` as the stream's first entry if it is higher than the one known. Entries
    /// below it go from both tables, but only below the committed entry: a member that lags
    /// behind the trim keeps its window (at most `uncommittedEntriesMax` entries) until a
    /// later trim, and serves none of it below `first`. A gap below `first` shrinks to start
    /// there, or closes: nothing below the first entry is ever fetched. Returns false when
    /// `first` was already known.
    mutating func trim(below first: EntryID, writes: inout [DiskOperation]) -> Bool {
        guard first > metadata.firstEntryID else { return false }
        metadata.firstEntryID = first
        if metadata.hasGap && metadata.gapStart < first {
            if first >= metadata.gapEnd {
                closeGap()
            } else {
                // The predecessor of the new bottom is gone: `applyBackfill` takes the bottom
                // entry on the link from the entry above it (`isTrimPoint`).
                metadata.gapStart = first
                metadata.gapPreviousChecksum = 0
                if metadata.gapKeptEnd < first { metadata.gapKeptEnd = 0 }
            }
        }
        writes.append(.setMetadata(uri, metadata))
        writes.append(.deleteEntries(uri, below: min(first, committedID)))
        return true
    }

    /// Where a gap starts: above the committed entry, but never below the first entry.
    func gapStart(above committed: EntryID) -> EntryID { max(committed + 1, metadata.firstEntryID) }

    /// The bottom of the gap is the first entry of a trimmed stream, whose predecessor no
    /// member keeps: the link from the entry above proves its checksum, nothing proves more.
    func isTrimPoint(_ id: EntryID) -> Bool { metadata.firstEntryID > 0 && id == metadata.firstEntryID }

    mutating func closeGap() {
        metadata.gapStart = 0
        metadata.gapEnd = 0
        metadata.gapPreviousChecksum = 0
        metadata.gapEndChecksum = 0
        metadata.gapKeptEnd = 0
    }
}
