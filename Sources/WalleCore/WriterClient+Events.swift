public import WalleEnvironment

extension WriterClient {
    /// The stream's members changed: route requests to the new list from now on.
    public mutating func updateServers(_ members: [NodeID]) {
        routing.update(members)
    }

    /// Starts a claim through the next server. Allowed when idle or after the writer closed.
    public mutating func claim(now: Instant) {
        switch state {
        case .idle, .closed: break
        case .waiting, .claiming, .confirming, .active: preconditionFailure("claim while \(phase)")
        }
        startClaim(through: nil, now: now)
        startFollowing(now: now)
        checkInvariants()
    }

    /// Sends ClaimWriter through `server`, or the next server when nil.
    mutating func startClaim(through server: NodeID?, now: Instant) {
        session = WriterSession(putsWindow: configuration.putsInFlightMax)
        outstanding.removeAll()
        let requestID = makeRequestID()
        state = .claiming(requestID: requestID)
        // A claim may wait out the previous lease; give it that long and more ([6.7]).
        send(
            .claimWriter(requestID, uri, writerAddress: configuration.address,
                         leaseMilliseconds: configuration.lease.milliseconds),
            requestID, .claim, deadline: now + configuration.requestTimeout + configuration.lease * 3, now: now,
            to: server)
    }

    /// Appends `data` as the next entry and pipelines it. Returns the entry it will become.
    public mutating func put(_ data: [UInt8], now: Instant) throws(WalleError) -> Entry {
        guard case .active = state else {
            throw WalleError(.failedPrecondition, "not the writer of \(uri) (\(phase))")
        }
        guard data.count <= Entry.dataSizeMax else {
            throw WalleError(.invalidArgument, "entry has \(data.count) bytes, limit is \(Entry.dataSizeMax)")
        }
        guard session.pending.count < configuration.putsPendingMax else {
            throw WalleError(.resourceExhausted, "\(session.pending.count) puts are already pending")
        }
        guard session.pending.isEmpty || session.pendingBytes + data.count <= configuration.putsPendingBytesMax else {
            throw WalleError(.resourceExhausted, "\(session.pendingBytes) bytes of puts are already pending")
        }
        let tail = session.tail
        let entry = Entry(
            id: tail.id + 1, writerID: session.writerID,
            checksum: chainChecksum(previous: tail.checksum, data: data), data: data)
        session.tail = entry
        session.pending.append(WriterSession.PendingPut(entry: entry, requestID: nil, retryAt: now))
        session.pendingBytes += data.count
        pump(now: now)
        checkInvariants()
        return entry
    }

    public mutating func receive(_ message: Message, from source: NodeID, now: Instant) {
        guard case .response(let requestID, let reply) = message else { return }
        if followerAnswered(requestID, reply, from: source, now: now) {
            checkInvariants()
            return
        }
        guard let what = outstanding.removeValue(forKey: requestID)?.request else {
            lateAnswer(requestID, reply, from: source)
            return
        }
        routing.heard(from: source, now: now)
        switch what {
        case .status:
            statusAnswered(reply, from: source, now: now)
        case .claim:
            claimAnswered(reply, now: now)
        case .put(let entryID, let sentAt, let told):
            session.putsInFlight -= 1
            if let index = session.pendingIndex(entryID), session.pending[index].requestID == requestID {
                session.bytesInFlight -= session.pending[index].entry.data.count
                session.pending[index].requestID = nil
            }
            putAnswered(entryID, reply, sentAt: sentAt, told: told, now: now)
        case .heartbeat(let sentAt, let told):
            session.heartbeatRequest = nil
            heartbeatAnswered(reply, sentAt: sentAt, told: told, now: now)
        }
        pump(now: now)
        checkInvariants()
    }

    public mutating func wake(now: Instant) {
        if let until = exclusiveUntil, until <= now, session.pending.contains(where: { $0.requestID != nil }) {
            probes.insert(.writerLeaseLapsedWithPutsInFlight)
        }
        // Sorted: the order of the resulting retries must not depend on hashing.
        let expired = outstanding.filter { $0.value.deadline <= now }.keys.sorted()
        for requestID in expired {
            // A timeout's retry can close the writer, which drops what is still outstanding.
            guard let request = outstanding[requestID] else { continue }
            routing.timedOut(
                request.target, sentAt: request.sentAt, now: now, suspectDuration: configuration.serverSuspectDuration)
            let timeout = WalleError(.deadlineExceeded, "no answer in time")
            receive(.response(requestID, .failed(timeout)), from: id, now: now)
        }
        if let retry = session.retryWakeAt, retry <= now { session.retryWakeAt = nil }
        if let due = politeWakeAt, due <= now { askStatus(now: now) }
        followTopology(now: now)
        pump(now: now)
        checkInvariants()
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
        guard let claimRequestID = claimRequestID, routing.servers.contains(source),
            requestID > claimRequestID, requestID <= nextRequestID,
            case .failed(let error) = reply, error.isFinal
        else { return }
        probes.insert(.writerLateRefusalClosed)
        close(error)
    }

