import WalleEnvironment

/// A public request this node coordinates by asking every member.
struct Coordination {
    enum Kind {
        case put
        case writerStatus([WriterInfo])
        /// Waits for every member (or its timeout) and answers with all the answers.
        case streamStatus([WriterInfo], outstanding: Int)
    }

    var route: Route
    var kind: Kind
    var quorum: Quorum
    var uri: StreamURI
    /// The member list and version the requests went out with.
    var version: UInt64
    var members: [NodeID]
    var startedAt: Instant
}

// Coordinating PutEntry and WriterStatus (docs/protocol.md, "Coordinator" and "Reads").
extension ServerCore {
    mutating func coordinatePut(_ route: Route, _ uri: StreamURI, _ entry: Entry, commit: CommitMarker) {
        guard let replica = streams[uri] else {
            fail(route, .notFound, "stream \(uri) is not stored on \(id)")
            return
        }
        let members = replica.metadata.topology.members
        // Puts are admitted whole (every member's call, or none) and only while they leave a
        // quarter of the call table to claims, catch-up and status: under a put flood those
        // must still run, or a topology change waiting on StreamStatus starves (swarm-drawn
        // limits, seed 24, callsInFlightMax=45). The put right after the writer's commit
        // marker may use half of the reserve (`oldestPutCallsMax`): every later put of its
        // writer waits for it at the members, and refusing it while they hold the table kept
        // seed 24 from committing.
        let callsMax = entry.id == commit.id &+ 1 ? configuration.oldestPutCallsMax : configuration.putCallsMax
        guard calls.count + members.count <= callsMax else {
            fail(
                route, .resourceExhausted,
                "\(calls.count) calls in flight on \(id); puts may use \(configuration.putCallsMax)", limit: .putCalls)
            return
        }
        let coordinationID = makeProcessID()
        coordinations[coordinationID] = Coordination(
            route: route, kind: .put, quorum: Quorum(memberCount: members.count), uri: uri,
            version: replica.metadata.topology.version, members: members, startedAt: time.monotonic)
        for member in members {
            call(member, .coordination(coordinationID, uri)) {
                .putEntryInternal($0, .write, entry, committedID: commit.id, committedChecksum: commit.checksum)
            }
        }
    }

    mutating func coordinateWriterStatus(_ route: Route, _ uri: StreamURI) {
        askEveryMember(route, uri, timeout: nil) { _ in .writerStatus([]) }
    }

    mutating func coordinateStreamStatus(_ route: Route, _ uri: StreamURI) {
        askEveryMember(route, uri, timeout: configuration.statusCallTimeout) {
            .streamStatus([], outstanding: $0)
        }
    }

    /// Sends WriterInfo to every member of the stream on behalf of one client request.
    private mutating func askEveryMember(
        _ route: Route, _ uri: StreamURI, timeout: Duration?, kind: (Int) -> Coordination.Kind
    ) {
        guard let replica = streams[uri] else {
            fail(route, .notFound, "stream \(uri) is not stored on \(id)")
            return
        }
        let members = replica.metadata.topology.members
        let coordinationID = makeProcessID()
        coordinations[coordinationID] = Coordination(
            route: route, kind: kind(members.count), quorum: Quorum(memberCount: members.count), uri: uri,
            version: replica.metadata.topology.version, members: members, startedAt: time.monotonic)
        for member in members {
            call(member, .coordination(coordinationID, uri), timeout: timeout) { .writerInfo($0) }
        }
    }

    mutating func coordinationCallCompleted(_ coordinationID: UInt64, from source: NodeID, _ reply: Reply) {
        guard var coordination = coordinations[coordinationID] else { return }
        if case .streamStatus(var infos, let outstanding) = coordination.kind {
            if case .writerInfo(let info) = reply { infos.append(info) }
            coordination.kind = .streamStatus(infos, outstanding: outstanding - 1)
            coordinations[coordinationID] = outstanding > 1 ? coordination : nil
            if outstanding == 1 {
                let sorted = infos.sorted { $0.server < $1.server }
                self.reply(coordination.route, .streamStatus(sorted))
                pullNewerStamp(coordination.uri, sorted)
                pullCommittedTail(coordination.uri, sorted)
            }
            return
        }
        let decision: Quorum.Decision?
        // Only the answer the request asks for counts: an `.ok` to WriterInfo would count a
        // member without an info to merge.
        switch (reply, coordination.kind) {
        case (.ok, .put):
            decision = coordination.quorum.recordSuccess(source)
        case (.writerInfo(let info), .writerStatus(var infos)):
            infos.append(info)
            coordination.kind = .writerStatus(infos)
            decision = coordination.quorum.recordSuccess(source)
        case (.failed(let error), .put):
            decision = coordination.quorum.recordFailure(error, from: source)
                ?? coordination.quorum.failIfOutOfReach(members: coordination.members, presumedDown: unresponsivePeers)
        case (.failed(let error), _):
            decision = coordination.quorum.recordFailure(error, from: source)
        default:
            decision = coordination.quorum.recordFailure(
                WalleError(.invalidArgument, "\(source) answered \(reply), not what was asked"), from: source)
        }
        guard let decision else {
            coordinations[coordinationID] = coordination
            return
        }
        coordinations.removeValue(forKey: coordinationID)
        if case .put = coordination.kind {
            let acknowledged = if case .succeeded = decision { true } else { false }
            outbox.append(.putFinished(time.monotonic - coordination.startedAt, acknowledged: acknowledged))
        }
        switch (decision, coordination.kind) {
        case (.failed(let error), _):
            self.reply(coordination.route, .failed(error))
        case (.succeeded(let servers), .put):
            recordQuorum(
                coordination.uri, version: coordination.version, members: coordination.members,
                startedAt: coordination.startedAt)
            self.reply(coordination.route, .putAcknowledged(servers: servers))
        case (.succeeded, .writerStatus(let infos)):
            self.reply(coordination.route, .writerInfo(merge(infos)))
        case (.succeeded, .streamStatus):
            preconditionFailure("stream status is answered above")
        }
    }

    /// [WI-1], [WI-3]; the remaining lease is taken only from answers about the newest writer
    /// (upstream mixes writers, WS-14), and the longest of those, to be polite.
    func merge(_ infos: [WriterInfo]) -> WriterInfo {
        guard let newest = infos.max(by: { $0.writerID < $1.writerID }) else {
            preconditionFailure("a merge of no answers: a quorum succeeds with a majority")
        }
        var merged = newest
        // The newest answer is among its own writer's, and every answer has a version.
        merged.remainingLeaseMilliseconds = infos.filter { $0.writerID == newest.writerID }
            .reduce(newest.remainingLeaseMilliseconds) { max($0, $1.remainingLeaseMilliseconds) }
        merged.streamVersion = infos.reduce(newest.streamVersion) { max($0, $1.streamVersion) }
        return merged
    }
}
