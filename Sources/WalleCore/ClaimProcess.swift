import WalleEnvironment

/// The phases of ClaimWriter (docs/protocol.md, "ClaimWriter"), in order. Also the tag each of a
/// claim's calls carries, so an answer from a phase the claim has left is recognised and dropped.
enum ClaimPhase: Hashable {
    case newWriter
    case tails
    case align
    case restamp
    case commit
}

/// One ClaimWriter this node coordinates: NewWriter to every member, collect and align the tails
/// of the first majority that answered, choose the winning chain, re-stamp it under the new
/// writer, commit it. Sans-IO: an answer goes in, the next round to send comes out
/// (`ClaimStep`); the core sends it and keeps the process in `claims` until it finishes.
struct ClaimProcess {
    enum State {
        /// [CLAIM-1]: NewWriter to every member, re-sent to silent ones until `retryUntil`.
        case newWriter(quorum: Quorum, retryUntil: Instant)
        /// [CLAIM-2] step 1: the tail of each claim-set member, asked of all at `startedAt`.
        /// `alignRounds` counts the align rounds before this one.
        case tails(
            claimSet: [NodeID], alignRounds: Int, startedAt: Instant, outstanding: Int,
            collected: [NodeID: [Entry]])
        /// [CLAIM-2] steps 2 and 3: the lagging members brought up to the highest committed entry.
        case align(claimSet: [NodeID], alignRounds: Int, outstanding: Int)
        /// [CLAIM-4]: the winning chain re-stamped where a member needs it; `tail` is its last
        /// entry stamped with the new writer.
        case restamp(claimSet: [NodeID], outstanding: Int, tail: Entry)
        /// [CLAIM-5]: `tail` committed on the claim set, asked of all at `startedAt`.
        case commit(claimSet: [NodeID], startedAt: Instant, outstanding: Int, tail: Entry)
    }

    let route: Route
    let uri: StreamURI
    let writer: WriterID
    /// The stream version whose member list this claim counts majorities of.
    let version: UInt64
    let members: [NodeID]
    let address: String
    let leaseMilliseconds: Int64
    private(set) var state: State

    init(
        route: Route, uri: StreamURI, writer: WriterID, version: UInt64, members: [NodeID],
        address: String, leaseMilliseconds: Int64, retryUntil: Instant
    ) {
        precondition(!members.isEmpty, "a claim needs members")
        self.route = route
        self.uri = uri
        self.writer = writer
        self.version = version
        self.members = members
        self.address = address
        self.leaseMilliseconds = leaseMilliseconds
        self.state = .newWriter(quorum: Quorum(memberCount: members.count), retryUntil: retryUntil)
    }

    var phase: ClaimPhase {
        switch state {
        case .newWriter: return .newWriter
        case .tails: return .tails
        case .align: return .align
        case .restamp: return .restamp
        case .commit: return .commit
        }
    }

    /// Whether a NewWriter that went unanswered is sent again: only while no majority has
    /// decided and a lease could still end before `retryUntil`.
    func mayResendNewWriter(now: Instant) -> Bool {
        guard case .newWriter(let quorum, let retryUntil) = state else { return false }
        return !quorum.isDecided && now < retryUntil
    }

    /// An answer to one of this claim's calls of the current phase (the caller drops the others).
    mutating func answered(from source: NodeID, _ reply: Reply, now: Instant, alignRoundsMax: Int) -> ClaimStep {
        if case .newWriter(var quorum, let retryUntil) = state {
            let decision: Quorum.Decision?
            if case .failed(let error) = reply {
                decision = quorum.recordFailure(error, from: source)
            } else {
                decision = quorum.recordSuccess(source)
            }
            state = .newWriter(quorum: quorum, retryUntil: retryUntil)
            switch decision {
            case .succeeded(let claimSet)?: return ClaimStep(next: askTails(claimSet, alignRounds: 0, now: now))
            case .failed(let error)?: return ClaimStep(next: .finish(.failed(error)))
            case nil: return ClaimStep(next: .wait)
            }
        }
        if case .failed(let error) = reply { return ClaimStep(next: .finish(.failed(error))) }
        return roundAnswered(from: source, reply, now: now, alignRoundsMax: alignRoundsMax)
    }

