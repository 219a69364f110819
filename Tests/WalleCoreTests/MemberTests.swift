import Testing
@testable import WalleCore
import WalleEnvironment

let writerA = WriterID(ts: 10, id: 1)
let writerB = WriterID(ts: 20, id: 2)

/// Installs `writer` on `core` as member 1 via NewWriter from coordinator 2, completing syncs.
func install(
    _ core: inout ServerCore, _ writer: WriterID, lease: Int64 = 1000, at time: Int64 = 0, requestID: RequestID = 1
) {
    core.receive(
        .newWriter(header(requestID), writer, writerAddress: "w", leaseMilliseconds: lease),
        from: node(2), at: at(time))
    for token in core.takeEffects().syncTokens { core.diskCompleted(.synced(token: token), at: at(time)) }
    _ = core.takeEffects()
}

/// Installs `writer` and puts `count` chained entries of it (uncommitted); returns them.
func installWithEntries(_ core: inout ServerCore, _ writer: WriterID, count: Int) -> [Entry] {
    install(&core, writer)
    let entries = chain(from: .zero, count: count, writer: writer)
    for (index, entry) in entries.enumerated() {
        _ = settle(&core, put(&core, entry, requestID: RequestID(10 + index)))
    }
    return entries
}

func put(
    _ core: inout ServerCore, _ entry: Entry, committed: Entry = .zero, requestID: RequestID, at time: Int64 = 1,
    kind: PutKind = .write
) -> [Effect] {
    core.receive(
        .putEntryInternal(
            header(requestID), kind, entry, committedID: committed.id, committedChecksum: committed.checksum),
        from: node(2), at: at(time))
    return core.takeEffects()
}

@Suite("Member: puts, syncs and commits")
struct MemberTests {
    @Test("A put is acknowledged only after the sync that covers it ([DUR-3])")
    func ackAfterSync() {
        var core = makeServer()
        install(&core, writerA)
        let entry = chain(from: .zero, count: 1, writer: writerA)[0]
        let effects = put(&core, entry, requestID: 7)
        #expect(effects.writeCount == 1)
        #expect(effects.replies.isEmpty, "no answer before the sync")
        let tokens = effects.syncTokens
        #expect(tokens.count == 1)
        core.diskCompleted(.synced(token: tokens[0]), at: at(2))
        let after = core.takeEffects()
        #expect(after.replies.count == 1)
        #expect(after.replies.first?.requestID == 7)
        #expect(after.replies.first?.reply.isOK == true)
    }

    @Test("Group commit: puts that arrive while a sync is out share the next one")
    func groupCommit() {
        var core = makeServer()
        install(&core, writerA)
        let entries = chain(from: .zero, count: 3, writer: writerA)
        let first = put(&core, entries[0], requestID: 1)
        #expect(first.syncTokens.count == 1)
        #expect(put(&core, entries[1], requestID: 2).syncTokens.isEmpty, "a sync is already in flight")
        #expect(put(&core, entries[2], requestID: 3).syncTokens.isEmpty)
        core.diskCompleted(.synced(token: first.syncTokens[0]), at: at(2))
        let second = core.takeEffects()
        #expect(second.replies.map(\.requestID) == [1])
        #expect(second.syncTokens.count == 1, "one sync for the two waiting puts")
        core.diskCompleted(.synced(token: second.syncTokens[0]), at: at(3))
        #expect(core.takeEffects().replies.map(\.requestID) == [2, 3])
    }

    @Test("An older writer's put is refused (FailedPrecondition)")
    func fencing() {
        var core = makeServer()
        install(&core, writerB)
        let entry = chain(from: .zero, count: 1, writer: writerA)[0]
        let replies = put(&core, entry, requestID: 3).replies
        #expect(replies.first?.reply.errorCode == .failedPrecondition)
    }

    @Test("WS-9: a put carrying the zero writer id is refused")
    func zeroWriter() {
        var core = makeServer()
        let entry = chain(from: .zero, count: 1, writer: .zero)[0]
        #expect(put(&core, entry, requestID: 1).replies.first?.reply.errorCode == .invalidArgument)
        core.receive(.putEntry(9, streamURI, committedID: 0, committedChecksum: 0, entry), from: node(100), at: at(1))
        #expect(core.takeEffects().replies.first?.reply.errorCode == .invalidArgument)
    }

