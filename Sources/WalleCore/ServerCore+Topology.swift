import WalleEnvironment

/// A server's view of the topology stream (docs/protocol.md, "How servers learn it").
struct TopologyWatch {
    var knownVersion: UInt64 = 0
    /// The newest root entry seen, usable or not: an entry that does not decode is skipped
    /// (the next version carries the whole topology again) instead of being asked for forever.
    var seenVersion: UInt64 = 0
    var rootMembers: [NodeID] = []
    /// The long polls of the current round, one per root member. The round's one deadline
    /// is the `.topologyPollTimeout` timer, moved by every new round.
    var polls: [RequestID: NodeID] = [:]
}

// Learning the topology: every server long-polls every root member for the next version at
// once (a dead or lagging member cannot hold it back) and applies the first newer answer: it
// creates the streams it became a member of, updates member lists, and drops the streams it
// left.
extension ServerCore {
    mutating func pollTopology() {
        guard let source = configuration.topologySource, topologyWatch.polls.isEmpty else { return }
        for member in topologyWatch.rootMembers {
            let requestID = makeRequestID()
            topologyWatch.polls[requestID] = member
            let next = max(topologyWatch.knownVersion, topologyWatch.seenVersion) + 1
            send(.pollStream(requestID, source.rootStream, pollEntryID: next), to: member)
        }
        let timeout = time.monotonic + configuration.pollTimeout + .seconds(1)
        timers.schedule(.topologyPollTimeout, at: timeout)
    }

    /// Returns false when the reply is not a topology poll's.
    mutating func topologyPollAnswered(_ requestID: RequestID, _ reply: Reply, from source: NodeID) -> Bool {
        guard topologyWatch.polls[requestID] == source else { return false }
        topologyWatch.polls.removeValue(forKey: requestID)
        defer { if topologyWatch.polls.isEmpty { timers.cancel(.topologyPollTimeout) } }
        if case .entry(let entry) = reply, entry.id > max(topologyWatch.knownVersion, topologyWatch.seenVersion),
            entry.id <= ProtocolBounds.versionMax
        {
            topologyWatch.polls.removeAll()
            topologyWatch.seenVersion = entry.id
            do {
                apply(try Topology.decode(entry.data, entryID: entry.id))
                // Newer news: start the next round now; late answers of this one are ignored.
                timers.schedule(.topologyPoll, noLaterThan: time.monotonic)
            } catch {
                note("topology entry \(entry.id) is unreadable: \(error)")
                timers.schedule(.topologyPoll, noLaterThan: time.monotonic + configuration.topologyRetryDelay)
            }
        } else if topologyWatch.polls.isEmpty {
            timers.schedule(.topologyPoll, noLaterThan: time.monotonic + configuration.topologyRetryDelay)
        }
        return true
    }

    mutating func topologyRoundTimedOut() {
        guard !topologyWatch.polls.isEmpty else { return }
        topologyWatch.polls.removeAll()
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
            } else if stream.version > streams[held: uri].metadata.topology.version {
                streams[held: uri].metadata.topology = stream
                pendingWrites.append(.setMetadata(uri, streams[held: uri].metadata))
                refuseQueuedPuts(uri, version: stream.version)
            }
        }
        if let root = configuration.topologySource?.rootStream, let members = topology.streams[root]?.members,
            !members.isEmpty
        {
            topologyWatch.rootMembers = members
        }
        topologyWatch.knownVersion = topology.version
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
        // The stream's two own deadlines go with it: `liveDeadlineCountMax` counts two per
        // stream held, and a replica move that dropped a stream with both pending broke it.
        timers.cancel(.fastForward(uri))
        timers.cancel(.backfillRetry(uri))
        pendingWrites.append(.dropStream(uri))
    }
}