    /// A successful answer in a phase after NewWriter: counted, and the next round once all are in.
    private mutating func roundAnswered(
        from source: NodeID, _ reply: Reply, now: Instant, alignRoundsMax: Int
    ) -> ClaimStep {
        switch state {
        case .newWriter:
            preconditionFailure("NewWriter answers are counted by the quorum")
        case .tails(let claimSet, let alignRounds, let startedAt, let outstanding, var collected):
            precondition(outstanding > 0, "a tails answer nobody waits for")
            if case .entries(let entries) = reply { collected[source] = entries }
            state = .tails(
                claimSet: claimSet, alignRounds: alignRounds, startedAt: startedAt,
                outstanding: outstanding - 1, collected: collected)
            guard outstanding == 1 else { return ClaimStep(next: .wait) }
            let tails = ClaimTails(claimSet: claimSet, collected: collected)
            var step = alignOrChoose(tails, alignRounds: alignRounds, now: now, alignRoundsMax: alignRoundsMax)
            step.quorumStartedAt = startedAt
            return step
        case .align(let claimSet, let alignRounds, let outstanding):
            precondition(outstanding > 0, "an align answer nobody waits for")
            state = .align(claimSet: claimSet, alignRounds: alignRounds, outstanding: outstanding - 1)
            guard outstanding == 1 else { return ClaimStep(next: .wait) }
            return ClaimStep(next: askTails(claimSet, alignRounds: alignRounds, now: now))
        case .restamp(let claimSet, let outstanding, let tail):
            precondition(outstanding > 0, "a re-stamp answer nobody waits for")
            state = .restamp(claimSet: claimSet, outstanding: outstanding - 1, tail: tail)
            guard outstanding == 1 else { return ClaimStep(next: .wait) }
            return ClaimStep(next: commit(claimSet, tail: tail, now: now))
        case .commit(let claimSet, let startedAt, let outstanding, let tail):
            precondition(outstanding > 0, "a commit answer nobody waits for")
            state = .commit(claimSet: claimSet, startedAt: startedAt, outstanding: outstanding - 1, tail: tail)
            guard outstanding == 1 else { return ClaimStep(next: .wait) }
            return ClaimStep(quorumStartedAt: startedAt, next: .finish(.claimed(writer, tail: tail)))
        }
    }

    /// [CLAIM-2] step 1: every claim-set member's committed entry and uncommitted tail.
    private mutating func askTails(_ claimSet: [NodeID], alignRounds: Int, now: Instant) -> ClaimNext {
        precondition(claimSet.count > members.count / 2, "a claim set is a majority")
        precondition(claimSet.allSatisfy(members.contains), "a claim set is made of members")
        state = .tails(
            claimSet: claimSet, alignRounds: alignRounds, startedAt: now, outstanding: claimSet.count,
            collected: [:])
        return .askTails(claimSet)
    }

    /// [CLAIM-2] steps 2 and 3: bring every member up to the highest committed entry, or, when
    /// none lags, choose.
    private mutating func alignOrChoose(
        _ tails: ClaimTails, alignRounds: Int, now: Instant, alignRoundsMax: Int
    ) -> ClaimStep {
        let committed = tails.lists.map { $0[0] }
        guard let highest = committed.max(by: { $0.id < $1.id }) else { preconditionFailure("an empty claim set") }
        if committed.contains(where: { $0.id == highest.id && $0.checksum != highest.checksum }) {
            return ClaimStep(next: .finish(.failed(WalleError(
                .dataLoss, "members disagree on committed entry \(highest.id)"))))
        }
        let lagging = tails.claimSet.indices.filter { committed[$0].id < highest.id }.map { tails.claimSet[$0] }
        if lagging.isEmpty { return choose(tails, now: now) }
        guard alignRounds < alignRoundsMax else {
            return ClaimStep(next: .finish(.failed(WalleError(.unavailable, "committed ids did not align"))))
        }
        state = .align(claimSet: tails.claimSet, alignRounds: alignRounds + 1, outstanding: lagging.count)
        return ClaimStep(next: .align(lagging, to: highest))
    }