    @Test("WS-10: a client cannot mark its own entry committed")
    func selfCommit() {
        var core = makeServer()
        let entry = chain(from: .zero, count: 1, writer: writerA)[0]
        core.receive(
            .putEntry(9, streamURI, committedID: 1, committedChecksum: entry.checksum, entry),
            from: node(100), at: at(1))
        let replies = core.takeEffects().replies
        #expect(replies.first?.reply.errorCode == .invalidArgument)
        #expect(core.takeEffects().sends.isEmpty, "nothing was forwarded to members")
    }

    @Test("Out-of-order puts wait for their predecessor, then apply in order")
    func reorder() {
        var core = makeServer()
        install(&core, writerA)
        let entries = chain(from: .zero, count: 3, writer: writerA)
        #expect(put(&core, entries[2], requestID: 3).writeCount == 0, "entry 3 waits for 2")
        #expect(put(&core, entries[1], requestID: 2).writeCount == 0, "entry 2 waits for 1")
        let effects = put(&core, entries[0], requestID: 1)
        #expect(effects.writeCount == 1, "all three in one transaction")
        #expect(core.window(of: streamURI)?.last?.id == 3)
    }

    @Test("A queued put that waits too long fails with OutOfRange ([PIPE-5])")
    func queueExpiry() {
        var core = makeServer()
        install(&core, writerA)
        let entries = chain(from: .zero, count: 2, writer: writerA)
        _ = put(&core, entries[1], requestID: 2)
        let timeout = ServerConfiguration().queuedPutTimeout.milliseconds
        core.wake(at: at(timeout))
        #expect(core.takeEffects().replies.isEmpty, "still waiting just before the timeout")
        core.wake(at: at(1 + timeout))
        let replies = core.takeEffects().replies
        #expect(replies.first?.requestID == 2)
        #expect(replies.first?.reply.errorCode == .outOfRange)
    }

    @Test("A put that does not chain onto the tail is refused")
    func chainCheck() {
        var core = makeServer()
        install(&core, writerA)
        var entry = chain(from: .zero, count: 1, writer: writerA)[0]
        entry.checksum ^= 1
        #expect(put(&core, entry, requestID: 1).replies.first?.reply.errorCode == .outOfRange)
    }

    @Test("The uncommitted window is bounded ([LOG-2])")
    func uncommittedBound() {
        var configuration = ServerConfiguration()
        configuration.uncommittedEntriesMax = 4
        var core = makeServer(configuration: configuration)
        install(&core, writerA)
        let entries = chain(from: .zero, count: 5, writer: writerA)
        for (index, entry) in entries.prefix(4).enumerated() { _ = put(&core, entry, requestID: RequestID(index + 1)) }
        #expect(put(&core, entries[4], requestID: 9).replies.first?.reply.errorCode == .outOfRange)
    }
}

@Suite("Member: commit markers (WS-1, WS-11)")
struct CommitMarkerTests {
    @Test("A commit marker commits the local entry when checksums match")
    func commits() {
        var core = makeServer()
        install(&core, writerA)
        let entries = chain(from: .zero, count: 2, writer: writerA)
        _ = settle(&core, put(&core, entries[0], requestID: 1) + put(&core, entries[1], requestID: 2))
        let beat = Entry(id: 0, writerID: writerA, checksum: 0, data: [])
        let replies = put(&core, beat, committed: entries[1], requestID: 3).replies
        #expect(replies.first?.reply.isOK == true, "everything before it is durable: the OK needs no sync")
        #expect(core.metadata(of: streamURI)?.committedID == 2)
    }

    @Test("WS-1: a commit marker does not commit a stale entry with another checksum")
    func staleEntry() {
        var core = makeServer()
        install(&core, writerA)
        let stale = chain(from: .zero, count: 1, writer: writerA, tag: 1)[0]
        _ = put(&core, stale, requestID: 1)
        install(&core, writerB, at: 2000, requestID: 2)
        let chosen = chain(from: .zero, count: 1, writer: writerB, tag: 2)[0]
        let beat = Entry(id: 0, writerID: writerB, checksum: 0, data: [])
        _ = put(&core, beat, committed: chosen, requestID: 3, at: 2001)
        #expect(core.metadata(of: streamURI)?.committedID == 0, "the stale entry 1 is not committed")
        #expect(core.window(of: streamURI) == [.zero, stale], "and the marker alone drops nothing (it may be forged)")
        // After the fast-forward delay the member fetches the committed entry from its peers.
        core.wake(at: at(2001 + 250))
        let fetches = core.takeEffects().sends.filter {
            if case .readEntries = $0.message { return true } else { return false }
        }
        #expect(Set(fetches.map(\.target)) == [node(2), node(3)])
        // A peer's committed copy that matches the marker replaces the stale entry.
        core.receive(.response(fetches[0].message.requestID, .entries([chosen])), from: fetches[0].target, at: at(2260))
        _ = core.takeEffects()
        #expect(core.metadata(of: streamURI)?.committedID == 1)
        #expect(core.window(of: streamURI)?.first?.checksum == chosen.checksum)
    }

