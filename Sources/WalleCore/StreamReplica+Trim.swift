import WalleEnvironment

// Trimming (docs/protocol.md, "Trimming"): the topology names a stream's first entry; each
// member records it at once and deletes what lies below it in the background, in steps.
extension StreamReplica {
    /// Takes `first` as the stream's first entry if it is higher than the one known. Nothing
    /// below it is served from now on (`ServerCore.belowFirstEntry`); the entries go in later
    /// steps (`trimStep`). A gap below `first` shrinks to start there, or closes: nothing
    /// below the first entry is ever fetched. Returns false when `first` was already known.
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
        if committedID == 0 && tailID == 0 && !metadata.hasGap {
            // A stream just joined holds Entry0 only, and nothing below `first` ever comes (a
            // gap starts at it): no step is due. Entry0 stays, one empty row: it is the
            // committed entry, and a restart that did not find it would refuse the directory.
            metadata.trimmedBelow = first
        }
        writes.append(.setMetadata(uri, metadata))
        return true
    }

    /// How far deletion must go: below the first entry, but never the committed entry or
    /// anything above it. A member behind the trim deletes the rest as its committed id moves.
    var trimTarget: EntryID { min(metadata.firstEntryID, committedID) }

    var needsTrimStep: Bool { metadata.trimmedBelow < trimTarget }

    /// One delete step of at most `stepMax` ids, with the progress in the same write (a
    /// restart goes on from there). Returns whether more steps are due.
    mutating func trimStep(stepMax: UInt64, writes: inout [DiskOperation]) -> Bool {
        precondition(stepMax > 0, "a trim step deletes something")
        guard needsTrimStep else { return false }
        let next = min(trimTarget, metadata.trimmedBelow + stepMax)
        writes.append(.deleteEntries(uri, below: next))
        metadata.trimmedBelow = next
        writes.append(.setMetadata(uri, metadata))
        return needsTrimStep
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