    private mutating func claimAnswered(_ reply: Reply, now: Instant) {
        guard case .claiming(let requestID) = state else { return }
        switch reply {
        case .claimed(let writer, let claimedTail):
            session.writerID = writer
            session.tail = claimedTail
            session.committed = CommitMarker(id: claimedTail.id, checksum: claimedTail.checksum)
            state = .confirming(claimRequestID: requestID)
            sendHeartbeat(now: now)
        case .failed(let error):
            state = .idle
            events.append(.claimFailed(error))
        default:
            state = .idle
            events.append(.claimFailed(WalleError(.internal, "unexpected answer to ClaimWriter: \(reply)")))
        }
    }

    private mutating func putAnswered(
        _ entryID: EntryID, _ reply: Reply, sentAt: Instant, told: EntryID, now: Instant
    ) {
        guard case .active = state else { return }
        switch reply {
        case .putAcknowledged:
            succeeded(sentAt: sentAt, told: told, now: now)
            acknowledge(upTo: entryID)
        case .failed(let error) where error.isFinal:
            close(error)
        default:
            if case .failed(let error) = reply, error.code == .resourceExhausted {
                session.putsWindow = max(1, session.putsWindow / 2)
            }
            guard let index = session.pendingIndex(entryID), session.pending[index].requestID == nil else { return }
            let retryAt = now + configuration.retryDelay
            session.pending[index].retryAt = retryAt
            session.retryWakeAt = min(session.retryWakeAt ?? retryAt, retryAt)
        }
    }

    private mutating func heartbeatAnswered(_ reply: Reply, sentAt: Instant, told: EntryID, now: Instant) {
        var reply = reply
        if case .putAcknowledged = reply { reply = .ok }
        switch (phase, reply) {
        case (.confirming, .ok), (.active, .ok):
            succeeded(sentAt: sentAt, told: told, now: now)
            if case .confirming(let claimRequestID) = state {
                state = .active(claimRequestID: claimRequestID)
                events.append(.claimed(session.writerID, tail: session.tail))
            }
        case (.confirming, .failed(let error)) where error.isFinal,
            (.active, .failed(let error)) where error.isFinal:
            close(error)
        case (.confirming, _), (.active, _):
            session.heartbeatRetryAt = now + configuration.retryDelay
        default:
            break
        }
    }

    /// [W-6]: the exclusivity window restarts from the send time of what succeeded.
    private mutating func succeeded(sentAt: Instant, told: EntryID, now: Instant) {
        session.commitTime = max(session.commitTime ?? sentAt, sentAt)
        session.toldCommitted = max(session.toldCommitted, told)
        session.lastAcknowledgedAt = now
    }

    /// An acknowledged entry is on a majority, and so is every entry before it (each member
    /// checked the chain), so everything up to it is committed.
    private mutating func acknowledge(upTo entryID: EntryID) {
        var count = 0
        while count < session.pending.count && session.pending[count].entry.id <= entryID { count += 1 }
        for put in session.pending[..<count] {
            if put.requestID != nil { session.bytesInFlight -= put.entry.data.count }
            session.pendingBytes -= put.entry.data.count
            session.putsWindow = min(configuration.putsInFlightMax, session.putsWindow + 1)
            events.append(.putAcknowledged(put.entry))
            session.committed = CommitMarker(id: put.entry.id, checksum: put.entry.checksum)
        }
        session.pending.removeFirst(count)
    }

    /// Nothing outlives the close: answers still in flight are ignored when they come, so
    /// their deadlines go too, and a closed writer wakes for nothing.
    private mutating func close(_ error: WalleError) {
        if error.code == .failedPrecondition { probes.insert(.writerFenced) }
        state = .closed(error)
        events.append(.closed(error))
        session.dropPipeline()
        outstanding.removeAll()
    }
}

// MARK: - Sending

extension WriterClient {
    /// Sends what may be sent now: due retries and new puts within the in-flight bounds, and a
    /// heartbeat when one is due.
    mutating func pump(now: Instant) {
        guard isClaimed else { return }
        if case .active = state {
            // The oldest unacknowledged entry goes out even when the pipeline is full: a
            // member that missed it holds every later put in its queue until they expire,
            // and those fill the pipeline, so waiting for a slot would let one lost message
            // slow the stream to one queue timeout per entry.
            if let first = session.pending.first, first.requestID == nil, first.retryAt <= now {
                sendPut(0, now: now)
            }
            for index in session.pending.indices {
                guard session.putsInFlight < session.putsWindow,
                    session.bytesInFlight < configuration.bytesInFlightMax
                else { break }
                guard session.pending[index].requestID == nil, session.pending[index].retryAt <= now else { continue }
                sendPut(index, now: now)
            }
        }
        if let due = heartbeatDue, due <= now { sendHeartbeat(now: now) }
    }

