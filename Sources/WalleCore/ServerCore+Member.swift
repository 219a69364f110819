import WalleEnvironment

// The member side: server-to-server requests about streams this node stores.
extension ServerCore {
    mutating func receiveInternal(_ message: Message, from source: NodeID) {
        let header: InternalHeader
        switch message {
        case .newWriter(let h, _, _, _), .writerInfo(let h), .putEntryInternal(let h, _, _, _, _),
            .tailEntries(let h), .restampEntries(let h, _), .readEntries(let h, _, _):
            header = h
        default:
            preconditionFailure("not an internal request: \(message)")
        }
        let route = Route(node: source, requestID: header.requestID)
        if let error = checkHeader(header, from: source) {
            reply(route, .failed(error))
            return
        }
        let uri = header.stream
        switch message {
        case .newWriter(_, let writer, let address, let lease):
            memberNewWriter(route, uri, writer, address: address, leaseMilliseconds: lease)
        case .writerInfo:
            // Answered once what it reports (writer id, stream version) is durable: the
            // manager's WS-2 wait counts these versions, and a crash must not undo one.
            whenDurable(.reply(route, .writerInfo(writerInfo(uri))))
        case .putEntryInternal(_, let kind, let entry, let committedID, let committedChecksum):
            memberPut(route, uri, kind, entry, commit: CommitMarker(id: committedID, checksum: committedChecksum))
        case .tailEntries:
            reply(route, .entries(streams[held: uri].window))
        case .restampEntries(_, let entries):
            memberRestamp(route, uri, entries)
        case .readEntries(_, let start, let end):
            memberReadEntries(route, uri, start: start, end: end)
        default:
            preconditionFailure("unreachable")
        }
    }

    /// [HDR-2], [HDR-4], [HDR-5].
    mutating func checkHeader(_ header: InternalHeader, from source: NodeID) -> WalleError? {
        guard header.target == id else {
            return WalleError(.notFound, "this is server \(id), not \(header.target)")
        }
        guard let replica = streams[header.stream] else {
            return WalleError(.notFound, "stream \(header.stream) is not stored on \(id)")
        }
        // Closes WS-2: a request from the previous version is refused. Upstream also accepts
        // v−1 (from a member of v), which lets three member lists be in use at once, whose
        // majorities need not intersect. A request from the next version is accepted: it
        // comes from a coordinator that counts this server as a member of v+1, and this
        // server is about to learn v+1 from the topology stream anyway.
        let local = replica.metadata.topology.version
        guard header.streamVersion == local || header.streamVersion == local + 1 else {
            probe(.staleStreamVersionRefused)
            return WalleError(
                .notFound,
                "stream \(header.stream) is at version \(local) here, the request at \(header.streamVersion)")
        }
        return nil
    }

    func writerInfo(_ uri: StreamURI) -> WriterInfo {
        let replica = streams[held: uri]
        return WriterInfo(
            writerID: replica.metadata.writerID, writerAddress: replica.metadata.writerAddress,
            leaseMilliseconds: replica.metadata.leaseMilliseconds,
            remainingLeaseMilliseconds: replica.remainingLease(now: time.monotonic).milliseconds,
            streamVersion: replica.metadata.topology.version, server: id,
            committedID: replica.committedID, tailID: replica.tailID, tailWriterID: replica.tail.writerID,
            hasGap: replica.metadata.hasGap)
    }

    /// Claim phase 1 at a member ([CLAIM-1] step 3). The answer waits until the writer id is
    /// durable and the previous writer's lease has run out here. A repeated NewWriter for the
    /// same writer waits for the same moment instead of answering at once (closes WS-16).
    mutating func memberNewWriter(
        _ route: Route, _ uri: StreamURI, _ writer: WriterID, address: String, leaseMilliseconds: Int64
    ) {
        guard newWriterWaits.count < configuration.newWriterWaitsMax else {
            fail(
                route, .resourceExhausted, "\(newWriterWaits.count) NewWriter answers are already waiting on \(id)",
                limit: .newWriterWaits)
            return
        }
        switch streams[held: uri].checkWriter(writer) {
        case .older:
            probe(.claimFencedByNewerWriter)
            fail(route, .failedPrecondition, "writer \(writer) is older than \(streams[held: uri].metadata.writerID)")
            return
        case .current:
            probe(.newWriterRepeated)
            note("NewWriter \(writer) repeated on \(uri): waits for the same lease end")
        case .newer:
            let end = streams[held: uri].installWriter(
                writer, address: address, leaseMilliseconds: leaseMilliseconds,
                now: time.monotonic, writes: &pendingWrites)
            note("installed \(writer) on \(uri); previous lease ends at \(end)")
        }
        var until = streams[held: uri].previousLeaseEnd
        if configuration.plantedBugIsActive(.skipLeaseWait) { until = time.monotonic }
        if until > time.monotonic { probe(.newWriterWaitedOutLease) }
        let waitID = makeProcessID()
        newWriterWaits[waitID] = NewWriterWait(until: until, route: route, uri: uri, writer: writer)
        whenDurable(.newWriterAnswer(waitID))
    }

