public import WalleEnvironment

extension WriterClient {
    /// The stream's members changed: route requests to the new list from now on.
    public mutating func updateServers(_ members: [NodeID]) {
        precondition(!members.isEmpty)
        servers = members
        serverCursor %= members.count
        suspectUntil = suspectUntil.filter { members.contains($0.key) }
        heardAt = heardAt.filter { members.contains($0.key) }
    }

    /// Starts a claim through the next server. Allowed when idle or after the writer closed.
    public mutating func claim(now: Instant) {
        switch phase {
        case .idle, .closed: break
        case .claiming, .confirming, .active: preconditionFailure("claim while \(phase)")
        }
        resetWriterState()
        phase = .claiming
        let requestID = makeRequestID()
        claimRequestID = requestID
        // A claim may wait out the previous lease; give it that long and more ([6.7]).
        send(
            .claimWriter(requestID, uri, writerAddress: configuration.address,
                         leaseMilliseconds: configuration.lease.milliseconds),
            requestID, .claim, deadline: now + configuration.requestTimeout + configuration.lease * 3, now: now)
    }

    /// Appends `data` as the next entry and pipelines it. Returns the entry it will become.
    public mutating func put(_ data: [UInt8], now: Instant) throws(WalleError) -> Entry {
        guard phase == .active else {
            throw WalleError(.failedPrecondition, "not the writer of \(uri) (\(phase))")
        }
        guard data.count <= Entry.dataSizeMax else {
            throw WalleError(.invalidArgument, "entry has \(data.count) bytes, limit is \(Entry.dataSizeMax)")
        }
        guard pending.count < configuration.putsPendingMax else {
            throw WalleError(.resourceExhausted, "\(pending.count) puts are already pending")
        }
        guard pending.isEmpty || pendingBytes + data.count <= configuration.putsPendingBytesMax else {
            throw WalleError(.resourceExhausted, "\(pendingBytes) bytes of puts are already pending")
        }
        let entry = Entry(
            id: tail.id + 1, writerID: writerID,
            checksum: chainChecksum(previous: tail.checksum, data: data), data: data)
        tail = entry
        pending.append(PendingPut(entry: entry, requestID: nil, retryAt: now))
        pendingBytes += data.count
        pump(now: now)
        return entry
    }

    public mutating func receive(_ message: Message, from source: NodeID, now: Instant) {
        guard case .response(let requestID, let reply) = message else { return }
        guard let what = outstanding.removeValue(forKey: requestID)?.request else {
            lateAnswer(requestID, reply, from: source)
            return
        }
        if servers.contains(source) {
            suspectUntil[source] = nil
            heardAt[source] = now
        }
        switch what {
        case .claim:
            claimAnswered(reply, now: now)
        case .put(let entryID, let sentAt, let told):
            putsInFlight -= 1
            if let index = pendingIndex(entryID), pending[index].requestID == requestID {
                bytesInFlight -= pending[index].entry.data.count
                pending[index].requestID = nil
            }
            putAnswered(entryID, reply, sentAt: sentAt, told: told, now: now)
        case .heartbeat(let sentAt, let told):
            heartbeatRequest = nil
            heartbeatAnswered(reply, sentAt: sentAt, told: told, now: now)
        }
        pump(now: now)
    }

    public mutating func wake(now: Instant) {
        // Sorted: the order of the resulting retries must not depend on hashing.
        let expired = outstanding.filter { $0.value.deadline <= now }.keys.sorted()
        for requestID in expired {
            // A timeout's retry can close the writer, which drops what is still outstanding.
            guard let request = outstanding[requestID] else { continue }
            if (heardAt[request.target] ?? .distantPast) <= request.sentAt {
                suspectUntil[request.target] = now + configuration.serverSuspectDuration
            }
            let timeout = WalleError(.deadlineExceeded, "no answer in time")
            receive(.response(requestID, .failed(timeout)), from: id, now: now)
        }
        if let retry = retryWakeAt, retry <= now { retryWakeAt = nil }
        pump(now: now)
    }

