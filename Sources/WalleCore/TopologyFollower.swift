public import WalleEnvironment

/// A client follows the topology itself (docs/protocol.md, "How clients follow it"): the same
/// rounds of long polls a server runs (`TopologyWatch`), one per root member, for the version
/// after the newest seen. Sans-IO: the host sends the polls it returns, hands it every answer
/// and calls `tick` at `wakeAt`. Writers (`WriterClient`) and readers use it, in the simulator
/// and in production, so nothing outside a client hands it a member list.
public struct TopologyFollower: Sendable {
    public let source: TopologySource
    private var watch: TopologyWatch
    /// When the next round starts; nil while one is out and before `start`.
    private var pollAt: Instant?
    /// The current round's one deadline.
    private var deadline: Instant?
    private var started = false
    /// The polls' request ids count from 2^62 above the host's base, apart from the host's
    /// own requests: a late answer to a poll must never pass for the answer to a put ([W-9]).
    private var lastRequestID: RequestID
    /// A member holds a long poll for its `pollTimeout` (5 s by default): a round that lasts
    /// longer lost its answers.
    private let roundTimeout: Duration
    /// The pause between rounds when one brought nothing newer.
    private let retryDelay: Duration

    /// One long poll to send.
    public struct Poll: Sendable {
        public let server: NodeID
        public let message: Message
    }

    /// What an answer to one of the follower's polls brought.
    public struct Answer: Sendable {
        /// A newer topology, already applied to the follower's root members.
        public let topology: Topology?
        /// The next round's polls, when it starts at once.
        public let polls: [Poll]
    }

    public init(_ source: TopologySource, requestIDBase: RequestID, roundTimeout: Duration, retryDelay: Duration) {
        precondition(!source.rootMembers.isEmpty, "a follower needs a root member to ask")
        self.source = source
        self.watch = TopologyWatch(rootMembers: source.rootMembers)
        self.lastRequestID = requestIDBase &+ (1 << 62)
        self.roundTimeout = roundTimeout
        self.retryDelay = retryDelay
    }

    /// When `tick` has work: the next round, or the current round's deadline.
    public var wakeAt: Instant? { [pollAt, deadline].compactMap { $0 }.min() }

    /// The root stream's members as the newest topology names them.
    public var rootMembers: [NodeID] { watch.rootMembers }

    /// Starts following, once: the first round's polls.
    public mutating func start(now: Instant) -> [Poll] {
        guard !started else { return [] }
        started = true
        pollAt = now
        return tick(now: now)
    }

    /// A due round starts, or an overdue one is given up and started again.
    public mutating func tick(now: Instant) -> [Poll] {
        if let deadline, deadline <= now, watch.roundTimedOut() {
            self.deadline = nil
            pollAt = now
        }
        guard let due = pollAt, due <= now, !watch.isPolling else { return [] }
        let next = watch.nextVersion
        let polls = watch.rootMembers.map { member in (makeRequestID(), member) }
        watch.started(polls)
        pollAt = nil
        deadline = now + roundTimeout
        return polls.map { requestID, member in
            Poll(server: member, message: .pollStream(requestID, source.rootStream, pollEntryID: next))
        }
    }

    /// Nil when the answer is not one of the current round's polls (the host's own, or late).
    public mutating func answered(
        _ requestID: RequestID, _ reply: Reply, from server: NodeID, now: Instant
    ) -> Answer? {
        guard let answer = watch.answered(requestID, reply, from: server) else { return nil }
        var topology: Topology?
        switch answer {
        case .newer(let entry):
            if let decoded = try? Topology.decode(entry.data, entryID: entry.id) {
                let root = decoded.streams[source.rootStream]?.members
                watch.applied(version: decoded.version, rootMembers: root)
                topology = decoded
                pollAt = now
            } else {
                pollAt = now + retryDelay
            }
        case .roundOver:
            pollAt = now + retryDelay
        case .wait:
            break
        }
        if !watch.isPolling { deadline = nil }
        return Answer(topology: topology, polls: tick(now: now))
    }

    private mutating func makeRequestID() -> RequestID {
        lastRequestID += 1
        return lastRequestID
    }
}
