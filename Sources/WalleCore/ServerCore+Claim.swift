import WalleEnvironment

/// The phases of ClaimWriter (docs/protocol.md, "ClaimWriter"), in order.
enum ClaimPhase: Hashable {
    case newWriter
    case tails
    case align
    case restamp
    case commit
}

/// One ClaimWriter this node coordinates.
struct ClaimProcess {
    var route: Route
    var uri: StreamURI
    var writer: WriterID
    /// The stream version whose member list this claim counts majorities of.
    var version: UInt64
    var members: [NodeID]
    var phase: ClaimPhase = .newWriter
    /// When the current phase's requests went out (NewWriter's are re-sent; it is not recorded).
    var phaseStartedAt = Instant.distantPast
    var quorum: Quorum
    /// The members that answered NewWriter first, a majority ([CLAIM-1]).
    var claimSet: [NodeID] = []
    var outstanding = 0
    var tails: [NodeID: [Entry]] = [:]
    var alignRounds = 0
    var maxEntry: Entry?
    var address = ""
    var leaseMilliseconds: Int64 = 0
    /// NewWriter is re-sent to silent members until this instant.
    var newWriterDeadline = Instant.distantPast
}

// ClaimWriter (docs/protocol.md, "ClaimWriter"): NewWriter to all, collect and align tails,
// choose the winning chain, re-stamp it under the new writer, commit it.
extension ServerCore {
    mutating func startClaim(_ route: Route, _ uri: StreamURI, address: String, leaseMilliseconds: Int64) {
        guard let replica = streams[uri] else {
            fail(route, .notFound, "stream \(uri) is not stored on \(id)")
            return
        }
        // [WID-1], with WS-8 softened: never propose a ts at or below what this node knows.
        let wall = UInt64(max(0, time.wall.nanosecondsSinceEpoch))
        let writer = WriterID(ts: max(wall, replica.metadata.writerID.ts + 1), id: random.next())
        let members = replica.metadata.topology.members
        let claimID = makeProcessID()
        claims[claimID] = ClaimProcess(
            route: route, uri: uri, writer: writer, version: replica.metadata.topology.version,
            members: members, quorum: Quorum(memberCount: members.count))
        claims[claimID]!.address = address
        claims[claimID]!.leaseMilliseconds = leaseMilliseconds
        claims[claimID]!.newWriterDeadline = time.monotonic + configuration.leaseMax + configuration.newWriterCallSlack
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
    /// Returns false when the claim has given up on that member.
    mutating func retryNewWriter(_ claimID: UInt64, to member: NodeID) -> Bool {
        guard let claim = claims[claimID], claim.phase == .newWriter, !claim.quorum.isDecided,
            time.monotonic < claim.newWriterDeadline
        else { return false }
        sendNewWriter(claimID, to: member)
        return true
    }

    mutating func claimCallCompleted(_ claimID: UInt64, phase: ClaimPhase, from source: NodeID, _ reply: Reply) {
        guard var claim = claims[claimID], claim.phase == phase else { return }
        if let error = topologyMoved(claim) {
            finishClaim(claimID, .failed(error))
            return
        }
        if phase == .newWriter {
            let decision: Quorum.Decision?
            if case .failed(let error) = reply {
                decision = claim.quorum.recordFailure(error, from: source)
            } else {
                decision = claim.quorum.recordSuccess(source)
            }
            claims[claimID] = claim
            switch decision {
            case .succeeded(let claimSet)?: collectTails(claimID, claimSet: claimSet)
            case .failed(let error)?: finishClaim(claimID, .failed(error))
            case nil: break
            }
            return
        }
        if case .failed(let error) = reply {
            finishClaim(claimID, .failed(error))
            return
        }
        if phase == .tails, case .entries(let entries) = reply {
            claim.tails[source] = entries
        }
        claim.outstanding -= 1
        claims[claimID] = claim
        guard claim.outstanding == 0 else { return }
        if phase == .tails || phase == .commit {
            // The phases that ask the whole claim set, a majority (align and re-stamp ask
            // only the members that need it).
            recordQuorum(claim.uri, version: claim.version, members: claim.members, startedAt: claim.phaseStartedAt)
        }
        switch phase {
        case .tails: alignCommitted(claimID)
        case .align: collectTails(claimID, claimSet: claim.claimSet)
        case .restamp: commitTail(claimID)
        case .commit: finishClaim(claimID, .claimed(claim.writer, tail: claim.maxEntry!))
        case .newWriter: preconditionFailure("handled above")
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
        return WalleError(.unavailable, "stream \(claim.uri) moved from version \(claim.version) to \(current.map(String.init) ?? "none") during the claim")
    }

    /// [CLAIM-2] step 1: every claim-set member's committed entry and uncommitted tail.
    private mutating func collectTails(_ claimID: UInt64, claimSet: [NodeID]) {
        guard var claim = claims[claimID] else { return }
        claim.phase = .tails
        claim.phaseStartedAt = time.monotonic
        claim.claimSet = claimSet
        claim.tails = [:]
        claim.outstanding = claimSet.count
        claims[claimID] = claim
        for member in claimSet {
            call(member, .claim(claimID, claim.uri, .tails)) { .tailEntries($0) }
        }
    }

    /// [CLAIM-2] steps 2 and 3: bring every member up to the highest committed entry.
    private mutating func alignCommitted(_ claimID: UInt64) {
        var claim = claims[claimID]!
        let committed = claim.claimSet.map { claim.tails[$0]![0] }
        let highest = committed.max { $0.id < $1.id }!
        if committed.contains(where: { $0.id == highest.id && $0.checksum != highest.checksum }) {
            finishClaim(claimID, .failed(WalleError(.dataLoss, "members disagree on committed entry \(highest.id)")))
            return
        }
        let lagging = claim.claimSet.filter { claim.tails[$0]![0].id < highest.id }
        if lagging.isEmpty {
            chooseAndRestamp(claimID)
            return
        }
        guard claim.alignRounds < configuration.claimAlignRoundsMax else {
            finishClaim(claimID, .failed(WalleError(.unavailable, "committed ids did not align")))
            return
        }
        claim.alignRounds += 1
        claim.phase = .align
        claim.phaseStartedAt = time.monotonic
        claim.outstanding = lagging.count
        claims[claimID] = claim
        for member in lagging {
            call(member, .claim(claimID, claim.uri, .align)) {
                .putEntryInternal($0, .claimAlign, highest, committedID: highest.id, committedChecksum: highest.checksum)
            }
        }
    }

    /// [CLAIM-3] and [CLAIM-4]: the tail with the highest writer id (then the highest entry
    /// id) wins; every member gets the winning chain from the first differing index, stamped
    /// with the new writer id.
    private mutating func chooseAndRestamp(_ claimID: UInt64) {
        var claim = claims[claimID]!
        let winner = claim.claimSet.max { lhs, rhs in
            let (a, b) = (claim.tails[lhs]!.last!, claim.tails[rhs]!.last!)
            return a.writerID != b.writerID ? a.writerID < b.writerID : a.id < b.id
        }!
        let chain = claim.tails[winner]!
        claim.maxEntry = chain.last!.stamped(claim.writer)
        claim.phase = .restamp
        claim.phaseStartedAt = time.monotonic
        var sends: [(NodeID, [Entry])] = []
        for member in claim.claimSet {
            let list = claim.tails[member]!
            var start = member == winner ? chain.count - 1 : 0
            if member != winner {
                while start < min(list.count, chain.count) && list[start].checksum == chain[start].checksum {
                    start += 1
                }
            }
            let suffix = chain[max(start, 1)...].map { $0.stamped(claim.writer) }
            if !suffix.isEmpty { sends.append((member, suffix)) }
        }
        claim.outstanding = sends.count
        claims[claimID] = claim
        note("claim \(claimID) chose \(chain.last!.brief) from \(winner); \(sends.count) re-stamps")
        if sends.isEmpty {
            commitTail(claimID)
            return
        }
        for (member, entries) in sends {
            call(member, .claim(claimID, claim.uri, .restamp)) { .restampEntries($0, entries) }
        }
    }

    /// [CLAIM-5]: commit the winning tail on every claim-set member.
    private mutating func commitTail(_ claimID: UInt64) {
        var claim = claims[claimID]!
        let tail = claim.maxEntry!
        claim.phase = .commit
        claim.phaseStartedAt = time.monotonic
        claim.outstanding = claim.claimSet.count
        claims[claimID] = claim
        for member in claim.claimSet {
            call(member, .claim(claimID, claim.uri, .commit)) {
                .putEntryInternal($0, .claimCommit, tail, committedID: tail.id, committedChecksum: tail.checksum)
            }
        }
    }

    private mutating func finishClaim(_ claimID: UInt64, _ answer: Reply) {
        guard let claim = claims.removeValue(forKey: claimID) else { return }
        note("claim \(claimID) of \(claim.uri): \(answer)")
        reply(claim.route, answer)
    }
}