    @Test("A claim's commit at the committed id drops an older writer's suffix above it (seed 57)")
    func claimCommitAtCommittedDropsStaleSuffix() {
        var core = makeServer()
        let entries = installWithEntries(&core, writerA, count: 5)
        let beat = Entry(id: 0, writerID: writerA, checksum: 0, data: [])
        _ = put(&core, beat, committed: entries[1], requestID: 20)
        #expect(core.metadata(of: streamURI)?.committedID == 2)
        // B's claim chose a chain that ends at 2 (A's 3...5 were never acknowledged).
        install(&core, writerB, at: 2000, requestID: 21)
        let restamped = Entry(id: 2, writerID: writerB, checksum: entries[1].checksum, data: entries[1].data)
        let replies = put(&core, restamped, committed: restamped, requestID: 22, at: 2001, kind: .claimCommit).replies
        #expect(replies.isEmpty || replies.first?.reply.isOK == true, "\(replies)")
        let window = core.window(of: streamURI) ?? []
        #expect(window.map(\.id) == [2], "A's entries above the claimed tail are gone")
        #expect(window.first?.writerID == writerB, "the committed entry carries the claim's stamp")
    }

    @Test("A claim's commit of Entry0 stamps it and drops an older writer's suffix (seed 4249)")
    func claimCommitOfEntryZeroDropsStaleSuffix() {
        var core = makeServer()
        _ = installWithEntries(&core, writerA, count: 5)
        #expect(core.metadata(of: streamURI)?.committedID == 0)
        // B's claim chose a chain that ends at 0: A's 1...5 were never acknowledged.
        install(&core, writerB, at: 2000, requestID: 21)
        let restamped = Entry.zero.stamped(writerB)
        let replies = put(&core, restamped, committed: restamped, requestID: 22, at: 2001, kind: .claimCommit).replies
        #expect(replies.isEmpty || replies.first?.reply.isOK == true, "\(replies)")
        let window = core.window(of: streamURI) ?? []
        #expect(window.map(\.id) == [0], "A's entries above the claimed tail are gone")
        #expect(window.first?.writerID == writerB, "Entry0 carries the claim's stamp")
    }

    @Test("WS-11: a commit marker at the committed id with another checksum is DataLoss")
    func divergenceReported() {
        var core = makeServer()
        install(&core, writerA)
        let beat = Entry(id: 0, writerID: writerA, checksum: 0, data: [])
        let replies = put(
            &core, beat, committed: Entry(id: 0, writerID: .zero, checksum: 99, data: []), requestID: 3).replies
        #expect(replies.first?.reply.errorCode == .dataLoss)
    }
}

/// A renewed A (lease to 1000), then NewWriter B at 100 and NewWriter C at 200, both durable:
/// answers 6 (B) and 7 (C) wait for A's lease end.
func installABThenC(_ core: inout ServerCore) {
    install(&core, writerA, lease: 1000, at: 0)
    let beat = Entry(id: 0, writerID: writerA, checksum: 0, data: [])
    _ = put(&core, beat, requestID: 5, at: 0)
    core.receive(
        .newWriter(header(6), writerB, writerAddress: "b", leaseMilliseconds: 1000),
        from: node(3), at: at(100))
    for token in core.takeEffects().syncTokens { core.diskCompleted(.synced(token: token), at: at(101)) }
    let writerC = WriterID(ts: 30, id: 3)
    core.receive(
        .newWriter(header(7), writerC, writerAddress: "c", leaseMilliseconds: 1000),
        from: node(2), at: at(200))
    for token in core.takeEffects().syncTokens { core.diskCompleted(.synced(token: token), at: at(201)) }
}