    mutating func memberPut(_ route: Route, _ uri: StreamURI, _ kind: PutKind, _ entry: Entry, commit: CommitMarker) {
        switch kind {
        case .write:
            memberWrite(route, uri, entry, commit: commit)
        case .claimCommit where entry.writerID < streams[held: uri].metadata.writerID:
            // A claim's commit comes from a claim that a newer one has fenced here: it must not
            // commit anything (it skips the writer check below, like alignment does).
            probe(.claimFencedByNewerWriter)
            fail(
                route, .failedPrecondition,
                "claim of \(entry.writerID) was superseded by \(streams[held: uri].metadata.writerID)")
        case .claimAlign, .claimCommit:
            let outcome = streams[held: uri].applyCommitted(entry, writes: &pendingWrites)
            resolve([route], outcome, uri, entry)
        }
        afterWindowChange(uri)
    }

    /// Claim phase 4 at a member ([CLAIM-4]), all or nothing.
    ///
    /// Why atomic: the claim rule trusts that a member whose tail carries writer W holds W's
    /// whole chosen chain. Entry-by-entry re-stamps (upstream) can stop half-way when a newer
    /// claim installs its writer in between, leaving W's stamp on a shorter chain; a later
    /// claim then prefers that chain and drops a committed entry. The simulator found this
    /// (seed 176 of the first 1000-seed sweep).
    mutating func memberRestamp(_ route: Route, _ uri: StreamURI, _ entries: [Entry]) {
        // The boundary checked the shape: one writer's consecutive entries above Entry0.
        guard let first = entries.first else { preconditionFailure("the boundary refuses an empty re-stamp") }
        if let error = writerMismatch(uri, first.writerID) {
            reply(route, .failed(error))
            return
        }
        var replica = streams[held: uri]
        var writes: [DiskOperation] = []
        for entry in entries {
            let outcome = replica.applyUncommitted(entry, limits: limits, writes: &writes)
            guard outcome == .applied else {
                let error = WalleError(.outOfRange, "re-stamp of entry \(entry.id) did not apply: \(outcome)")
                reply(route, .failed(error))
                return
            }
        }
        streams[uri] = replica
        pendingWrites.append(contentsOf: writes)
        acknowledgeWhenDurable(route)
        afterWindowChange(uri)
    }

    /// The end of a NewWriter's wait. OK says "this writer is installed here and the previous
    /// lease is over"; if a newer claim installed its writer meanwhile, that is no longer true,
    /// and counting it let a fenced claim go on and claim the newer writer's entries (seed 1295
    /// with a hostile client's replayed ClaimWriter).
    mutating func answerNewWriter(_ waitID: UInt64) {
        guard let wait = newWriterWaits.removeValue(forKey: waitID) else {
            preconditionFailure("a NewWriter wait is answered once")
        }
        let (route, uri, writer) = (wait.route, wait.uri, wait.writer)
        guard let installed = streams[uri]?.metadata.writerID else {
            fail(route, .notFound, "stream \(uri) is not stored on \(id)")
            return
        }
        guard installed == writer else {
            probe(.newWriterSupersededWhileWaiting)
            fail(route, .failedPrecondition, "writer \(writer) was superseded by \(installed) while it waited")
            return
        }
        reply(route, .ok)
    }

