import WalleEnvironment

/// A server's own line in the topology's server table ([MEM-1]): while the newest topology it
/// applied does not list `advertisedAddress` for it, it asks one root member at a time to
/// register it. Only the root member that holds the root stream runs the active manager; the
/// others answer Unavailable, and the next try goes to the next member.
struct Registration {
    enum State: Equatable {
        /// No request out: listed, nothing to list, or waiting for the `.registration` timer
        /// to try again.
        case idle
        /// One request is out, to `member` (only its answer counts); the `.registration` timer
        /// is its deadline.
        case asking(RequestID, member: NodeID)
    }

    var state: State = .idle
    /// The address the newest applied topology lists for this server.
    var listed: ServerAddress?
    /// Rotates the root member asked.
    var cursor = 0
}

extension ServerCore {
    /// Asks a root member to list this server's address, unless the topology lists it, a
    /// request is out, or a retry waits.
    mutating func registerIfNeeded() {
        guard let address = configuration.advertisedAddress, registration.listed != address,
            registration.state == .idle, !timers.contains(.registration)
        else { return }
        let members = topologyWatch.rootMembers
        guard !members.isEmpty else { return }
        registration.cursor = (registration.cursor + 1) % members.count
        let member = members[registration.cursor]
        let requestID = makeRequestID()
        registration.state = .asking(requestID, member: member)
        let own = id
        note("asking \(member.short) to register \(own.short) at \(address)")
        send(.topologyRequest(requestID, .registerServer(own, address: address.description)), to: member)
        timers.schedule(.registration, at: time.monotonic + configuration.statusCallTimeout)
    }

    /// Returns false when the reply is not the registration's. On success the topology that
    /// lists the address is committed; the topology watch applies it when it comes.
    mutating func registrationAnswered(_ requestID: RequestID, _ reply: Reply, from source: NodeID) -> Bool {
        guard case .asking(let asked, let member) = registration.state, asked == requestID, member == source else {
            return false
        }
        registration.state = .idle
        if case .entry = reply {
            timers.cancel(.registration)
            registration.listed = configuration.advertisedAddress
            return true
        }
        // Not the manager, or none now: the timer, already set, asks the next member.
        timers.schedule(.registration, at: time.monotonic + configuration.topologyRetryDelay)
        return true
    }

    /// The request's deadline passed, or a retry's wait ended.
    mutating func registrationTimerFired() {
        registration.state = .idle
        registerIfNeeded()
    }

    /// What the newest applied topology says of the servers: this one's address, and every
    /// server's for the host to dial when the table changed.
    mutating func serversApplied(_ servers: [NodeID: ServerAddress]) {
        registration.listed = servers[id]
        if servers != knownServers {
            knownServers = servers
            outbox.append(.servers(servers))
        }
        registerIfNeeded()
    }
}