    private mutating func sendPut(_ index: Int, now: Instant) {
        let requestID = makeRequestID()
        let entry = session.pending[index].entry
        let committed = session.committed
        session.pending[index].requestID = requestID
        session.putsInFlight += 1
        session.bytesInFlight += entry.data.count
        send(
            .putEntry(requestID, uri, committedID: committed.id, committedChecksum: committed.checksum, entry),
            requestID, .put(entry.id, sentAt: now, told: committed.id),
            deadline: now + configuration.requestTimeout, now: now)
    }

    /// [W-7]: at least every lease/4, and soon after the last acknowledgement when members
    /// have not yet been told what committed.
    var heartbeatDue: Instant? {
        guard isClaimed, session.heartbeatRequest == nil else { return nil }
        guard let commitTime = session.commitTime else { return session.heartbeatRetryAt }
        var due = commitTime + configuration.lease / 4
        if session.committed.id > session.toldCommitted && session.putsInFlight == 0 {
            due = min(due, session.lastAcknowledgedAt + configuration.shortBeat)
        }
        return max(due, session.heartbeatRetryAt)
    }

    mutating func sendHeartbeat(now: Instant) {
        let requestID = makeRequestID()
        session.heartbeatRequest = requestID
        let committed = session.committed
        let beat = Entry(id: 0, writerID: session.writerID, checksum: 0, data: [])
        send(
            .putEntry(requestID, uri, committedID: committed.id, committedChecksum: committed.checksum, beat),
            requestID, .heartbeat(sentAt: now, told: committed.id),
            deadline: now + min(configuration.requestTimeout, configuration.lease / 4), now: now)
    }

    /// Sends through `target`, or the server `routing` picks, and remembers the request until
    /// its deadline.
    mutating func send(
        _ message: Message, _ requestID: RequestID, _ request: Request, deadline: Instant, now: Instant,
        to target: NodeID? = nil
    ) {
        let target = target ?? routing.next(now: now)
        outstanding[requestID] = Outstanding(request: request, target: target, sentAt: now, deadline: deadline)
        outbox.append(.send(message, to: target))
    }

    mutating func makeRequestID() -> RequestID {
        nextRequestID += 1
        return nextRequestID
    }

    /// Confirming or active: a claim succeeded and this writer has not closed.
    var isClaimed: Bool {
        switch state {
        case .confirming, .active: return true
        case .idle, .waiting, .claiming, .closed: return false
        }
    }

    /// The request id of this claim's ClaimWriter, while the claim holds ([W-9]).
    private var claimRequestID: RequestID? {
        switch state {
        case .confirming(let requestID), .active(let requestID): return requestID
        case .idle, .waiting, .claiming, .closed: return nil
        }
    }

    /// Checked at the end of every entry point: what the pipeline counts must satisfy, and
    /// what each state may hold (negative space: nothing pending before a claim succeeded or
    /// after a close, nothing outstanding after a close).
    func checkInvariants() {
        precondition(session.putsInFlight >= 0 && session.bytesInFlight >= 0, "in-flight counts went negative")
        precondition(session.pendingBytes >= 0, "pending bytes went negative")
        // The window halves to no less than one, and grows to no more than putsInFlightMax.
        precondition(session.putsWindow <= max(1, configuration.putsInFlightMax), "put window over its bound")
        precondition(session.pending.count <= configuration.putsPendingMax, "more puts pending than putsPendingMax")
        if let first = session.pending.first, let last = session.pending.last {
            precondition(last.entry.id - first.entry.id + 1 == UInt64(session.pending.count), "pending puts not dense")
            precondition(last.entry.id == session.tail.id, "the last pending put is not the tail")
            precondition(first.entry.id > session.committed.id, "an acknowledged put is still pending")
        }
        switch state {
        case .idle, .claiming:
            precondition(session.pending.isEmpty, "puts pending without a writer")
        case .waiting(let wait):
            precondition(session.pending.isEmpty, "puts pending while waiting to claim")
            precondition(outstanding.count <= 1 && (wait.requestID == nil) != (wait.wakeAt == nil),
                "a polite wait has one status request out or one wakeup set")
        case .confirming:
            precondition(session.pending.isEmpty, "puts pending before the claim was confirmed")
        case .active:
            break
        case .closed:
            precondition(session.pending.isEmpty && outstanding.isEmpty, "a closed writer keeps requests")
        }
    }
}
