import Testing
@testable import WalleCore
import WalleEnvironment

/// One server core under a call rate far above what lazy timer cancellation survived (about
/// 50k calls/s for a 5 s call timeout with 65,536 calls in flight), driven over simulated time:
/// no wall clock, the same run every time.
@Suite("Bounds under load")
struct BoundTests {
    @Test("1.3 million calls in 7 simulated seconds: the timer queue holds only live deadlines")
    func timerQueueUnderLoad() {
        let load = CallLoad(seconds: 7, requestsPerMillisecond: 60)
        let figures = load.run()
        // Every millisecond 180 calls go out and those of the millisecond before come back; one
        // call in 100 is never answered and waits out its 5 s timeout.
        let rate = figures.calls / load.seconds
        print("bound test: \(figures.calls) calls (\(rate) per second), timers at most \(figures.timersMax), "
            + "calls in flight at most \(figures.callsInFlightMax), silent calls timed out \(figures.silentExpired)")
        #expect(figures.calls > 1_000_000, "the rate is what the test claims")
        #expect(figures.timersMax <= figures.callsInFlightMax + 4, "deadlines only for live calls")
        // Lazy cancellation would hold every call of the last 5 s: rate · 5.
        #expect(figures.timersMax < rate * 5 / 10)
        #expect(figures.silentExpired > 0 && figures.silentExpired == figures.silentOld, "silent calls time out")
        #expect(figures.answered >= figures.requests - load.requestsPerMillisecond, "every request is answered")
    }

    @Test("Puts stop at three quarters of the call table; the oldest at seven eighths, whoever says it is")
    func putAdmissionTiers() {
        var configuration = ServerConfiguration()
        configuration.callsInFlightMax = 24  // puts 18, the oldest 21, claims the rest
        var core = makeServer(configuration: configuration)
        let writer = WriterID(ts: 10, id: 1)
        let entries = chain(from: .zero, count: 12, writer: writer)
        func put(_ requestID: RequestID, _ entry: Entry, committed: EntryID) -> [Effect] {
            core.receive(
                .putEntry(requestID, streamURI, committedID: committed, committedChecksum: 0, entry),
                from: client, at: at(5))
            return core.takeEffects()
        }
        // Six later puts (three calls each) fill the puts' three quarters; the seventh is refused.
        for index in 0..<6 { #expect(put(RequestID(100 + index), entries[index + 2], committed: 0).replies.isEmpty) }
        #expect(core.calls.count == 18)
        let refused = put(200, entries[9], committed: 0)
        #expect(refused.replies.first?.reply.errorCode == .resourceExhausted)
        #expect(refused.contains { if case .refused(.putCalls) = $0 { return true } else { return false } })
        // The put right after the commit marker may go on to seven eighths, once.
        #expect(put(201, entries[0], committed: 0).replies.isEmpty)
        #expect(core.calls.count == 21)
        // A client that calls another put the oldest (marker one below it) gets no further.
        #expect(put(202, entries[10], committed: 10).replies.first?.reply.errorCode == .resourceExhausted)
        // The last eighth stays for a claim's fan-out.
        core.receive(.claimWriter(300, streamURI, writerAddress: "c", leaseMilliseconds: 1000), from: client, at: at(6))
        #expect(core.takeEffects().replies.isEmpty, "the claim is under way, not refused")
        #expect(core.calls.count == 24)
    }

    @Test("A silent peer holds at most half the call table; requests keep their quorum from the others (seed 25)")
    func silentPeerHoldsHalf() {
        var configuration = ServerConfiguration()
        configuration.callsInFlightMax = 24
        var core = makeServer(configuration: configuration)
        var answered = 0
        var refusedPerPeer = 0
        for request in 0..<40 {
            core.receive(.writerStatus(RequestID(1000 + request), streamURI), from: client, at: at(5))
            var effects = core.takeEffects()
            // Node 1 (itself) and node 2 answer; node 3 is dead and never does.
            for call in effects.sends where call.target != node(3) && call.target != client {
                let info = WriterInfo(
                    writerID: .zero, writerAddress: "", leaseMilliseconds: 0, remainingLeaseMilliseconds: 0,
                    streamVersion: 1, server: call.target)
                core.receive(.response(call.message.requestID, .writerInfo(info)), from: call.target, at: at(6))
                effects += core.takeEffects()
            }
            refusedPerPeer += effects.filter {
                if case .refused(.callsPerPeer) = $0 { return true } else { return false }
            }.count
            if case .writerInfo? = effects.replies.first(where: { $0.target == client })?.reply { answered += 1 }
        }
        #expect(answered == 40, "every request keeps its quorum")
        #expect(core.calls.count == 12, "the dead peer holds half the table, no more")
        #expect(refusedPerPeer == 28)
    }

    #if DEBUG
        @Test("Planted: answered calls that leave their deadline behind are caught at once")
        func lazyCancellationIsCaught() async {
            await #expect(processExitsWith: .failure) {
                _ = CallLoad(seconds: 1, requestsPerMillisecond: 60, plant: .lazyCallTimeouts).run()
            }
        }
    #endif
}

