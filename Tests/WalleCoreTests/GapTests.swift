import Testing
@testable import WalleCore
import WalleEnvironment

/// A replica of `/test/stream` at version 1 holding `window` (its first entry committed).
private func replica(_ window: [Entry]) -> StreamReplica {
    var metadata = StreamMetadata(topology: StreamTopology(version: 1, members: [node(1), node(2), node(3)]))
    metadata.committedID = window[0].id
    return StreamReplica(uri: streamURI, metadata: metadata, window: window)
}

private func puts(_ writes: [DiskOperation]) -> [(table: DiskTable, id: EntryID)] {
    writes.compactMap {
        if case .putEntry(_, let table, let entry) = $0 { return (table, entry.id) } else { return nil }
    }
}

@Suite("Gap commit and backfill")
struct GapTests {
    let chainA = chain(from: .zero, count: 6, writer: writerA)

    /// Entries 1 and 2 uncommitted, then entry 5 arrives as committed.
    func gapCommitted() -> StreamReplica {
        var member = replica([.zero, chainA[0], chainA[1]])
        var writes: [DiskOperation] = []
        #expect(member.applyCommitted(chainA[4], writes: &writes) == .gapCommitted)
        return member
    }

    @Test("A gap commit keeps the uncommitted entries below it on disk (seed 1738)")
    func keepsSuffix() {
        var member = replica([.zero, chainA[0], chainA[1]])
        var writes: [DiskOperation] = []
        #expect(member.applyCommitted(chainA[4], writes: &writes) == .gapCommitted)
        let deletes = writes.compactMap {
            if case .deleteLiveEntries(_, let from) = $0 { return from } else { return nil }
        }
        #expect(deletes.allSatisfy { $0 > 2 }, "entries 1 and 2 may be the last copies: \(deletes)")
        #expect(member.metadata.gapStart == 1 && member.metadata.gapEnd == 5)
        #expect(member.metadata.gapKeptEnd == 2)
        #expect(member.committedID == 5)
    }

    @Test("The backfill proves entries downwards and combines copies from several sources")
    func combines() {
        var member = gapCommitted()
        var writes: [DiskOperation] = []
        // A peer holds 3 and 4 (kept or committed): 4 is proven by 5; 3's data is not yet.
        #expect(member.applyBackfill([chainA[2], chainA[3], chainA[4]], writes: &writes) == nil)
        #expect(member.metadata.gapEnd == 4)
        #expect(puts(writes).map(\.id) == [4])
        // Its own kept 1 and 2 plus the peer's 3 close the gap.
        writes = []
        #expect(member.applyBackfill([chainA[0], chainA[1], chainA[2], chainA[3]], writes: &writes) == nil)
        #expect(!member.metadata.hasGap)
        #expect(member.metadata.gapKeptEnd == 0)
        let written = puts(writes)
        #expect(written.map(\.id) == [3, 2, 1])
        // Verified copies overwrite the kept ones in the live table, which wins on reads.
        #expect(written.map(\.table) == [.backfill, .live, .live])
    }

    @Test("A stale kept entry is refused and nothing moves (WS-4)")
    func refusesStale() {
        var member = gapCommitted()
        let stale = chain(from: chainA[2], count: 1, writer: writerB, tag: 9)[0]
        var writes: [DiskOperation] = []
        let error = member.applyBackfill([chainA[2], stale, chainA[4]], writes: &writes)
        #expect(error?.code == .unavailable)
        #expect(writes.isEmpty)
        #expect(member.metadata.gapEnd == 5)
        // An answer that does not end at the gap's committed entry is refused too.
        #expect(member.applyBackfill([chainA[2], chainA[3]], writes: &writes)?.code == .unavailable)
    }

    @Test("A bottom entry that does not chain onto the entry before the gap is DataLoss")
    func bottomMustChain() {
        var member = gapCommitted()
        // Divergence below the gap: the entry before it is not the one the chain grew from.
        member.metadata.gapPreviousChecksum ^= 1
        var writes: [DiskOperation] = []
        let error = member.applyBackfill(Array(chainA[0...4]), writes: &writes)
        #expect(error?.code == .dataLoss)
        #expect(writes.isEmpty)
    }