    func writerMismatch(_ uri: StreamURI, _ writer: WriterID) -> WalleError? {
        switch streams[held: uri].checkWriter(writer) {
        case .current:
            return nil
        case .older:
            return WalleError(.failedPrecondition, "writer \(writer) is no longer active on \(id)")
        case .newer:
            return WalleError(.unavailable, "writer \(writer) is not yet installed on \(id)")
        }
    }

    /// A writer's put or heartbeat: writer check, lease renewal, the piggy-backed commit, then
    /// the entry itself ([PEI-1] to [PEI-4]).
    mutating func memberWrite(_ route: Route, _ uri: StreamURI, _ entry: Entry, commit: CommitMarker) {
        let zeroAllowed = entry.writerID.isZero && configuration.plantedBugIsActive(.acceptZeroWriter)
        if let error = writerMismatch(uri, entry.writerID), !zeroAllowed {
            switch streams[held: uri].checkWriter(entry.writerID) {
            case .newer:
                startWriterCatchUp(uri)
            case .older:
                // The put is refused, but its commit marker is still a fact: that writer saw
                // the entry acknowledged by a majority. Without this a member whose writer id
                // came from a claim that later failed would never learn what committed.
                probe(.commitMarkerFromFencedWriter)
                let commitError = streams[held: uri].applyCommitMarker(
                    commit, from: entry.writerID, limits: limits, writes: &pendingWrites)
                if let commitError { note("commit marker \(commit.id) on \(uri): \(commitError)") }
                afterWindowChange(uri)
            case .current:
                break
            }
            reply(route, .failed(error))
            return
        }
        // The marker first: one that is refused refuses the whole request, before the lease
        // is renewed or the entry applied (a bad value changes nothing; WS-12 hid such errors).
        if let commitError = streams[held: uri].applyCommitMarker(
            commit, from: entry.writerID, limits: limits, writes: &pendingWrites)
        {
            note("commit marker \(commit.id) on \(uri): \(commitError)")
            reply(route, .failed(commitError))
            return
        }
        streams[held: uri].renewLease(now: time.monotonic)
        if entry.id == 0 {
            // Heartbeats renew and commit, neither of which needs a sync ([PEI-4], [CRASH-2]),
            // but the OK waits while anything written before it is not durable: the writer's
            // install may not be yet (a NewWriter whose sync stalls, an adopted writer). A
            // restart counts the lease of the writer on disk from the restart; had the OK gone
            // out first and the install been lost, the member would count an older writer's
            // lease instead, and a new claim could overlap a lease the old writer still
            // counts on (found by review of the stored restart wait). Usually everything
            // earlier is synced and the OK goes out at once, as before.
            if groupCommit.everythingSynced {
                reply(route, .ok)
            } else {
                probe(.heartbeatWaitedForSync)
                acknowledgeWhenDurable(route)
            }
            return
        }
        applyUncommittedPut(route, uri, entry)
    }

    /// A put from a writer this member never saw NewWriter for (lost, or still in flight):
    /// ask every member which writer is current and adopt the newest a majority reports.
    mutating func startWriterCatchUp(_ uri: StreamURI) {
        guard streams[held: uri].writerCatchUp == nil else { return }
        let members = streams[held: uri].metadata.topology.members
        let roundID = makeProcessID()
        streams[held: uri].writerCatchUp = WriterCatchUp(id: roundID, quorum: Quorum(memberCount: members.count))
        for member in members {
            call(member, .writerCatchUp(roundID, uri)) { .writerInfo($0) }
        }
    }

    mutating func writerCatchUpCompleted(_ roundID: UInt64, _ uri: StreamURI, from source: NodeID, _ reply: Reply) {
        guard var catchUp = streams[uri]?.writerCatchUp, catchUp.id == roundID else { return }
        let decision: Quorum.Decision?
        if case .writerInfo(let info) = reply {
            if info.writerID > (catchUp.newest?.writerID ?? .zero) { catchUp.newest = info }
            decision = catchUp.quorum.recordSuccess(source)
        } else {
            decision = catchUp.quorum.recordFailure(
                WalleError(.unavailable, "no WriterInfo from \(source)"), from: source)
        }
        streams[held: uri].writerCatchUp = decision == nil ? catchUp : nil
        guard case .succeeded? = decision, let newest = catchUp.newest else { return }
        note("writer catch-up on \(uri): majority knows \(newest.writerID)")
        probe(.writerCaughtUp)
        streams[held: uri].adoptWriter(newest, now: time.monotonic, writes: &pendingWrites)
    }