    /// [W-9]: an answer to a request of this claim that already timed out. A final error in it is
    /// still true: this writer was fenced (or sent something invalid). Dropping it kept a
    /// fenced writer active for good when every refusal came late: a coordinator waited
    /// `callTimeout` for a dead member before it sent the deciding refusal, long after the
    /// heartbeat's deadline of lease / 4, and the other client, polite after the heal, never
    /// claimed (seed 79). Not the claim's own request: a duplicated ClaimWriter starts a
    /// second claim, with another writer id, whose refusal says nothing about this one (seed
    /// 81).
    private mutating func lateAnswer(_ requestID: RequestID, _ reply: Reply, from source: NodeID) {
        guard phase == .active || phase == .confirming, servers.contains(source),
            requestID > claimRequestID, requestID <= nextRequestID,
            case .failed(let error) = reply, error.isFinal
        else { return }
        close(error)
    }

    private mutating func claimAnswered(_ reply: Reply, now: Instant) {
        guard phase == .claiming else { return }
        switch reply {
        case .claimed(let writer, let claimedTail):
            writerID = writer
            tail = claimedTail
            committed = CommitMarker(id: claimedTail.id, checksum: claimedTail.checksum)
            phase = .confirming
            sendHeartbeat(now: now)
        case .failed(let error):
            phase = .idle
            events.append(.claimFailed(error))
        default:
            phase = .idle
            events.append(.claimFailed(WalleError(.internal, "unexpected answer to ClaimWriter: \(reply)")))
        }
    }

    private mutating func putAnswered(_ entryID: EntryID, _ reply: Reply, sentAt: Instant, told: EntryID, now: Instant) {
        guard phase == .active else { return }
        switch reply {
        case .putAcknowledged:
            succeeded(sentAt: sentAt, told: told, now: now)
            acknowledge(upTo: entryID)
        case .failed(let error) where error.isFinal:
            close(error)
        default:
            if case .failed(let error) = reply, error.code == .resourceExhausted {
                putsWindow = max(1, putsWindow / 2)
            }
            guard let index = pendingIndex(entryID), pending[index].requestID == nil else { return }
            pending[index].retryAt = now + configuration.retryDelay
            retryWakeAt = min(retryWakeAt ?? pending[index].retryAt, pending[index].retryAt)
        }
    }

    private mutating func heartbeatAnswered(_ reply: Reply, sentAt: Instant, told: EntryID, now: Instant) {
        var reply = reply
        if case .putAcknowledged = reply { reply = .ok }
        switch (phase, reply) {
        case (.confirming, .ok), (.active, .ok):
            succeeded(sentAt: sentAt, told: told, now: now)
            if phase == .confirming {
                phase = .active
                events.append(.claimed(writerID, tail: tail))
            }
        case (.confirming, .failed(let error)) where error.isFinal,
            (.active, .failed(let error)) where error.isFinal:
            close(error)
        case (.confirming, _), (.active, _):
            heartbeatRetryAt = now + configuration.retryDelay
        default:
            break
        }
    }

    /// [W-6]: the exclusivity window restarts from the send time of what succeeded.
    private mutating func succeeded(sentAt: Instant, told: EntryID, now: Instant) {
        commitTime = max(commitTime ?? sentAt, sentAt)
        toldCommitted = max(toldCommitted, told)
        lastAcknowledgedAt = now
    }

    /// An acknowledged entry is on a majority, and so is every entry before it (each member
    /// checked the chain), so everything up to it is committed.
    private mutating func acknowledge(upTo entryID: EntryID) {
        var count = 0
        while count < pending.count && pending[count].entry.id <= entryID { count += 1 }
        for put in pending[..<count] {
            if put.requestID != nil { bytesInFlight -= put.entry.data.count }
            pendingBytes -= put.entry.data.count
            putsWindow = min(configuration.putsInFlightMax, putsWindow + 1)
            events.append(.putAcknowledged(put.entry))
            committed = CommitMarker(id: put.entry.id, checksum: put.entry.checksum)
        }
        pending.removeFirst(count)
    }

    /// Nothing outlives the close: answers still in flight are ignored when they come, so
    /// their deadlines go too, and a closed writer wakes for nothing.
    private mutating func close(_ error: WalleError) {
        phase = .closed(error)
        events.append(.closed(error))
        pending.removeAll()
        pendingBytes = 0
        bytesInFlight = 0
        putsInFlight = 0
        outstanding.removeAll()
        heartbeatRequest = nil
        retryWakeAt = nil
    }
}

