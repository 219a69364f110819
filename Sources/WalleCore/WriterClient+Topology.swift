public import WalleEnvironment

/// A writer follows the topology itself: the same rounds of long polls a server runs
/// (`TopologyWatch`), one per root member, for the version after the newest seen. When its
/// stream's member list moves to a newer stream version, requests go to the new members; when
/// the server table changes, the host learns the new addresses. Nothing outside the client
/// hands it a member list. It starts with the first claim and goes on while the client lives:
/// a closed writer that claims again routes by what it learned meanwhile.
struct TopologyFollower {
    var source: TopologySource
    var watch: TopologyWatch
    /// When the next round starts; nil while one is out.
    var pollAt: Instant?
    /// The current round's one deadline.
    var deadline: Instant?
    /// The stream version whose member list routing uses (0: the one given at the start).
    var streamVersion: UInt64 = 0
    var servers: [NodeID: ServerAddress] = [:]
    /// The polls' request ids count from 2^62 up, apart from the writer's own requests: a late
    /// answer to a poll must never pass for a late refusal of a put ([W-9]).
    var lastRequestID: RequestID

    init(_ source: TopologySource, requestIDBase: RequestID) {
        self.source = source
        self.watch = TopologyWatch(rootMembers: source.rootMembers)
        self.lastRequestID = requestIDBase &+ (1 << 62)
    }

    mutating func makeRequestID() -> RequestID {
        lastRequestID += 1
        return lastRequestID
    }
}

extension WriterClient {
    /// Starts following, once, at the first claim.
    mutating func startFollowing(now: Instant) {
        guard var follower, follower.pollAt == nil, follower.deadline == nil else { return }
        follower.pollAt = now
        self.follower = follower
        followTopology(now: now)
    }

    /// A due round starts, or an overdue one is given up and started again.
    mutating func followTopology(now: Instant) {
        guard var follower else { return }
        if let deadline = follower.deadline, deadline <= now, follower.watch.roundTimedOut() {
            follower.deadline = nil
            follower.pollAt = now
        }
        guard let due = follower.pollAt, due <= now, !follower.watch.isPolling else {
            self.follower = follower
            return
        }
        let next = follower.watch.nextVersion
        let polls = follower.watch.rootMembers.map { member in (follower.makeRequestID(), member) }
        follower.watch.started(polls)
        for (requestID, member) in polls {
            outbox.append(.send(.pollStream(requestID, follower.source.rootStream, pollEntryID: next), to: member))
        }
        follower.pollAt = nil
        // A member holds a long poll for its `pollTimeout` (5 s by default): a round that
        // lasts longer lost its answers.
        follower.deadline = now + configuration.topologyRoundTimeout
        self.follower = follower
    }

    /// Returns false when the answer is not one of the current round's polls.
    mutating func followerAnswered(_ requestID: RequestID, _ reply: Reply, from source: NodeID, now: Instant) -> Bool {
        guard var follower, let answer = follower.watch.answered(requestID, reply, from: source) else { return false }
        switch answer {
        case .newer(let entry):
            if let topology = try? Topology.decode(entry.data, entryID: entry.id) {
                follow(topology, &follower)
                follower.pollAt = now
            } else {
                follower.pollAt = now + configuration.topologyRetryDelay
            }
        case .roundOver:
            follower.pollAt = now + configuration.topologyRetryDelay
        case .wait:
            break
        }
        if !follower.watch.isPolling { follower.deadline = nil }
        self.follower = follower
        followTopology(now: now)
        return true
    }

    /// A newer stream version moves routing to its members; a changed server table goes to
    /// the host. Each stream version decides alone: a lagging root member may answer with an
    /// older topology, which never undoes a newer member list.
    private mutating func follow(_ topology: Topology, _ follower: inout TopologyFollower) {
        let root = topology.streams[follower.source.rootStream]?.members
        follower.watch.applied(version: topology.version, rootMembers: root)
        if let stream = topology.streams[uri], !stream.members.isEmpty, stream.version > follower.streamVersion {
            follower.streamVersion = stream.version
            if stream.members != routing.servers { routing.update(stream.members) }
        }
        if !topology.servers.isEmpty, topology.servers != follower.servers {
            follower.servers = topology.servers
            outbox.append(.servers(topology.servers))
        }
    }

    var followerWakeAt: Instant? {
        guard let follower else { return nil }
        return [follower.pollAt, follower.deadline].compactMap { $0 }.min()
    }
}
