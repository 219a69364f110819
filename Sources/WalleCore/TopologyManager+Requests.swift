import WalleEnvironment

extension TopologyManager {
    /// A TopologyRequest from an operator or a client. Decided against the topology as it will
    /// be once the queued changes are made: answered at once when it is already so (or cannot
    /// be), else queued as a change and answered with the root entry of the version that makes
    /// it, once that version is acknowledged, never before.
    public mutating func request(_ route: Route, _ request: TopologyRequest) -> [ManagerAction] {
        defer { checkInvariants() }
        if let error = Boundary.checkTopologyRequest(request) { return [.answer(route, .failed(error))] }
        guard isClaimed, let rootEntry else {
            return [.answer(route, .failed(WalleError(.unavailable, "not the topology manager now; ask again")))]
        }
        guard let asked = Self.change(for: request) else { return [.answer(route, .entry(rootEntry))] }
        if case .register(let node, _) = asked, node != route.node {
            // An address decides where every peer sends; only the server itself may say it.
            return [.answer(route, .failed(WalleError(
                .permissionDenied, "\(route.node.short) may not register the address of server \(node.short)")))]
        }
        if let index = pending.firstIndex(where: { $0.change == asked }) { return join(index, route) }
        let change: TopologyChange
        switch Self.decide(asked, in: projected) {
        case .answerNow: return [.answer(route, .entry(rootEntry))]
        case .refuse(let error): return [.answer(route, .failed(error))]
        case .queue(let made): change = made
        }
        guard pending.count < configuration.pendingChangesMax else {
            return [.answer(route, .failed(WalleError(
                .resourceExhausted, "\(pending.count) topology changes are queued; retry later")))]
        }
        pending.append(PendingChange(change: change, routes: [route], fromRequest: true))
        var actions: [ManagerAction] = [.note("manager: queued \(change) for \(route.node.short)")]
        if case .waiting(let topology, let target) = state { actions += advance(topology, removalTarget: target) }
        return actions
    }

    /// A request for a change already queued waits with it. A client that asks again (its
    /// call timed out) replaces its earlier wait instead of adding one.
    private mutating func join(_ index: Int, _ route: Route) -> [ManagerAction] {
        if let same = pending[index].routes.firstIndex(where: { $0.node == route.node }) {
            pending[index].routes[same] = route
            return []
        }
        guard pending[index].routes.count < configuration.routesPerChangeMax else {
            let count = configuration.routesPerChangeMax
            return [.answer(route, .failed(WalleError(
                .resourceExhausted, "\(count) requests already wait for \(pending[index].change); retry later")))]
        }
        pending[index].routes.append(route)
        return []
    }

    /// The topology once every queued change that can still be made is made.
    var projected: Topology {
        var topology = self.topology
        for entry in pending {
            guard case .queue(let change) = Self.decide(entry.change, in: topology) else { continue }
            topology = Self.applying(change, to: topology)
        }
        return topology
    }

    enum Decision: Equatable {
        case answerNow
        case refuse(WalleError)
        case queue(TopologyChange)
    }

    /// The change a request asks for; nil for a fetch.
    static func change(for request: TopologyRequest) -> TopologyChange? {
        switch request {
        case .fetch: return nil
        case .createStream(let uri, let members): return .create(uri, members: members.sorted())
        case .addMember(let uri, let node): return .add(uri, node)
        case .removeMember(let uri, let node): return .remove(uri, node)
        case .registerServer(let node, let text):
            // The boundary checked that it parses.
            guard let address = try? ServerAddress(parsing: text) else {
                preconditionFailure("`Boundary.checkTopologyRequest` parsed the address")
            }
            return .register(node, address: address)
        case .trim(let uri, let first): return .trim(uri, firstEntryID: first)
        }
    }

    /// What `change` would do to `topology`: nothing (already so), an error, or the change.
    static func decide(_ change: TopologyChange, in topology: Topology) -> Decision {
        if let error = refusal(change, in: topology) { return .refuse(error) }
        if change.isApplied(in: topology) { return .answerNow }
        let size = topology.encodedByteCount + change.encodedGrowth(in: topology)
        guard size <= Topology.encodedSizeMax else {
            return .refuse(WalleError(
                .resourceExhausted, "\(change) would make the topology \(size) bytes, over one entry"))
        }
        return .queue(change)
    }

