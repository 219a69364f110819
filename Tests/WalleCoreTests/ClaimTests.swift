import Testing
@testable import WalleCore
import WalleEnvironment

/// Drives one coordinator through ClaimWriter by answering its calls by hand. "§6" in the
/// suite's name is the original design's ClaimWriter section; docs/protocol.md, "ClaimWriter",
/// describes the phases.
@Suite("Coordinator: ClaimWriter phases (§6)")
struct ClaimTests {
    func requests(_ effects: [Effect]) -> [(requestID: RequestID, message: Message, target: NodeID)] {
        effects.sends.compactMap { send in
            switch send.message {
            case .newWriter(let h, _, _, _), .tailEntries(let h), .putEntryInternal(let h, _, _, _, _),
                .restampEntries(let h, _):
                return (h.requestID, send.message, send.target)
            default:
                return nil
            }
        }
    }

    @Test("NewWriter to all, tails from the claim set, the newest chain re-stamped and committed")
    func fullClaim() throws {
        var core = makeServer(1)
        core.receive(
            .claimWriter(1, streamURI, writerAddress: "client", leaseMilliseconds: 1000), from: node(100), at: at(0))
        let newWriters = requests(core.takeEffects())
        #expect(newWriters.map(\.target) == [node(1), node(2), node(3)])
        guard case .newWriter(_, let writer, _, _) = newWriters[0].message else {
            throw WalleError(.internal, "not NewWriter")
        }

        // A majority (2 and 3) answers; node 1 is slow. The claim goes on with {2, 3}.
        core.receive(.response(newWriters[1].requestID, .ok), from: node(2), at: at(1))
        #expect(requests(core.takeEffects()).isEmpty, "one answer is not a majority")
        core.receive(.response(newWriters[2].requestID, .ok), from: node(3), at: at(2))
        let tails = requests(core.takeEffects())
        #expect(tails.map(\.target) == [node(2), node(3)])

        // Node 3 holds an uncommitted entry 1 of an older writer: it wins over the bare Entry0.
        let old = chain(from: .zero, count: 1, writer: writerA)[0]
        core.receive(.response(tails[0].requestID, .entries([.zero])), from: node(2), at: at(3))
        core.receive(.response(tails[1].requestID, .entries([.zero, old])), from: node(3), at: at(3))
        let restamps = requests(core.takeEffects())
        #expect(restamps.count == 2)
        for restamp in restamps {
            guard case .restampEntries(_, let entries) = restamp.message, entries.count == 1 else {
                Issue.record("expected a re-stamp of one entry, got \(restamp.message)")
                continue
            }
            #expect(entries[0].sameContent(as: old))
            #expect(entries[0].writerID == writer)
        }
        for restamp in restamps { core.receive(.response(restamp.requestID, .ok), from: restamp.target, at: at(4)) }
        let commits = requests(core.takeEffects())
        #expect(commits.count == 2)
        for commit in commits {
            guard case .putEntryInternal(_, .claimCommit, let entry, let committedID, _) = commit.message else {
                Issue.record("expected a commit, got \(commit.message)")
                continue
            }
            #expect(entry.id == 1 && committedID == 1)
        }
        for commit in commits { core.receive(.response(commit.requestID, .ok), from: commit.target, at: at(5)) }
        let answer = core.takeEffects().replies.first { $0.target == node(100) }
        guard case .claimed(let claimedWriter, let tail)? = answer?.reply else {
            Issue.record("expected the claim to succeed, got \(String(describing: answer))")
            return
        }
        #expect(claimedWriter == writer)
        #expect(tail.sameContent(as: old) && tail.writerID == writer)
    }

    @Test("A claim fails once a majority refuses NewWriter")
    func majorityRefuses() {
        var core = makeServer(1)
        core.receive(
            .claimWriter(1, streamURI, writerAddress: "client", leaseMilliseconds: 1000), from: node(100), at: at(0))
        let newWriters = requests(core.takeEffects())
        let refusal = Reply.failed(WalleError(.failedPrecondition, "newer writer"))
        core.receive(.response(newWriters[1].requestID, refusal), from: node(2), at: at(1))
        core.receive(
            .response(newWriters[2].requestID, .failed(WalleError(.unavailable, "busy"))), from: node(3), at: at(1))
        let answer = core.takeEffects().replies.first { $0.target == node(100) }
        #expect(answer?.reply.errorCode == .failedPrecondition, "a final error outranks a retryable one ([BC-3])")
    }

    @Test("A claim whose coordinator leaves the stream ends at its next NewWriter timeout, not never")
    func claimEndsWhenItsStreamIsDropped() {
        var core = makeServer(1)
        core.receive(
            .claimWriter(1, streamURI, writerAddress: "client", leaseMilliseconds: 1000), from: node(100), at: at(0))
        #expect(requests(core.takeEffects()).count == 3)
        core.apply(Topology(
            version: 2, streams: [streamURI: StreamTopology(version: 2, members: [node(2), node(3), node(4)])]))
        _ = core.takeEffects()
        // The members wait out a lease; every NewWriter call reaches its retry timeout.
        core.wake(at: at(5_000))
        let answer = core.takeEffects().replies.first { $0.target == node(100) }
        #expect(answer?.reply.errorCode == .unavailable, "the claim ends because the stream moved")
        #expect(core.claims.isEmpty && core.calls.isEmpty, "nothing of the claim is left behind")
    }

    @Test("Committed ids are aligned before tails are compared ([CLAIM-2])")
    func alignment() {
        var core = makeServer(1)
        core.receive(
            .claimWriter(1, streamURI, writerAddress: "client", leaseMilliseconds: 1000), from: node(100), at: at(0))
        let newWriters = requests(core.takeEffects())
        core.receive(.response(newWriters[1].requestID, .ok), from: node(2), at: at(1))
        core.receive(.response(newWriters[2].requestID, .ok), from: node(3), at: at(1))
        let tails = requests(core.takeEffects())
        let committedOnThree = chain(from: .zero, count: 2, writer: writerA)
        core.receive(.response(tails[0].requestID, .entries([.zero, committedOnThree[0]])), from: node(2), at: at(2))
        core.receive(.response(tails[1].requestID, .entries([committedOnThree[1]])), from: node(3), at: at(2))
        let pushes = requests(core.takeEffects())
        #expect(pushes.count == 1)
        #expect(pushes.first?.target == node(2))
        if case .putEntryInternal(_, let kind, let entry, _, _)? = pushes.first?.message {
            #expect(kind == .claimAlign)
            #expect(entry == committedOnThree[1], "the committed entry keeps its old writer id")
        } else {
            Issue.record("expected an alignment push")
        }
    }
}