/// WriterStatus requests from a client, each fanned out as three WriterInfo calls (one to this
/// node itself); the harness answers each call a millisecond later, except one in a hundred.
struct CallLoad {
    var seconds: Int
    var requestsPerMillisecond: Int
    var plant: PlantedBug?

    struct Figures {
        var requests = 0
        var calls = 0
        var answered = 0
        /// Unanswered calls older than the call timeout at the end, and how many are gone.
        var silentOld = 0
        var silentExpired = 0
        var timersMax = 0
        var callsInFlightMax = 0
    }

    func run() -> Figures {
        var configuration = ServerConfiguration()
        if let plant { configuration.plantedBugs = [plant] }
        var core = makeServer(1, configuration: configuration)
        let client = NodeID(NodeID.clientBit | 7)
        var figures = Figures()
        var toAnswer: [(RequestID, NodeID)] = []
        var callCount = 0
        var silent: [(RequestID, Int)] = []
        for millisecond in 1...(seconds * 1000) {
            let now = at(Int64(millisecond))
            for (requestID, member) in toAnswer {
                core.receive(.response(requestID, .writerInfo(info(from: member))), from: member, at: now)
                count(core.takeEffects(), &figures)
            }
            toAnswer.removeAll(keepingCapacity: true)
            core.wake(at: now)
            count(core.takeEffects(), &figures)
            for _ in 0..<requestsPerMillisecond {
                figures.requests += 1
                core.receive(.writerStatus(RequestID(figures.requests), streamURI), from: client, at: now)
                for case .send(.writerInfo(let header), let target) in core.takeEffects() {
                    callCount += 1
                    if callCount % 100 != 0 {
                        toAnswer.append((header.requestID, target))
                    } else {
                        silent.append((header.requestID, millisecond))
                    }
                }
            }
            figures.timersMax = max(figures.timersMax, core.timerCount)
            figures.callsInFlightMax = max(figures.callsInFlightMax, core.calls.count)
            precondition(core.timerCount <= core.liveDeadlineCountMax)
        }
        figures.calls = callCount
        let timeoutMilliseconds = Int(ServerConfiguration().callTimeout.milliseconds)
        for (requestID, sent) in silent where sent + timeoutMilliseconds < seconds * 1000 {
            figures.silentOld += 1
            if core.calls[requestID] == nil { figures.silentExpired += 1 }
        }
        return figures
    }

    /// Answers to the client: a merged WriterInfo once two of three members answered.
    private func count(_ effects: [Effect], _ figures: inout Figures) {
        for case .send(.response(_, .writerInfo), let target) in effects where target.isClient {
            figures.answered += 1
        }
    }

    private func info(from member: NodeID) -> WriterInfo {
        WriterInfo(
            writerID: .zero, writerAddress: "", leaseMilliseconds: 0, remainingLeaseMilliseconds: 0,
            streamVersion: 1, server: member, committedID: 0, tailID: 0, tailWriterID: .zero, hasGap: false)
    }
}
