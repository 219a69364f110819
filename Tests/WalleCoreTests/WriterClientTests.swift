import Testing
@testable import WalleCore
import WalleEnvironment

/// "§6.7" and "§7.1" in the suite's name are the original design's sections on the writer
/// client; docs/protocol.md, "Writer side" and "ClaimWriter", phase 6, describe it.
@Suite("Writer client (§6.7, §7.1)")
struct WriterClientTests {
    let servers = [node(1), node(2), node(3)]

    func instant(_ ms: Int64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }

    func requestIDs(_ effects: [Effect]) -> [RequestID] {
        effects.sends.compactMap {
            switch $0.message {
            case .claimWriter(let r, _, _, _), .putEntry(let r, _, _, _, _): return r
            default: return nil
            }
        }
    }

    /// A writer that has claimed (tail = Entry0) and confirmed with a heartbeat sent at 10ms.
    func activeWriter(lease: Duration = .seconds(1)) -> WriterClient {
        var client = WriterClient(
            id: node(100), uri: streamURI, servers: servers,
            configuration: WriterConfiguration(address: "c", lease: lease))
        _ = claimAndConfirm(&client, as: writerA, at: 0)
        return client
    }

    /// Claims as `writer` at `start` ms, answered 10 ms later, and confirms with a heartbeat;
    /// returns the ClaimWriter's request id.
    func claimAndConfirm(_ client: inout WriterClient, as writer: WriterID, at start: Int64) -> RequestID {
        client.claim(now: instant(start))
        let claim = requestIDs(client.takeEffects())[0]
        client.receive(.response(claim, .claimed(writer, tail: .zero)), from: node(1), now: instant(start + 10))
        let beat = requestIDs(client.takeEffects())[0]
        client.receive(
            .response(beat, .putAcknowledged(servers: [node(1), node(2)])), from: node(2), now: instant(start + 12))
        #expect(client.takeEvents() == [.claimed(writer, tail: .zero)])
        #expect(client.phase == .active)
        return claim
    }

    @Test("Claim, then one heartbeat, then the writer is active and exclusive for 0.6 · lease")
    func claimAndExclusivity() {
        let client = activeWriter()
        #expect(client.phase == .active)
        #expect(client.isExclusive(now: instant(10 + 599)))
        #expect(!client.isExclusive(now: instant(10 + 600)), "the window counts from the heartbeat's send time")
    }

    @Test("Puts are pipelined up to 128 in flight ([W-2])")
    func pipelining() throws {
        var client = activeWriter()
        for index in 0..<200 { _ = try client.put([UInt8(index % 256)], now: instant(20)) }
        let puts = client.takeEffects().sends.filter {
            if case .putEntry = $0.message { return true } else { return false }
        }
        #expect(puts.count == 128)
        #expect(Set(puts.map(\.target)).count == 3, "puts are spread over the servers")
    }

    @Test("Acknowledging entry N acknowledges everything before it, in order")
    func acknowledgements() throws {
        var client = activeWriter()
        for index in 0..<5 { _ = try client.put([UInt8(index)], now: instant(20)) }
        let sends = client.takeEffects().sends
        guard case .putEntry(let fourth, _, _, _, let entry) = sends[3].message else {
            Issue.record("expected puts")
            return
        }
        #expect(entry.id == 4)
        client.receive(
            .response(fourth, .putAcknowledged(servers: [node(1), node(2)])), from: sends[3].target, now: instant(25))
        let acknowledged = client.takeEvents().compactMap {
            if case .putAcknowledged(let e) = $0 { return e.id } else { return nil }
        }
        #expect(acknowledged == [1, 2, 3, 4])
        #expect(client.committed.id == 4)
    }

    @Test("Entries chain: each checksum extends the previous one")
    func chaining() throws {
        var client = activeWriter()
        let first = try client.put(Array("d1".utf8), now: instant(20))
        let second = try client.put(Array("d2".utf8), now: instant(20))
        #expect(first.checksum == 0x67D1_E03B_3624_9690)
        #expect(second.checksum == 0xCDD9_C9E4_CEAD_2A70)
    }

    @Test("A final error closes the writer; a retryable one is retried")
    func errors() throws {
        var client = activeWriter()
        _ = try client.put([1], now: instant(20))
        let first = requestIDs(client.takeEffects())[0]
        client.receive(
            .response(first, .failed(WalleError(.unavailable, "try again"))), from: node(1), now: instant(21))
        #expect(client.phase == .active)
        client.wake(now: instant(21 + 20))
        let retry = requestIDs(client.takeEffects())
        #expect(retry.count == 1, "the put is sent again after the retry delay")
        client.receive(
            .response(retry[0], .failed(WalleError(.failedPrecondition, "newer writer"))),
            from: node(2), now: instant(45))
        #expect(client.phase == .closed(WalleError(.failedPrecondition, "newer writer")))
        #expect(throws: WalleError.self) { try client.put([2], now: instant(46)) }
    }

