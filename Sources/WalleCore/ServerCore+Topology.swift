import WalleEnvironment

/// A server's view of the topology stream (docs/protocol.md, "How servers learn it"): rounds of
/// long polls, one per root member, for the version after the newest seen. Sans-IO: the core
/// makes the request ids, sends the polls and sets the round's one deadline.
struct TopologyWatch {
    enum State {
        /// Between rounds: the `.topologyPoll` timer starts the next one.
        case idle
        /// The long polls of the current round, one per root member, by request id. The round's
        /// one deadline is the `.topologyPollTimeout` timer.
        case polling([RequestID: NodeID])
    }

    /// What an answer to a poll of this round means.
    enum Answer: Equatable {
        /// A newer root entry: the round is over; apply it and poll again at once.
        case newer(Entry)
        /// The round's last answer, and nothing newer came: poll again after a delay.
        case roundOver
        /// Other polls of the round are still out.
        case wait
    }

    private(set) var state: State = .idle
    /// The version of the topology applied last.
    private(set) var knownVersion: UInt64 = 0
    /// The newest root entry seen, usable or not: an entry that does not decode is skipped
    /// (the next version carries the whole topology again) instead of being asked for forever.
    private(set) var seenVersion: UInt64 = 0
    private(set) var rootMembers: [NodeID]

    init(rootMembers: [NodeID] = []) {
        self.rootMembers = rootMembers
    }

    var isPolling: Bool {
        if case .polling = state { return true }
        return false
    }

    /// The version the next round asks for.
    var nextVersion: UInt64 { max(knownVersion, seenVersion) + 1 }

    /// A round starts with one poll per root member, `polls` pairing each with its request id.
    mutating func started(_ polls: [(RequestID, NodeID)]) {
        precondition(!isPolling, "one round at a time")
        guard !polls.isEmpty else { return }
        state = .polling(Dictionary(polls, uniquingKeysWith: { first, _ in first }))
    }

    /// An answer from `source`, or nil when it is no poll of this round.
    mutating func answered(_ requestID: RequestID, _ reply: Reply, from source: NodeID) -> Answer? {
        guard case .polling(var polls) = state, polls[requestID] == source else { return nil }
        polls.removeValue(forKey: requestID)
        if case .entry(let entry) = reply, entry.id > max(knownVersion, seenVersion),
            entry.id <= ProtocolBounds.versionMax
        {
            // Late answers of this round are ignored: the next round asks for what is after it.
            state = .idle
            seenVersion = entry.id
            return .newer(entry)
        }
        state = polls.isEmpty ? .idle : .polling(polls)
        return polls.isEmpty ? .roundOver : .wait
    }

    /// The round's deadline passed: whether a round was still out (then poll again at once).
    mutating func roundTimedOut() -> Bool {
        guard isPolling else { return false }
        state = .idle
        return true
    }

    /// A topology was applied; `rootMembers` when it names the root stream's members.
    mutating func applied(version: UInt64, rootMembers: [NodeID]?) {
        if let rootMembers, !rootMembers.isEmpty { self.rootMembers = rootMembers }
        knownVersion = version
    }
}

// Learning the topology: every server long-polls every root member for the next version at
// once (a dead or lagging member cannot hold it back) and applies the first newer answer: it
// creates the streams it became a member of, updates member lists, and drops the streams it
// left.
extension ServerCore {
    mutating func pollTopology() {
        guard let source = configuration.topologySource, !topologyWatch.isPolling else { return }
        let next = topologyWatch.nextVersion
        let polls = topologyWatch.rootMembers.map { member in (makeRequestID(), member) }
        topologyWatch.started(polls)
        for (requestID, member) in polls {
            send(.pollStream(requestID, source.rootStream, pollEntryID: next), to: member)
        }
        let timeout = time.monotonic + configuration.pollTimeout + .seconds(1)
        timers.schedule(.topologyPollTimeout, at: timeout)
    }

    /// Returns false when the reply is not a topology poll's.
    mutating func topologyPollAnswered(_ requestID: RequestID, _ reply: Reply, from source: NodeID) -> Bool {
        guard let answer = topologyWatch.answered(requestID, reply, from: source) else { return false }
        switch answer {
        case .newer(let entry):
            do {
                apply(try Topology.decode(entry.data, entryID: entry.id))
                timers.schedule(.topologyPoll, noLaterThan: time.monotonic)
            } catch {
                note("topology entry \(entry.id) is unreadable: \(error)")
                timers.schedule(.topologyPoll, noLaterThan: time.monotonic + configuration.topologyRetryDelay)
            }
        case .roundOver:
            timers.schedule(.topologyPoll, noLaterThan: time.monotonic + configuration.topologyRetryDelay)
        case .wait:
            break
        }
        if !topologyWatch.isPolling { timers.cancel(.topologyPollTimeout) }
        return true
    }