    /// [CLAIM-3] and [CLAIM-4]: the tail with the highest writer id (then the highest entry id)
    /// wins; every member gets the winning chain from the first index where its own differs,
    /// stamped with the new writer id.
    private mutating func choose(_ tails: ClaimTails, now: Instant) -> ClaimStep {
        let winnerIndex = tails.lists.indices.max { lhs, rhs in
            let (a, b) = (tails.last(lhs), tails.last(rhs))
            return a.writerID != b.writerID ? a.writerID < b.writerID : a.id < b.id
        }
        guard let winnerIndex else { preconditionFailure("an empty claim set") }
        let winner = tails.claimSet[winnerIndex]
        let chain = tails.lists[winnerIndex]
        let tail = tails.last(winnerIndex).stamped(writer)
        precondition(tail.writerID == writer, "the claimed tail carries the new writer's stamp")
        var sends: [(NodeID, [Entry])] = []
        for (member, list) in zip(tails.claimSet, tails.lists) {
            var start = member == winner ? chain.count - 1 : 0
            if member != winner {
                while start < min(list.count, chain.count) && list[start].checksum == chain[start].checksum {
                    start += 1
                }
            }
            let suffix = chain[max(start, 1)...].map { $0.stamped(writer) }
            if !suffix.isEmpty { sends.append((member, suffix)) }
        }
        precondition(sends.count <= tails.claimSet.count, "one re-stamp call per member at most")
        precondition(sends.allSatisfy { $0.1.allSatisfy { $0.writerID == writer } }, "re-stamps carry the new writer")
        let choice = ClaimStep.Choice(last: tails.last(winnerIndex), member: winner, restamps: sends.count)
        if sends.isEmpty { return ClaimStep(choice: choice, next: commit(tails.claimSet, tail: tail, now: now)) }
        state = .restamp(claimSet: tails.claimSet, outstanding: sends.count, tail: tail)
        return ClaimStep(choice: choice, next: .restamp(sends))
    }

    /// [CLAIM-5]: commit the winning tail on every claim-set member.
    private mutating func commit(_ claimSet: [NodeID], tail: Entry, now: Instant) -> ClaimNext {
        precondition(tail.writerID == writer, "a claim commits its own stamp")
        state = .commit(claimSet: claimSet, startedAt: now, outstanding: claimSet.count, tail: tail)
        return .commit(claimSet, tail: tail)
    }
}

/// What the core does after a claim's answer, in this order: record the quorum, note the choice,
/// then `next`.
struct ClaimStep {
    /// [CLAIM-3]'s choice, for the trace: the winning chain's last entry as it was, its member,
    /// and how many members get a re-stamp.
    struct Choice {
        var last: Entry
        var member: NodeID
        var restamps: Int
    }

    /// Set when a round that asked the whole claim set (tails, commit) got every answer: the
    /// instant it was asked, for the quorum record.
    var quorumStartedAt: Instant?
    var choice: Choice?
    var next: ClaimNext
}

/// The next round of a claim, or its end.
enum ClaimNext {
    /// More answers are due in this round.
    case wait
    /// The claim is over: answer the client with this.
    case finish(Reply)
    case askTails([NodeID])
    case align([NodeID], to: Entry)
    case restamp([(NodeID, [Entry])])
    case commit([NodeID], tail: Entry)
}

/// Every claim-set member's tail in claim-set order, once all have answered. Each list is
/// non-empty (the boundary refuses an empty tail): its first entry is the member's committed
/// entry, its last the tail.
struct ClaimTails {
    let claimSet: [NodeID]
    let lists: [[Entry]]

    init(claimSet: [NodeID], collected: [NodeID: [Entry]]) {
        self.claimSet = claimSet
        self.lists = claimSet.map { member in
            guard let list = collected[member], !list.isEmpty else {
                preconditionFailure("claim-set member \(member) has no tail after a full round")
            }
            return list
        }
    }

    func last(_ index: Int) -> Entry {
        guard let entry = lists[index].last else { preconditionFailure("an empty tail") }
        return entry
    }
}