@Suite("Member: a newer claim stamp pulled after StreamStatus (seeds 9760, 11348)")
struct StampPullTests {
    /// Member 1 committed A's entry 2 and keeps A's unacknowledged 3...5; B's claim stamped
    /// entry 2 on member 2 only. Returns the core after a StreamStatus round it coordinated,
    /// with the effects of the last WriterInfo answer.
    func statusRound(
        peerStamp: WriterID, peerTail: EntryID = 2, peerReports: NodeID? = nil
    ) -> (ServerCore, [Effect], [Entry]) {
        var core = makeServer()
        let entries = installWithEntries(&core, writerA, count: 5)
        let beat = Entry(id: 0, writerID: writerA, checksum: 0, data: [])
        _ = settle(&core, put(&core, beat, committed: entries[1], requestID: 20))
        #expect(core.metadata(of: streamURI)?.committedID == 2)
        core.receive(.streamStatus(30, streamURI), from: node(900), at: at(10))
        let asks = core.takeEffects().sends.compactMap { send -> (RequestID, NodeID)? in
            if case .writerInfo(let h) = send.message { return (h.requestID, send.target) } else { return nil }
        }
        #expect(asks.count == 3)
        var last: [Effect] = []
        for (requestID, target) in asks {
            let own = target == node(1)
            let info = WriterInfo(
                writerID: own ? writerA : writerB, writerAddress: "w", leaseMilliseconds: 1000,
                remainingLeaseMilliseconds: 0, streamVersion: 1, server: own ? target : peerReports ?? target,
                committedID: 2,
                tailID: own ? 5 : peerTail, tailWriterID: own ? writerA : peerStamp)
            core.receive(.response(requestID, .writerInfo(info)), from: target, at: at(11))
            last = core.takeEffects()
        }
        return (core, last, entries)
    }

    @Test("A peer's newer stamp on the same committed entry is pulled, and the older suffix goes")
    func newerStampPulled() throws {
        var (core, effects, entries) = statusRound(peerStamp: writerB)
        #expect(effects.replies.contains { if case .streamStatus = $0.reply { true } else { false } })
        let pulls = effects.sends.compactMap { send -> (RequestID, NodeID)? in
            if case .readEntries(let h, let start, let end) = send.message, start == 2, end == 3 {
                return (h.requestID, send.target)
            }
            return nil
        }
        let pull = try #require(pulls.first, "one ReadEntries [2, 3) to a peer with B's stamp")
        #expect(pulls.count == 1 && pull.1 != node(1))
        let stamped = Entry(id: 2, writerID: writerB, checksum: entries[1].checksum, data: entries[1].data)
        core.receive(.response(pull.0, .entries([stamped])), from: pull.1, at: at(12))
        let effects2 = core.takeEffects()
        let operations = effects2.flatMap { effect -> [DiskOperation] in
            if case .disk(.write(let operations)) = effect { return operations } else { return [] }
        }
        let deleted = operations.firstIndex { if case .deleteLiveEntries(_, from: 3) = $0 { true } else { false } }
        let restamped = operations.firstIndex { if case .putEntry(_, .live, let e) = $0 { e.id == 2 } else { false } }
        #expect(deleted != nil && restamped != nil && deleted! < restamped!,
                "the suffix goes before the stamp: a crash keeping a prefix never leaves both")
        _ = settle(&core, effects2)
        let window = core.window(of: streamURI) ?? []
        #expect(window.map(\.id) == [2], "A's unacknowledged 3...5 are gone")
        #expect(window.first?.writerID == writerB)
        // A late put of A (still the writer installed here) must not grow a suffix again.
        let late = put(&core, entries[2], committed: entries[1], requestID: 40, at: 13)
        _ = settle(&core, late)
        #expect(core.window(of: streamURI)?.map(\.id) == [2], "A is older than the stamp on the committed entry")
        #expect(late.replies.first?.reply.errorCode == .failedPrecondition)
    }

    @Test("A peer's WriterInfo naming another server is refused: no pull goes to a node that did not answer")
    func reportedServerMustAnswer() {
        let (_, effects, _) = statusRound(peerStamp: writerB, peerReports: node(7))
        let pulls = effects.sends.filter { if case .readEntries = $0.message { true } else { false } }
        #expect(pulls.isEmpty)
        let status = effects.replies.compactMap { if case .streamStatus(let infos) = $0.reply { infos } else { nil } }
        #expect(status.first?.map { $0.server } == [node(1)], "only this member's own info is kept")
    }

    @Test("No pull when the peers' stamps are not newer, or their tail is above the committed entry")
    func noPullOtherwise() {
        for (stamp, tail) in [(writerA, EntryID(2)), (writerB, EntryID(3))] {
            let (_, effects, _) = statusRound(peerStamp: stamp, peerTail: tail)
            let pulls = effects.sends.filter { if case .readEntries = $0.message { true } else { false } }
            #expect(pulls.isEmpty, "stamp \(stamp), tail \(tail)")
        }
    }

    @Test("A pulled entry that differs from the committed one changes nothing")
    func differentEntryRefused() throws {
        var (core, effects, _) = statusRound(peerStamp: writerB)
        let pull = try #require(effects.sends.compactMap { send -> (RequestID, NodeID)? in
            if case .readEntries(let h, _, _) = send.message { return (h.requestID, send.target) } else { return nil }
        }.first)
        let forged = Entry(id: 2, writerID: writerB, checksum: 0xBAD, data: [1])
        core.receive(.response(pull.0, .entries([forged])), from: pull.1, at: at(12))
        _ = settle(&core, core.takeEffects())
        let window = core.window(of: streamURI) ?? []
        #expect(window.map(\.id) == [2, 3, 4, 5])
        #expect(window.first?.writerID == writerA)
    }
}

