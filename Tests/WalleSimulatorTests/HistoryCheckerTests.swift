import Testing
import WalleCore
import WalleEnvironment
@testable import WalleSimulator

/// The client-history checker on its own: each rule is fed a history that breaks it, and the
/// same history without the break must pass.
@Suite("Client-history checker")
struct HistoryCheckerTests {
    typealias Harness = CheckerTests.Harness

    let uri = try! StreamURI("/checked/stream")
    let older = WriterID(ts: 1, id: 1)
    let newer = WriterID(ts: 2, id: 1)
    let alice = NodeID.client(100)
    let bob = NodeID.client(101)

    /// Entries 1...count of one chain from Entry0, data tagged with `tag`.
    func chain(_ count: Int, writer: WriterID, tag: UInt8 = 0) -> [Entry] {
        var entries: [Entry] = []
        var previous: UInt64 = 0
        for id in 1...EntryID(count) {
            let data: [UInt8] = [tag, UInt8(truncatingIfNeeded: id)]
            let checksum = chainChecksum(previous: previous, data: data)
            entries.append(Entry(id: id, writerID: writer, checksum: checksum, data: data))
            previous = checksum
        }
        return entries
    }

    func checker(_ harness: Harness) -> HistoryChecker {
        HistoryChecker(verdict: harness.verdict, now: { [unowned harness] in harness.now })
    }

    @Test("H1: an id read with another checksum than acknowledged, or off the chain, is reported")
    func oneLog() {
        let log = chain(3, writer: older)
        let fork = chain(3, writer: newer, tag: 9)
        for (reads, broken) in [(log, false), ([log[0], fork[1]], true), ([fork[2]], true)] {
            let harness = Harness()
            let history = checker(harness)
            history.claimInvoked(uri, by: alice)
            history.claimed(uri, older, tail: .zero, by: alice)
            for entry in log.prefix(2) {
                history.putInvoked(entry, by: alice)
                history.acknowledged(uri, entry, by: alice)
            }
            history.read(uri, reads, by: bob)
            #expect((harness.invariant == .clientHistory) == broken, "\(reads.map(\.brief))")
        }
    }

    @Test("H2: a claim whose tail is below a put acknowledged before the claim was invoked is reported")
    func claimsAreLinearizable() {
        let log = chain(3, writer: older)
        for (tail, broken) in [(log[2], false), (log[0], true)] {
            let harness = Harness()
            let history = checker(harness)
            for entry in log {
                history.putInvoked(entry, by: alice)
                history.acknowledged(uri, entry, by: alice)
            }
            harness.now += 1000
            history.claimInvoked(uri, by: bob)
            history.claimed(uri, newer, tail: tail.stamped(newer), by: bob)
            #expect((harness.invariant == .clientHistory) == broken)
        }
    }

    @Test("H3: a put acknowledged to an older writer invoked after a newer claim completed is reported")
    func oneWriter() {
        let log = chain(2, writer: older)
        for (invokedFirst, broken) in [(true, false), (false, true)] {
            let harness = Harness()
            let history = checker(harness)
            if invokedFirst { history.putInvoked(log[1], by: alice) }
            harness.now += 1000
            history.claimInvoked(uri, by: bob)
            history.claimed(uri, newer, tail: log[0].stamped(newer), by: bob)
            harness.now += 1000
            if !invokedFirst { history.putInvoked(log[1], by: alice) }
            history.acknowledged(uri, log[1], by: alice)
            #expect((harness.invariant == .clientHistory) == broken)
        }
    }

    @Test("H4: an acknowledged entry missing from, or different in, the final read is reported")
    func finalRead() {
        let log = chain(4, writer: older)
        let other = chain(4, writer: older, tag: 7)
        for (final, broken) in [(log, false), (Array(log.prefix(2)), true), ([log[0], other[1]] + log[2...], true)] {
            let harness = Harness()
            let history = checker(harness)
            for entry in log.prefix(3) {
                history.putInvoked(entry, by: alice)
                history.acknowledged(uri, entry, by: alice)
            }
            history.finalRead(uri, first: 1, final)
            #expect((harness.invariant == .clientHistory) == broken, "\(final.map(\.brief))")
        }
    }
}

#if DEBUG
@Suite("Client-history checker: a planted bug")
struct HistoryPlantedBugTests {
    /// Seed 38 is the first of `sweep --plant acknowledgeBeforeSync --no-server-oracles` to fail.
    @Test("With the server-side oracles unheard, the history checker alone catches acknowledgeBeforeSync")
    func alone() throws {
        var options = RunOptions()
        try options.plant(["acknowledgeBeforeSync"])
        options.serverOracles = false
        let result = Simulation.run(seed: 38, options: options)
        #expect(result.violation?.invariant == .clientHistory, "\(result.summary)")
        var control = RunOptions()
        control.serverOracles = false
        #expect(Simulation.run(seed: 38, options: control).passed)
    }
}
#endif
