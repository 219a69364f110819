import WalleEnvironment

/// Effects of one event: notes, sends, answers, refusals, and the writes and continuations
/// that wait for a sync. One event's writes go to the disk as one transaction.
extension ServerCore {
    mutating func note(_ text: @autoclosure () -> String) {
        if configuration.notesEnabled { outbox.append(.note(text())) }
    }

    /// Marks a coverage probe: this event took one of the subtle branches `Probe` names.
    mutating func probe(_ probe: Probe) { probes.insert(probe) }

    mutating func recordQuorum(_ uri: StreamURI, version: UInt64, members: [NodeID], startedAt: Instant) {
        if configuration.quorumRecordsEnabled {
            outbox.append(.quorum(QuorumRecord(
                stream: uri, streamVersion: version, members: members, startedAt: startedAt)))
        }
    }

    mutating func send(_ message: Message, to target: NodeID) {
        outbox.append(.send(message, to: target))
    }

    mutating func reply(_ route: Route, _ reply: Reply) {
        send(.response(route.requestID, reply), to: route.node)
    }

    mutating func fail(_ route: Route, _ code: WalleError.Code, _ message: String) {
        reply(route, .failed(WalleError(code, message)))
    }

    /// Answers a request a bound refused, and counts the refusal by its bound.
    mutating func fail(_ route: Route, _ code: WalleError.Code, _ message: String, limit: Refusal) {
        outbox.append(.refused(limit))
        probe(.resourceExhausted)
        fail(route, code, message)
    }

    /// A request the boundary refused: answered with the error, nothing else changes. A bad
    /// answer (a response) is dropped; its call times out as if it were lost.
    mutating func refuse(_ message: Message, from source: NodeID, _ error: WalleError) {
        note("refused \(message.kindName) from \(source): \(error)")
        guard !message.isResponse else { return }
        reply(Route(node: source, requestID: message.requestID), .failed(error))
    }

    /// Submits the writes gathered while handling one event as one transaction.
    mutating func flushWrites() {
        guard !pendingWrites.isEmpty else { return }
        outbox.append(.disk(.write(pendingWrites)))
        pendingWrites.removeAll(keepingCapacity: true)
        groupCommit.recordWrite()
    }

    /// Runs `continuation` once everything written while handling this event is durable.
    /// All of one event's writes go to the disk as one transaction first. Answers beyond
    /// `syncWaitersMax` are refused at once; the other continuations are bounded by their own
    /// owners (`newWriterWaitsMax`, one backfill per stream).
    mutating func whenDurable(_ continuation: GroupCommit.Continuation) {
        if case .reply(let route, _) = continuation,
            groupCommit.waiterCount + awaitingFlush.count >= configuration.syncWaitersMax
        {
            fail(
                route, .resourceExhausted,
                "\(groupCommit.waiterCount + awaitingFlush.count) answers already wait for a sync on \(id)",
                limit: .syncWaiters)
            return
        }
        awaitingFlush.append(continuation)
    }

    /// Ends the handling of one event: submits its writes, then registers what waits on them.
    mutating func finishEvent() {
        var rounds = 0
        while !awaitingFlush.isEmpty {
            rounds += 1
            precondition(rounds <= 4, "continuations keep writing: unbounded")
            flushWrites()
            let waiting = awaitingFlush
            awaitingFlush.removeAll(keepingCapacity: true)
            for continuation in waiting {
                let (runNow, sync) = groupCommit.await(continuation)
                if let sync { outbox.append(.disk(sync)) }
                if let runNow { run(runNow) }
            }
        }
        flushWrites()
        checkInvariants()
    }

    /// The bound on timers this node's configuration and streams allow (`timerCountMax`).
    var timerCountMax: Int { configuration.timerCountMax(streamCount: streams.count) }

    /// What the timers may hold right now: one deadline per live call, read waiter, waiting
    /// NewWriter and queued put, two per stream, three for the topology watch and the
    /// registration. Exceeding it means a deadline outlived what it guards (lazy cancellation).
    /// O(streams): simulator and tests.
    package var liveDeadlineCountMax: Int {
        let queued = streams.values.reduce(0) { $0 + $1.queueCount }
        return calls.count + readWaiterCount + newWriterWaits.count + queued + 3 * streams.count + 3
    }

    package var timerCount: Int { timers.count }

    mutating func run(_ continuation: GroupCommit.Continuation) {
        switch continuation {
        case .reply(let route, let answer):
            reply(route, answer)
        case .newWriterAnswer(let waitID):
            guard let wait = newWriterWaits[waitID] else { preconditionFailure("a NewWriter wait is answered once") }
            if wait.until <= time.monotonic {
                answerNewWriter(waitID)
            } else {
                timers.schedule(.newWriterAnswer(waitID), at: wait.until)
            }
        case .resumeBackfill(let uri):
            streams[uri]?.backfill.resume()
            startBackfill(uri)
        }
    }

    /// Acknowledges a write: after the sync that covers it (unless a planted bug says not).
    mutating func acknowledgeWhenDurable(_ route: Route, _ answer: Reply = .ok) {
        if configuration.plantedBugIsActive(.acknowledgeBeforeSync) {
            reply(route, answer)
            return
        }
        whenDurable(.reply(route, answer))
    }
}