@Suite("Member: NewWriter and leases")
struct NewWriterTests {
    @Test("A NewWriter answered after its wait says OK only if its writer is still installed (seed 1295)")
    func supersededWhileWaiting() {
        var core = makeServer()
        installABThenC(&core)
        #expect(core.takeEffects().replies.filter { $0.requestID == 6 || $0.requestID == 7 }.isEmpty)
        core.wake(at: at(1000))
        let replies = Dictionary(uniqueKeysWithValues: core.takeEffects().replies.map { ($0.requestID, $0.reply) })
        #expect(replies[6]?.errorCode == .failedPrecondition, "B was superseded by C while it waited")
        #expect(replies[7]?.isOK == true)
    }

    @Test("A claim's commit from a writer older than the installed one is refused and commits nothing")
    func supersededClaimCommit() {
        var core = makeServer()
        let entries = installWithEntries(&core, writerA, count: 2)
        install(&core, writerB, at: 3000, requestID: 20)
        let stale = entries[1].stamped(writerA)
        let reply = put(
            &core, stale, committed: stale, requestID: 21, at: 3001, kind: .claimCommit).replies.first?.reply
        #expect(reply?.errorCode == .failedPrecondition)
        #expect(core.metadata(of: streamURI)?.committedID == 0)
    }

    @Test(
        "An abandoned claim's writer leaves no lease: the next NewWriter waits only for leases renewed here (WS-15)")
    func abandonedClaimAddsNoWait() {
        var core = makeServer()
        // B's claim installs B (waiting out A's lease), then is abandoned: B never renews. C's
        // NewWriter waits for A's lease (1000), not for a lease B never held (2000).
        installABThenC(&core)
        #expect(core.takeEffects().replies.filter { $0.requestID == 7 }.isEmpty)
        core.wake(at: at(1000))
        #expect(core.takeEffects().replies.map(\.requestID).sorted() == [6, 7])
    }

    @Test("NewWriter waits out the previous writer's lease after the writer id is durable")
    func waitsForLease() {
        var core = makeServer()
        install(&core, writerA, lease: 1000, at: 0)
        let beat = Entry(id: 0, writerID: writerA, checksum: 0, data: [])
        _ = put(&core, beat, requestID: 5, at: 100)  // renews: lease now ends at 1100
        core.receive(
            .newWriter(header(6), writerB, writerAddress: "b", leaseMilliseconds: 500),
            from: node(3), at: at(200))
        let effects = core.takeEffects()
        #expect(effects.replies.isEmpty)
        core.diskCompleted(.synced(token: effects.syncTokens[0]), at: at(201))
        #expect(core.takeEffects().replies.isEmpty, "durable, but the old lease still runs")
        #expect(core.nextWakeup == at(1100).monotonic)
        core.wake(at: at(1100))
        let replies = core.takeEffects().replies
        #expect(replies.map(\.requestID) == [6])
        #expect(replies.first?.reply.isOK == true)
    }

