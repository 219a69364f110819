import WalleEnvironment

// ClaimWriter (docs/protocol.md, "ClaimWriter"): the core's side of `ClaimProcess`. It starts
// the claim, sends each round the process asks for, and answers the client at the end.
extension ServerCore {
    mutating func startClaim(_ route: Route, _ uri: StreamURI, address: String, leaseMilliseconds: Int64) {
        guard let replica = streams[uri] else {
            fail(route, .notFound, "stream \(uri) is not stored on \(id)")
            return
        }
        // [WID-1], with WS-8 softened: never propose a ts at or below what this node knows.
        let wall = UInt64(max(0, time.wall.nanosecondsSinceEpoch))
        let writer = WriterID(ts: max(wall, replica.metadata.writerID.ts + 1), id: random.next())
        precondition(writer > replica.metadata.writerID, "a claim proposes a writer newer than any this node knows")
        let members = replica.metadata.topology.members
        let claimID = makeProcessID()
        claims[claimID] = ClaimProcess(
            route: route, uri: uri, writer: writer, version: replica.metadata.topology.version,
            members: members, address: address, leaseMilliseconds: leaseMilliseconds,
            retryUntil: time.monotonic + configuration.leaseMax + configuration.newWriterCallSlack)
        note("claim \(claimID) of \(uri) as \(writer)")
        for member in members { sendNewWriter(claimID, to: member) }
    }

    /// A full call table fails a call at once, which may end the claim in the middle of its
    /// fan-out (found by the core fuzzer): the rest of the fan-out then has nothing to send.
    private mutating func sendNewWriter(_ claimID: UInt64, to member: NodeID) {
        guard let claim = claims[claimID] else { return }
        call(member, .claim(claimID, claim.uri, .newWriter), timeout: configuration.newWriterRetryInterval) {
            .newWriter($0, claim.writer, writerAddress: claim.address, leaseMilliseconds: claim.leaseMilliseconds)
        }
    }

    /// A NewWriter went unanswered: send it again while the claim may still succeed.
    /// Returns false when the claim has given up on that member, or when this node no longer
    /// holds the stream: `call` sends nothing then, and a retry that went nowhere left the claim
    /// waiting for good (found by a review of the entry-point invariants). Its timeout then
    /// reaches the claim, which ends because the stream moved.
    mutating func retryNewWriter(_ claimID: UInt64, to member: NodeID) -> Bool {
        guard let claim = claims[claimID], streams[claim.uri] != nil, claim.mayResendNewWriter(now: time.monotonic)
        else { return false }
        sendNewWriter(claimID, to: member)
        return true
    }

    mutating func claimCallCompleted(_ claimID: UInt64, phase: ClaimPhase, from source: NodeID, _ reply: Reply) {
        guard var claim = claims[claimID], claim.phase == phase else { return }
        precondition(claim.members.contains(source), "claim calls go to the claim's members")
        if let error = topologyMoved(claim) {
            probe(.claimEndedByTopologyMove)
            finishClaim(claimID, .failed(error))
            return
        }
        let step = claim.answered(
            from: source, reply, now: time.monotonic, alignRoundsMax: configuration.claimAlignRoundsMax)
        // Stored before anything is sent: a call the table refuses is answered at once, and that
        // answer must find the claim in its new phase.
        claims[claimID] = claim
        if let startedAt = step.quorumStartedAt {
            recordQuorum(claim.uri, version: claim.version, members: claim.members, startedAt: startedAt)
        }
        if let choice = step.choice {
            note("claim \(claimID) chose \(choice.last.brief) from \(choice.member); \(choice.restamps) re-stamps")
        }
        send(step.next, of: claimID, claim)
    }

    /// Sends a claim's next round. The loops do not look the claim up between calls: if a refused
    /// call ends the claim mid-round, the rest still go out, and their answers find no claim.
    private mutating func send(_ next: ClaimNext, of claimID: UInt64, _ claim: ClaimProcess) {
        let uri = claim.uri
        switch next {
        case .wait:
            return
        case .finish(let answer):
            finishClaim(claimID, answer)
        case .askTails(let claimSet):
            for member in claimSet { call(member, .claim(claimID, uri, .tails)) { .tailEntries($0) } }
        case .align(let lagging, let highest):
            probe(.claimAlignedCommitted)
            for member in lagging {
                call(member, .claim(claimID, uri, .align)) {
                    .putEntryInternal(
                        $0, .claimAlign, highest, committedID: highest.id, committedChecksum: highest.checksum)
                }
            }
        case .restamp(let sends):
            probe(.claimRestampedSuffix)
            for (member, entries) in sends {
                call(member, .claim(claimID, uri, .restamp)) { .restampEntries($0, entries) }
            }
        case .commit(let claimSet, let tail):
            for member in claimSet {
                call(member, .claim(claimID, uri, .commit)) {
                    .putEntryInternal($0, .claimCommit, tail, committedID: tail.id, committedChecksum: tail.checksum)
                }
            }
        }
    }

    /// A claim counts majorities of the member list it started with, while each call carries
    /// the stream's current version. Once the version moves, a later phase would count a
    /// majority of the old list under the new version (seed 103 with --replica-moves: a
    /// claim committed an entry on two of four members, then a removal left it on one of
    /// three). The client claims again under the new list.
    private func topologyMoved(_ claim: ClaimProcess) -> WalleError? {
        let current = streams[claim.uri]?.metadata.topology.version
        guard current != claim.version else { return nil }
        return WalleError(
            .unavailable,
            "stream \(claim.uri) moved from version \(claim.version) "
                + "to \(current.map(String.init) ?? "none") during the claim")
    }

    private mutating func finishClaim(_ claimID: UInt64, _ answer: Reply) {
        guard let claim = claims.removeValue(forKey: claimID) else { return }
        note("claim \(claimID) of \(claim.uri): \(answer)")
        reply(claim.route, answer)
    }
}