    @Test("An answer of two entries proves nothing; of three, one (seed 8)")
    func answerSizes() {
        var member = gapCommitted()
        var writes: [DiskOperation] = []
        #expect(member.applyBackfill([chainA[3], chainA[4]], writes: &writes)?.code == .unavailable)
        #expect(member.metadata.gapEnd == 5 && writes.isEmpty)
        #expect(member.applyBackfill([chainA[2], chainA[3], chainA[4]], writes: &writes) == nil)
        #expect(member.metadata.gapEnd == 4)
    }
}

@Suite("Reads and versions around a gap")
struct GapServerTests {
    @Test("Public reads never return the gap range")
    func publicReadsSkipGap() {
        var core = makeServer()
        install(&core, writerA)
        let entries = chain(from: .zero, count: 5, writer: writerA)
        _ = put(&core, entries[0], requestID: 2)
        // Entry 5 as a claim commit: a gap commit over [1, 5) that keeps entry 1, unverified.
        _ = put(&core, entries[4], committed: entries[4], requestID: 3, kind: .claimCommit)
        #expect(core.streams[streamURI]!.metadata.gapStart == 1)
        core.receive(.streamEntries(100, streamURI, start: 1, end: 6), from: node(50), at: at(3))
        let answer = core.takeEffects().replies.first { $0.requestID == 100 }
        #expect(answer?.reply.errorCode == .unavailable, "entry 1 is kept, unverified: \(String(describing: answer))")
    }

    @Test("Puts still queued when the member learns a new version are refused (seed 168)")
    func queuedPutsRefused() {
        var core = makeServer()
        install(&core, writerA)
        let entries = chain(from: .zero, count: 3, writer: writerA)
        let queued = put(&core, entries[2], requestID: 9)
        #expect(queued.replies.isEmpty, "entry 3 waits for entries 1 and 2")
        core.apply(Topology(
            version: 2, streams: [streamURI: StreamTopology(version: 2, members: [node(1), node(2), node(4)])]))
        let answer = core.takeEffects().replies.first { $0.requestID == 9 }
        #expect(answer?.reply.errorCode == .unavailable)
        #expect(core.streams[streamURI]!.queueCount == 0)
    }

    @Test("The backfill asks this member's own copy only when it keeps the entry below the gap's end")
    func asksItselfOnlyWhenItHelps() throws {
        var core = makeServer()
        install(&core, writerA)
        let entries = chain(from: .zero, count: 5, writer: writerA)
        var effects: [Effect] = []
        for index in 0..<3 { effects += put(&core, entries[index], requestID: RequestID(2 + index)) }
        // Entry 5 commits over a gap [1, 5): entries 1 to 3 are kept here, entry 4 is not.
        effects += put(&core, entries[4], committed: entries[4], requestID: 20, kind: .claimCommit)
        var synced: Set<UInt64> = []
        func settle() {
            for _ in 0..<8 {
                let tokens = effects.syncTokens.filter { synced.insert($0).inserted }
                for token in tokens { core.diskCompleted(.synced(token: token), at: at(2)) }
                effects += core.takeEffects()
            }
        }
        func backfillCalls() -> [(message: Message, target: NodeID)] {
            effects.sends.filter { if case .readEntries = $0.message { return true } else { return false } }
        }
        settle()
        let first = try #require(backfillCalls().first)
        #expect(first.target != node(1), "entry 4 is not kept here: a peer is asked first")
        // The peer proves entry 4; now the kept entries 1 to 3 can chain onto it, so this
        // member's own copy is asked next.
        core.receive(
            .response(first.message.requestID, .entries([entries[2], entries[3], entries[4]])),
            from: first.target, at: at(3))
        effects = core.takeEffects()
        settle()
        #expect(core.streams[streamURI]!.metadata.gapEnd == 4)
        #expect(backfillCalls().first?.target == node(1))
    }
}