    @Test("A restart waits out the stored pending wait, not leaseMax; metadata without one waits leaseMax (issue 12)")
    func restartWaitsStoredWait() throws {
        var core = makeServer()
        install(&core, writerA, lease: 1000, at: 0)
        let beat = Entry(id: 0, writerID: writerA, checksum: 0, data: [])
        _ = put(&core, beat, requestID: 5, at: 100)  // renews: A's lease runs to 1100 here
        core.receive(
            .newWriter(header(6), writerB, writerAddress: "b", leaseMilliseconds: 500),
            from: node(3), at: at(200))
        _ = core.takeEffects()
        let stored = try #require(core.metadata(of: streamURI))
        #expect(stored.pendingWaitMilliseconds == 900, "B's answer owes A's lease 900 ms more")
        // The process dies before answering and comes back much later: it cannot know how
        // much of the 900 ms passed, so it waits all of it again, and B's own 500 ms.
        func restarted(_ metadata: StreamMetadata) -> ServerCore {
            var configuration = ServerConfiguration()
            configuration.deepChecksEnabled = true
            let recovered = RecoveredState(
                streams: [RecoveredStream(uri: streamURI, metadata: metadata, window: [.zero])])
            return ServerCore(
                id: node(1), configuration: configuration, recovered: recovered, random: CountingRandom(),
                time: at(50_000))
        }
        #expect(restarted(stored).writerInfo(streamURI).remainingLeaseMilliseconds == 900)
        var legacy = stored
        legacy.pendingWaitMilliseconds = -1
        #expect(restarted(legacy).writerInfo(streamURI).remainingLeaseMilliseconds
            == ServerConfiguration().leaseMax.milliseconds)
    }

    @Test("A heartbeat's OK waits until the writer's install is durable (a crash could lose it and the lease with it)")
    func heartbeatWaitsForInstall() {
        var core = makeServer()
        // B's NewWriter is installed; its sync is still out (a stalled fsync).
        core.receive(
            .newWriter(header(6), writerB, writerAddress: "b", leaseMilliseconds: 2000),
            from: node(3), at: at(0))
        let install = core.takeEffects()
        #expect(install.syncTokens.count == 1)
        let beat = Entry(id: 0, writerID: writerB, checksum: 0, data: [])
        let early = put(&core, beat, requestID: 7, at: 5)
        #expect(early.replies.isEmpty, "no OK while B's install could still be lost")
        let later = settle(&core, install, at: 6)
        #expect(later.replies.map(\.requestID).contains(7))
    }

    @Test("WS-16: a repeated NewWriter waits for the same lease end instead of answering at once")
    func repeatedWaits() {
        var core = makeServer()
        install(&core, writerA, lease: 1000, at: 0)
        let beat = Entry(id: 0, writerID: writerA, checksum: 0, data: [])
        _ = put(&core, beat, requestID: 5, at: 0)  // renews: A's lease runs to 1000 here
        core.receive(
            .newWriter(header(6), writerB, writerAddress: "b", leaseMilliseconds: 500),
            from: node(3), at: at(200))
        for token in core.takeEffects().syncTokens { core.diskCompleted(.synced(token: token), at: at(201)) }
        _ = core.takeEffects()
        core.receive(
            .newWriter(header(7), writerB, writerAddress: "b", leaseMilliseconds: 500),
            from: node(3), at: at(300))
        #expect(core.takeEffects().replies.isEmpty, "the retry must not skip the wait")
        core.wake(at: at(1000))
        #expect(Set(core.takeEffects().replies.map(\.requestID)) == [6, 7])
    }

    @Test("An older writer's NewWriter is refused, and the stored writer id never decreases")
    func olderRefused() {
        var core = makeServer()
        install(&core, writerB)
        core.receive(
            .newWriter(header(2), writerA, writerAddress: "a", leaseMilliseconds: 500),
            from: node(3), at: at(10))
        #expect(core.takeEffects().replies.first?.reply.errorCode == .failedPrecondition)
        #expect(core.metadata(of: streamURI)?.writerID == writerB)
    }

    @Test("Leases outside [100ms, 60s] are refused (WS-8 upper bound)", arguments: [Int64(50), -5, 61_000])
    func leaseBounds(_ lease: Int64) {
        var core = makeServer()
        core.receive(
            .claimWriter(1, streamURI, writerAddress: "x", leaseMilliseconds: lease),
            from: node(100), at: at(0))
        #expect(core.takeEffects().replies.first?.reply.errorCode == .invalidArgument)
    }
}
