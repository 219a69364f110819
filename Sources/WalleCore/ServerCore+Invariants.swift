import WalleEnvironment

// The invariants every entry point ends with (`finishEvent`), TigerBeetle's way: what must hold
// (positive space) and what must never exist (negative space). The cheap ones, O(1), run in
// release builds too; the ones that walk the tables run with `deepChecksEnabled` (the
// simulator, the fuzzers and the unit tests turn it on).
extension ServerCore {
    func checkInvariants() {
        // An event leaves nothing half done: its writes are submitted, its continuations queued.
        precondition(pendingWrites.isEmpty, "an event ended with writes not submitted")
        precondition(awaitingFlush.isEmpty, "an event ended with continuations not handed to group commit")
        // Every table is within its bound (each bound is derived in ServerConfiguration).
        precondition(timers.count <= timerCountMax, "\(timers.count) timers: over the derived bound \(timerCountMax)")
        precondition(calls.count <= configuration.callsInFlightMax, "\(calls.count) calls over callsInFlightMax")
        precondition(
            readWaiterCount >= 0 && readWaiterCount <= configuration.pollWaitersMax, "read waiters out of bounds")
        precondition(newWriterWaits.count <= configuration.newWriterWaitsMax, "NewWriter waits over their bound")
        precondition(diskReads.count <= configuration.diskReadsMax, "disk reads over diskReadsMax")
        precondition(unresponsivePeers.count <= callsByTarget.count, "a presumed-down peer without calls")
        // A round of topology polls always has its deadline.
        precondition(!topologyWatch.isPolling || timers.contains(.topologyPollTimeout), "a poll round without deadline")
        precondition(registration.state == .idle || timers.contains(.registration), "a registration without deadline")
        if configuration.deepChecksEnabled { checkTables() }
    }

    /// O(calls + streams + processes): the tables agree with each other.
    private func checkTables() {
        precondition(
            timers.count <= liveDeadlineCountMax, "\(timers.count) timers for \(liveDeadlineCountMax) live deadlines")
        precondition(groupCommit.waiterCount <= configuration.syncWaitersMax + newWriterWaits.count + streams.count)
        precondition(groupCommit.storedCount <= groupCommit.storedCountMax, "released sync waiters pile up")
        precondition(unresponsivePeers.isSubset(of: callsByTarget.keys), "a presumed-down peer without calls")
        // Each call is counted once under its target, and a target without calls has no key.
        precondition(callsByTarget.values.allSatisfy { $0 > 0 }, "a peer with no calls keeps a count")
        precondition(callsByTarget.values.reduce(0, +) == calls.count, "per-peer counts disagree with the calls")
        precondition(readWaiters.values.reduce(0) { $0 + $1.count } == readWaiterCount, "read waiter count is off")
        // Processes live only while they wait for an answer: none is left behind with nothing out.
        precondition(claims.count + coordinations.count <= calls.count, "a claim or coordination waits for nothing")
        for (uri, replica) in streams {
            precondition(replica.uri == uri, "a replica filed under another stream")
            replica.checkInvariants()
            checkCatchUp(uri, replica)
        }
    }

    /// A fast-forward's timer exists exactly while it is scheduled, and a replica's queue is
    /// within its bound.
    private func checkCatchUp(_ uri: StreamURI, _ replica: StreamReplica) {
        let fastForwardTimer = timers.contains(.fastForward(uri))
        precondition(
            fastForwardTimer == (replica.fastForward.state == .scheduled), "fast-forward timer and state disagree")
        precondition(replica.queueCount <= configuration.queuedPutsMax, "queued puts over queuedPutsMax")
    }
}