    /// Why `change` cannot be made to `topology`, if it cannot.
    private static func refusal(_ change: TopologyChange, in topology: Topology) -> WalleError? {
        let stream = change.uri.flatMap { topology.streams[$0] }
        switch change {
        case .register:
            return nil
        case .trim(let uri, _):
            return stream == nil ? notFound(uri) : nil
        case .create(let uri, let members):
            guard let stream else { return unregistered(members, in: topology) }
            guard stream.members != members.sorted() else { return nil }
            let names = stream.members.map(\.short).joined(separator: ",")
            return WalleError(.failedPrecondition, "\(uri) exists with members \(names)")
        case .add(let uri, let node):
            guard let stream else { return notFound(uri) }
            guard !stream.contains(node) else { return nil }
            guard stream.members.count < Topology.membersMax else {
                return WalleError(
                    .failedPrecondition, "\(uri) has \(stream.members.count) members, the most a stream has")
            }
            return unregistered([node], in: topology)
        case .remove(let uri, let node):
            guard let stream else { return notFound(uri) }
            guard stream.contains(node), stream.members.count <= 1 else { return nil }
            return WalleError(.failedPrecondition, "\(node.short) is the last member of \(uri)")
        }
    }

    /// [MEM-1]: once servers register (real nodes do when they start), a member must be one of
    /// them, or nobody could reach it. Unavailable, so a request for a server that is still
    /// starting is asked again. A topology without registered servers (the simulator's, whose
    /// network needs no addresses) takes any server id.
    private static func unregistered(_ members: [NodeID], in topology: Topology) -> WalleError? {
        guard !topology.servers.isEmpty, let missing = members.first(where: { topology.servers[$0] == nil }) else {
            return nil
        }
        return WalleError(.unavailable, "server \(missing.rawValue) has not registered its address; start it first")
    }

    private static func notFound(_ uri: StreamURI) -> WalleError {
        WalleError(.notFound, "\(uri) is not in the topology")
    }

    /// The claim was lost: every request waiting on a change is told to ask again, and the
    /// changes they asked for are dropped (asked again, they are decided afresh; kept, a change
    /// could come back long after an operator undid it). The simulator's own changes stay: the
    /// next claim makes them, or finds them made.
    mutating func refuseWaitingRequests() -> [ManagerAction] {
        let error = WalleError(.unavailable, "the topology manager lost the root stream; ask again")
        let actions: [ManagerAction] = pending.flatMap { change in change.routes.map { .answer($0, .failed(error)) } }
        pending.removeAll { $0.fromRequest }
        for index in pending.indices { pending[index].routes = [] }
        return actions
    }
}

extension TopologyManager {
    /// Asks the next root member who writes the root stream, and for how much longer.
    mutating func probe(_ root: StreamURI, _ configured: [NodeID]) -> [ManagerAction] {
        let members = topology.streams[root]?.members ?? configured
        guard !members.isEmpty else { return [.invalid("no root members to ask who manages the topology")] }
        lastStatusRequestID += 1
        statusCursor += 1
        let member = members[statusCursor % members.count]
        state = .probing(topology, requestID: lastStatusRequestID, member: member)
        return [
            .send(.writerStatus(lastStatusRequestID, root), to: member),
            .schedule(.probeTimeout(lastStatusRequestID), after: configuration.probeTimeout),
        ]
    }

    /// A probe's answer, from `.unclaimed`: claim when no writer holds a live lease, else look
    /// again when the lease would end; on a refusal, ask the next member.
    mutating func probeAnswered(_ reply: Reply) -> [ManagerAction] {
        guard case .writerInfo(let info) = reply else { return [.schedule(.claim, after: configuration.retryDelay)] }
        if info.writerID.isZero || info.remainingLeaseMilliseconds <= 0 { return [.claimRoot] }
        // Bounded: a lease is at most `leaseMax` (60 s), checked where it was granted.
        let remaining = min(info.remainingLeaseMilliseconds, 60_000)
        let jitter = Self.draw(0...max(0, configuration.probeJitterMilliseconds), &random)
        return [.schedule(.claim, after: .milliseconds(remaining + jitter))]
    }
}
