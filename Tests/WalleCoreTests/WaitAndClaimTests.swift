import Testing
@testable import WalleCore
import WalleEnvironment

/// WaitAndClaim: a polite claimer asks who writes and claims only once no lease is live.
@Suite("Writer client: WaitAndClaim")
struct WaitAndClaimTests {
    let servers = [node(1), node(2), node(3)]

    func instant(_ ms: Int64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }

    func politeWriter() -> WriterClient {
        WriterClient(
            id: node(100), uri: streamURI, servers: servers,
            configuration: WriterConfiguration(address: "c", lease: .seconds(1)))
    }

    func info(remaining: Int64, writer: WriterID = writerA) -> Reply {
        .writerInfo(WriterInfo(
            writerID: writer, writerAddress: "w", leaseMilliseconds: 1000, remainingLeaseMilliseconds: remaining,
            streamVersion: 1))
    }

    /// The one message sent, with its target.
    func onlySend(_ client: inout WriterClient) -> (Message, NodeID)? {
        let sends = client.takeEffects().sends
        #expect(sends.count == 1, "one message: \(sends)")
        return sends.first.map { ($0.message, $0.target) }
    }

    @Test("A live lease is waited out, asked again, and the claim goes through the server that said it ended")
    func waitsOutALiveLease() throws {
        var client = politeWriter()
        client.waitAndClaim(now: instant(0))
        #expect(client.phase == .waiting)
        guard case (.writerStatus(let first, _), let asked)? = onlySend(&client) else {
            Issue.record("a WriterStatus first")
            return
        }
        client.receive(.response(first, info(remaining: 700)), from: asked, now: instant(5))
        #expect(client.takeEffects().isEmpty, "no claim while the lease lives")
        let wake = try #require(client.nextWakeup)
        #expect(wake >= instant(705) && wake < instant(705 + 250), "the lease's end plus at most lease / 4")
        client.wake(now: wake)
        guard case (.writerStatus(let second, _), let askedAgain)? = onlySend(&client) else {
            Issue.record("asked again at the lease's end")
            return
        }
        #expect(askedAgain == asked)
        client.receive(.response(second, info(remaining: 0)), from: asked, now: wake + .milliseconds(3))
        guard case (.claimWriter, let through)? = onlySend(&client) else {
            Issue.record("the claim once the lease ran out")
            return
        }
        #expect(through == asked, "claimed through the server that saw no live lease")
        #expect(client.phase == .claiming)
    }

    @Test("A stream nobody ever wrote is claimed at once")
    func noWriterYet() {
        var client = politeWriter()
        client.waitAndClaim(now: instant(0))
        guard case (.writerStatus(let request, _), let asked)? = onlySend(&client) else { return }
        client.receive(.response(request, info(remaining: 0, writer: .zero)), from: asked, now: instant(2))
        guard case (.claimWriter, _)? = onlySend(&client) else {
            Issue.record("a claim")
            return
        }
    }

    @Test("A status request that times out is asked of the next server after lease / 2")
    func timeoutMovesOn() throws {
        var client = politeWriter()
        client.waitAndClaim(now: instant(0))
        guard case (.writerStatus, let asked)? = onlySend(&client) else { return }
        let deadline = try #require(client.nextWakeup)
        #expect(deadline == instant(250), "lease / 4 for an answer")
        client.wake(now: deadline)
        #expect(client.takeEffects().isEmpty)
        let retry = try #require(client.nextWakeup)
        #expect(retry >= instant(750) && retry < instant(1000))
        client.wake(now: retry)
        guard case (.writerStatus, let next)? = onlySend(&client) else { return }
        #expect(next != asked)
    }

    @Test("A final refusal ends the wait; stopWaiting ends it with the caller's error")
    func endings() {
        var client = politeWriter()
        client.waitAndClaim(now: instant(0))
        guard case (.writerStatus(let request, _), let asked)? = onlySend(&client) else { return }
        let missing = WalleError(.invalidArgument, "not a stream URI")
        client.receive(.response(request, .failed(missing)), from: asked, now: instant(1))
        #expect(client.takeEvents() == [.claimFailed(missing)])
        #expect(client.phase == .idle && client.nextWakeup == nil)

        client.waitAndClaim(now: instant(10))
        guard case (.writerStatus(let again, _), let server)? = onlySend(&client) else { return }
        client.receive(.response(again, info(remaining: 900)), from: server, now: instant(11))
        let patience = WalleError(.deadlineExceeded, "stopped waiting")
        client.stopWaiting(patience)
        #expect(client.takeEvents() == [.claimFailed(patience)])
        #expect(client.phase == .idle && client.nextWakeup == nil, "nothing left to wake for")
    }

    @Test("The jitter stays under its span and differs across writers")
    func jitter() {
        let span = Duration.milliseconds(250)
        let draws = (1...50).map { WriterClient.jitter(span, id: node($0), round: 1) }
        #expect(draws.allSatisfy { $0 >= .zero && $0 < span })
        #expect(Set(draws).count > 40)
        #expect(WriterClient.jitter(span, id: node(7), round: 3) == WriterClient.jitter(span, id: node(7), round: 3))
    }
}