    @Test("A dead member is skipped after a timeout; slow members that answer are not (seed 799)")
    func deadMemberSkipped() throws {
        var client = activeWriter(lease: .seconds(60))
        for index in 0..<6 { _ = try client.put([UInt8(index)], now: instant(20)) }
        let sends = client.takeEffects().sends
        #expect(Set(sends.map(\.target)) == Set(servers))
        // Node 1 is dead. Nodes 2 and 3 are alive but slow: each answers one put with a
        // retryable failure before the others time out.
        for live in [node(2), node(3)] {
            let send = try #require(sends.first { $0.target == live })
            guard case .putEntry(let requestID, _, _, _, _) = send.message else { return }
            client.receive(
                .response(requestID, .failed(WalleError(.unavailable, "busy"))), from: live, now: instant(1000))
        }
        client.wake(now: instant(20 + 2000))
        var retries = client.takeEffects().sends
        client.wake(now: instant(20 + 2000 + 100))
        retries += client.takeEffects().sends
        #expect(retries.count == 6, "every put is sent again")
        #expect(!retries.contains { $0.target == node(1) }, "the silent member is suspect; the slow ones are not")
    }

    @Test("A final refusal that comes after its request timed out still closes the writer (seed 79)")
    func lateFinalRefusalCloses() throws {
        var client = activeWriter(lease: .seconds(1))
        _ = try client.put([1], now: instant(20))
        let put = try #require(requestIDs(client.takeEffects()).first)
        // The put times out (2 s) and is sent again; the late answers then come in.
        client.wake(now: instant(20 + 2000))
        #expect(!requestIDs(client.takeEffects()).isEmpty, "the put was sent again")
        client.receive(.response(put, .failed(WalleError(.unavailable, "busy"))), from: node(2), now: instant(2100))
        #expect(client.phase == .active, "a late retryable answer changes nothing")
        let fenced = WalleError(.failedPrecondition, "writer is no longer active on n1")
        client.receive(.response(put, .failed(fenced)), from: node(2), now: instant(4600))
        #expect(client.phase == .closed(fenced))
        #expect(client.takeEvents() == [.closed(fenced)])
        #expect(client.nextWakeup == nil, "a closed writer wakes for nothing")
    }

    @Test("A late refusal of a duplicated ClaimWriter does not close the writer it made (seed 81)")
    func lateRefusalOfDuplicateClaimIgnored() {
        var client = WriterClient(
            id: node(100), uri: streamURI, servers: servers,
            configuration: WriterConfiguration(address: "c", lease: .seconds(1)))
        let claim = claimAndConfirm(&client, as: writerB, at: 0)
        // The network delivered the ClaimWriter twice; the second claim, with an older writer
        // id, was refused, and its answer carries the same request id.
        client.receive(
            .response(claim, .failed(WalleError(.failedPrecondition, "writer A is older than B"))),
            from: node(1), now: instant(200))
        #expect(client.phase == .active)
    }

    @Test("A late final refusal to an earlier claim's request does not close the next one")
    func lateRefusalOfEarlierClaimIgnored() throws {
        var client = activeWriter(lease: .seconds(1))
        _ = try client.put([1], now: instant(20))
        let oldPut = try #require(requestIDs(client.takeEffects()).first)
        let fenced = WalleError(.failedPrecondition, "newer writer")
        client.wake(now: instant(20 + 2000))
        _ = client.takeEffects()
        let retry = try #require(client.outstanding.keys.sorted().last)
        client.receive(.response(retry, .failed(fenced)), from: node(1), now: instant(2030))
        #expect(client.phase == .closed(fenced))
        // Claim again; the first claim's put is answered only now.
        _ = client.takeEvents()
        _ = claimAndConfirm(&client, as: writerB, at: 3000)
        client.receive(.response(oldPut, .failed(fenced)), from: node(2), now: instant(3020))
        #expect(client.phase == .active, "that answer was about the earlier writer")
    }

    @Test("An idle writer heartbeats at least every lease/4 ([W-7])")
    func heartbeats() {
        var client = activeWriter(lease: .seconds(1))
        #expect(client.nextWakeup == instant(10 + 250))
        client.wake(now: instant(260))
        let beats = client.takeEffects().sends.filter {
            if case .putEntry(_, _, _, _, let e) = $0.message { return e.id == 0 } else { return false }
        }
        #expect(beats.count == 1)
    }

    @Test("The planted 0.75 margin is longer than the derived one")
    func plantedMargin() {
        var configuration = WriterConfiguration(address: "c", lease: .seconds(1))
        #expect(configuration.exclusivityWindow == .milliseconds(600))
        configuration.plantedBugs = [.leaseMarginTooLarge]
        #expect(configuration.exclusivityWindow == .milliseconds(750))
    }
}