// MARK: - Sending

extension WriterClient {
    /// Sends what may be sent now: due retries and new puts within the in-flight bounds, and a
    /// heartbeat when one is due.
    mutating func pump(now: Instant) {
        guard phase == .active || phase == .confirming else { return }
        if phase == .active {
            // The oldest unacknowledged entry goes out even when the pipeline is full: a
            // member that missed it holds every later put in its queue until they expire,
            // and those fill the pipeline, so waiting for a slot would let one lost message
            // slow the stream to one queue timeout per entry.
            if let first = pending.first, first.requestID == nil, first.retryAt <= now {
                sendPut(0, now: now)
            }
            for index in pending.indices {
                guard putsInFlight < putsWindow,
                    bytesInFlight < configuration.bytesInFlightMax
                else { break }
                guard pending[index].requestID == nil, pending[index].retryAt <= now else { continue }
                sendPut(index, now: now)
            }
        }
        if let due = heartbeatDue, due <= now { sendHeartbeat(now: now) }
    }

    private mutating func sendPut(_ index: Int, now: Instant) {
        let requestID = makeRequestID()
        let entry = pending[index].entry
        pending[index].requestID = requestID
        putsInFlight += 1
        bytesInFlight += entry.data.count
        send(
            .putEntry(requestID, uri, committedID: committed.id, committedChecksum: committed.checksum, entry),
            requestID, .put(entry.id, sentAt: now, told: committed.id), deadline: now + configuration.requestTimeout, now: now)
    }

    /// [W-7]: at least every lease/4, and soon after the last acknowledgement when members
    /// have not yet been told what committed.
    var heartbeatDue: Instant? {
        guard phase == .active || phase == .confirming, heartbeatRequest == nil else { return nil }
        guard let commitTime else { return heartbeatRetryAt }
        var due = commitTime + configuration.lease / 4
        if committed.id > toldCommitted && putsInFlight == 0 {
            due = min(due, lastAcknowledgedAt + configuration.shortBeat)
        }
        return max(due, heartbeatRetryAt)
    }

    mutating func sendHeartbeat(now: Instant) {
        let requestID = makeRequestID()
        heartbeatRequest = requestID
        let beat = Entry(id: 0, writerID: writerID, checksum: 0, data: [])
        send(
            .putEntry(requestID, uri, committedID: committed.id, committedChecksum: committed.checksum, beat),
            requestID, .heartbeat(sentAt: now, told: committed.id),
            deadline: now + min(configuration.requestTimeout, configuration.lease / 4), now: now)
    }

    /// Sends through the next server in turn that is not suspect; if all are, through the one
    /// whose suspicion ends first (the cursor's turn would include the dead ones).
    private mutating func send(
        _ message: Message, _ requestID: RequestID, _ request: Request, deadline: Instant, now: Instant
    ) {
        var best = serverCursor
        for step in 0..<servers.count {
            let index = (serverCursor + step) % servers.count
            let until = suspectUntil[servers[index]] ?? .distantPast
            if until <= now {
                best = index
                break
            }
            if until < suspectUntil[servers[best]] ?? .distantPast { best = index }
        }
        let target = servers[best]
        serverCursor = (best + 1) % servers.count
        outstanding[requestID] = Outstanding(request: request, target: target, sentAt: now, deadline: deadline)
        outbox.append(.send(message, to: target))
    }

    private mutating func makeRequestID() -> RequestID {
        nextRequestID += 1
        return nextRequestID
    }

    private func pendingIndex(_ entryID: EntryID) -> Int? {
        guard let first = pending.first, entryID >= first.entry.id else { return nil }
        let index = Int(entryID - first.entry.id)
        return index < pending.count ? index : nil
    }

    private mutating func resetWriterState() {
        writerID = .zero
        tail = .zero
        committed = .zero
        toldCommitted = 0
        commitTime = nil
        pending.removeAll()
        pendingBytes = 0
        putsWindow = configuration.putsInFlightMax
        outstanding.removeAll()
        bytesInFlight = 0
        putsInFlight = 0
        heartbeatRequest = nil
        heartbeatRetryAt = .distantPast
        retryWakeAt = nil
    }
}
