public import WalleEnvironment

/// A writer follows the topology with a `TopologyFollower`, from its first claim on while the
/// client lives: a closed writer that claims again routes by what it learned meanwhile. When its
/// stream's member list moves to a newer stream version, requests go to the new members; when
/// the server table changes, the host learns the new addresses.
extension WriterClient {
    /// What the writer took from the topologies it followed.
    struct Followed {
        /// The stream version whose member list routing uses (0: the one given at the start).
        var streamVersion: UInt64 = 0
        var servers: [NodeID: ServerAddress] = [:]
    }

    /// Starts following, once, at the first claim.
    mutating func startFollowing(now: Instant) {
        guard var follower else { return }
        let polls = follower.start(now: now)
        self.follower = follower
        send(polls)
    }

    /// A due round starts, or an overdue one is given up and started again.
    mutating func followTopology(now: Instant) {
        guard var follower else { return }
        let polls = follower.tick(now: now)
        self.follower = follower
        send(polls)
    }

    /// Returns false when the answer is not one of the current round's polls.
    mutating func followerAnswered(_ requestID: RequestID, _ reply: Reply, from source: NodeID, now: Instant) -> Bool {
        guard var follower, let answer = follower.answered(requestID, reply, from: source, now: now) else {
            return false
        }
        self.follower = follower
        if let topology = answer.topology { follow(topology) }
        send(answer.polls)
        return true
    }

    private mutating func send(_ polls: [TopologyFollower.Poll]) {
        for poll in polls { outbox.append(.send(poll.message, to: poll.server)) }
    }

    /// A newer stream version moves routing to its members; a changed server table goes to
    /// the host. Each stream version decides alone: a lagging root member may answer with an
    /// older topology, which never undoes a newer member list.
    private mutating func follow(_ topology: Topology) {
        if let stream = topology.streams[uri], !stream.members.isEmpty, stream.version > followed.streamVersion {
            followed.streamVersion = stream.version
            if stream.members != routing.servers { routing.update(stream.members) }
        }
        if !topology.servers.isEmpty, topology.servers != followed.servers {
            followed.servers = topology.servers
            outbox.append(.servers(topology.servers))
        }
    }

    var followerWakeAt: Instant? { follower?.wakeAt }
}