    mutating func applyUncommittedPut(_ route: Route, _ uri: StreamURI, _ entry: Entry) {
        let outcome = streams[held: uri].applyUncommitted(entry, limits: limits, writes: &pendingWrites)
        guard outcome == .queued else {
            resolve([route], outcome, uri, entry)
            return
        }
        let (failure, displaced) = streams[held: uri].enqueue(entry, route: route, now: time.monotonic, limits: limits)
        for (old, outcome) in displaced { resolve([old], outcome, uri, entry) }
        if let failure {
            resolve([route], failure, uri, entry)
            return
        }
        // A displaced put's key is the same: its deadline moves, it is not added.
        timers.schedule(.queuedPutExpiry(uri, entry.id), at: time.monotonic + configuration.queuedPutTimeout)
    }

    mutating func resolve(_ routes: [Route], _ outcome: PutOutcome, _ uri: StreamURI, _ entry: Entry) {
        switch outcome {
        case .applied, .gapCommitted:
            if outcome == .gapCommitted {
                probe(.gapCommitted)
                note("gap commit of \(entry.brief) on \(uri)")
            }
            for route in routes { acknowledgeWhenDurable(route) }
        case .failed(let error):
            for route in routes { reply(route, .failed(error)) }
        case .refused(let limit, let error):
            for route in routes { fail(route, error.code, error.message, limit: limit) }
        case .queued:
            preconditionFailure("a put is queued only on arrival")
        }
    }

    /// After the window changed: apply queued puts that are now in order, re-try a pending
    /// commit, answer readers, and start catching up if this member is behind.
    mutating func afterWindowChange(_ uri: StreamURI) {
        var applied = 0
        while let queued = streams[uri]?.dequeueNext() {
            timers.cancel(.queuedPutExpiry(uri, queued.entry.id))
            applied += 1
            precondition(applied <= configuration.queuedPutsMax, "queue drain is unbounded")
            let outcome = streams[held: uri].applyUncommitted(queued.entry, limits: limits, writes: &pendingWrites)
            resolve(
                queued.routes, outcome == .queued ? .failed(WalleError(.internal, "requeued")) : outcome,
                uri, queued.entry)
            streams[held: uri].retryPendingCommit(limits: limits, writes: &pendingWrites)
        }
        guard streams[uri] != nil else { return }
        streams[held: uri].retryPendingCommit(limits: limits, writes: &pendingWrites)
        for overtaken in streams[held: uri].removeOvertakenQueued() {
            timers.cancel(.queuedPutExpiry(uri, overtaken.entry.id))
            probe(.queuedPutOvertaken)
            resolve(
                overtaken.routes,
                .failed(WalleError(.outOfRange, "entry \(overtaken.entry.id) was overtaken by a commit")),
                uri, overtaken.entry)
        }
        if streams[held: uri].pendingCommitNeedsFetch && streams[held: uri].fastForward.wanted() {
            timers.schedule(.fastForward(uri), noLaterThan: time.monotonic + configuration.fastForwardDelay)
        }
        if streams[held: uri].metadata.hasGap { startBackfill(uri) }
        scheduleTrimStep(uri)
        answerReadWaiters(uri)
        streams[held: uri].checkInvariants()
    }

    mutating func expireQueuedPut(_ uri: StreamURI, _ entryID: EntryID) {
        guard let expired = streams[uri]?.expire(entryID, now: time.monotonic) else {
            preconditionFailure("a queued put's deadline outlived it or came early")
        }
        probe(.queuedPutExpired)
        let error = WalleError(.outOfRange, "entry \(entryID) waited too long for entry \(entryID - 1)")
        resolve(expired.routes, .refused(.queuedPutTimeout, error), uri, expired.entry)
    }

    mutating func memberReadEntries(_ route: Route, _ uri: StreamURI, start: EntryID, end: EntryID) {
        let committed = streams[held: uri].committedID
        guard start < end, start <= committed else {
            fail(route, .notFound, "entry \(start) is not committed on \(id) (committed \(committed))")
            return
        }
        readCommitted(uri, start: start, end: min(end, committed + 1), then: .answerInternal(route))
    }
}