    mutating func topologyRoundTimedOut() {
        guard topologyWatch.roundTimedOut() else { return }
        timers.schedule(.topologyPoll, noLaterThan: time.monotonic)
    }

    /// Streams this server left go first, then the ones it is a member of ([10.4]). Each
    /// stream's own version decides: a restarted server asks from version 1 again and may be
    /// answered by a lagging root member, so an older stream version never undoes a newer one.
    mutating func apply(_ topology: Topology) {
        note("topology version \(topology.version)")
        for uri in streams.keys.sorted() {
            guard let stream = topology.streams[uri], !stream.contains(id),
                stream.version > streams[held: uri].metadata.topology.version
            else { continue }
            dropStream(uri)
        }
        for (uri, stream) in topology.streams.sorted(by: { $0.key < $1.key }) {
            guard stream.contains(id) else { continue }
            if streams[uri] == nil {
                createStream(uri, topology: stream)
                askPeersForTail(uri)
            } else if stream.version > streams[held: uri].metadata.topology.version {
                streams[held: uri].metadata.topology = stream
                pendingWrites.append(.setMetadata(uri, streams[held: uri].metadata))
                refuseQueuedPuts(uri, version: stream.version)
            }
            trim(uri, below: topology.firstEntryID(of: uri))
        }
        let root = configuration.topologySource?.rootStream
        topologyWatch.applied(version: topology.version, rootMembers: root.flatMap { topology.streams[$0]?.members })
        serversApplied(topology.servers)
    }

    /// A put queued under the previous member list is not applied under the new one. Its
    /// coordinator counts a majority of the list the put went out with, and a removal waits
    /// only for what the members held when they reported the new version (WS-3). Applied
    /// later, such a put was acknowledged on a majority the remaining members need not meet
    /// (seed 168 with --replica-moves: entries on 2 of 3 old members, then 1 of 3 after the
    /// removal). The writer sends it again.
    private mutating func refuseQueuedPuts(_ uri: StreamURI, version: UInt64) {
        for queued in streams[held: uri].removeAllQueued() {
            timers.cancel(.queuedPutExpiry(uri, queued.entry.id))
            for route in queued.routes {
                fail(route, .unavailable, "\(uri) moved to version \(version) while entry \(queued.entry.id) waited")
            }
        }
    }

    /// The topology names a higher first entry: serve nothing below it from now on, stop
    /// fetching there, and delete below it in steps.
    private mutating func trim(_ uri: StreamURI, below first: EntryID) {
        guard streams[held: uri].trim(below: first, writes: &pendingWrites) else { return }
        // A backfill retry still set stays: it returns the backfill to idle, and finds no gap.
        note("trimmed \(uri) below \(first)")
        scheduleTrimStep(uri)
    }

    /// Sets the step timer if deletion is due (after a trim, a commit of a member that was
    /// behind the trim, or a restart in the middle of one).
    mutating func scheduleTrimStep(_ uri: StreamURI) {
        guard streams[held: uri].needsTrimStep else { return }
        timers.schedule(.trimStep(uri), noLaterThan: time.monotonic + configuration.trimStepDelay)
    }

    mutating func trimStep(_ uri: StreamURI) {
        guard streams[uri] != nil else { return }
        let deletes = pendingWrites.count
        let more = streams[held: uri].trimStep(stepMax: configuration.trimStepEntriesMax, writes: &pendingWrites)
        if pendingWrites.count > deletes { probe(.trimStepDeleted) }
        if more { scheduleTrimStep(uri) }
    }

    /// This server is no longer a member: answer everything waiting and forget the stream.
    mutating func dropStream(_ uri: StreamURI) {
        guard var replica = streams.removeValue(forKey: uri) else { return }
        note("left \(uri)")
        for queued in replica.removeAllQueued() {
            timers.cancel(.queuedPutExpiry(uri, queued.entry.id))
            for route in queued.routes { fail(route, .notFound, "\(id) left \(uri)") }
        }
        for waiter in readWaiters.removeValue(forKey: uri) ?? [] {
            readWaiterCount -= 1
            timers.cancel(.readWaiterDeadline(uri, waiter.id))
            fail(waiter.route, .notFound, "\(id) left \(uri)")
        }
        // The stream's three own deadlines go with it: `liveDeadlineCountMax` counts three per
        // stream held, and a replica move that dropped a stream with two pending broke it.
        timers.cancel(.fastForward(uri))
        timers.cancel(.backfillRetry(uri))
        timers.cancel(.trimStep(uri))
        pendingWrites.append(.dropStream(uri))
    }
}
