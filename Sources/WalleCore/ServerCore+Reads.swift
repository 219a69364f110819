import WalleEnvironment

/// A read of committed entries waiting for the disk.
struct DiskRead {
    enum Purpose {
        case answerInternal(Route)
        case answerPublic(Route)

        var route: Route {
            switch self {
            case .answerInternal(let route), .answerPublic(let route): return route
            }
        }
    }

    var uri: StreamURI
    var start: EntryID
    var purpose: Purpose
}

/// A PollStream or StreamEntries waiting for the committed id to reach what it asks for.
struct ReadWaiter {
    enum Kind {
        case poll(EntryID)
        case entries(start: EntryID, end: EntryID)

        var firstNeeded: EntryID {
            switch self {
            case .poll(let id): return id
            case .entries(let start, _): return start
            }
        }
    }

    var route: Route
    var kind: Kind
    /// Names its deadline timer: two waiters may share a route (a repeated request id).
    var id: UInt64 = 0
}

// Reads (docs/protocol.md, "Reads"). Servers return only entries they hold as committed
// ([READ-SAFE-2]); the lease is not consulted for data that is already committed (closes
// WS-21).
extension ServerCore {
    mutating func pollStream(_ route: Route, _ uri: StreamURI, from pollEntryID: EntryID) {
        guard let replica = streams[uri] else {
            fail(route, .notFound, "stream \(uri) is not stored on \(id)")
            return
        }
        if replica.committedID >= pollEntryID {
            answerPoll(route, replica)
            return
        }
        wait(ReadWaiter(route: route, kind: .poll(pollEntryID)), uri)
    }

    mutating func streamEntries(_ route: Route, _ uri: StreamURI, start: EntryID, end: EntryID) {
        guard start < end else {
            fail(route, .invalidArgument, "start \(start) must be below end \(end)")
            return
        }
        guard let replica = streams[uri] else {
            fail(route, .notFound, "stream \(uri) is not stored on \(id)")
            return
        }
        if let error = Self.belowFirstEntry(replica, start) {
            fail(route, error.code, error.message)
            return
        }
        if replica.committedID >= start {
            readCommitted(uri, start: start, end: min(end, replica.committedID + 1), then: .answerPublic(route))
            return
        }
        wait(ReadWaiter(route: route, kind: .entries(start: start, end: end)), uri)
    }

    private mutating func wait(_ waiter: ReadWaiter, _ uri: StreamURI) {
        guard readWaiterCount < configuration.pollWaitersMax else {
            fail(
                waiter.route, .resourceExhausted, "\(readWaiterCount) reads are already waiting on \(id)",
                limit: .pollWaiters)
            return
        }
        var waiter = waiter
        nextWaiterID += 1
        waiter.id = nextWaiterID
        readWaiters[uri, default: []].append(waiter)
        readWaiterCount += 1
        timers.schedule(.readWaiterDeadline(uri, waiter.id), at: time.monotonic + configuration.pollTimeout)
    }

    mutating func answerReadWaiters(_ uri: StreamURI) {
        guard let waiters = readWaiters[uri], let replica = streams[uri] else { return }
        let committed = replica.committedID
        var still: [ReadWaiter] = []
        for waiter in waiters {
            guard committed >= waiter.kind.firstNeeded else {
                still.append(waiter)
                continue
            }
            readWaiterCount -= 1
            timers.cancel(.readWaiterDeadline(uri, waiter.id))
            switch waiter.kind {
            case .poll:
                answerPoll(waiter.route, replica)
            case .entries(let start, let end):
                readCommitted(uri, start: start, end: min(end, committed + 1), then: .answerPublic(waiter.route))
            }
        }
        readWaiters[uri] = still.isEmpty ? nil : still
    }

    mutating func expireReadWaiter(_ uri: StreamURI, _ waiterID: UInt64) {
        guard var waiters = readWaiters[uri], let index = waiters.firstIndex(where: { $0.id == waiterID }) else {
            preconditionFailure("a read waiter's deadline outlived it")
        }
        let waiter = waiters.remove(at: index)
        readWaiters[uri] = waiters.isEmpty ? nil : waiters
        readWaiterCount -= 1
        // OutOfRange, not DeadlineExceeded: "nothing new yet, poll again" ([11.1]).
        let committed = streams[uri]?.committedID ?? 0
        fail(waiter.route, .outOfRange, "committed id \(committed) is below \(waiter.kind.firstNeeded)")
    }

    /// The committed entry, unless this member lags behind a trim: its committed entry is
    /// then below the first entry, and another member can answer.
    private mutating func answerPoll(_ route: Route, _ replica: StreamReplica) {
        guard replica.committedID >= replica.metadata.firstEntryID else {
            probe(.pollBehindTrim)
            let first = replica.metadata.firstEntryID
            let committed = replica.committedID
            let uri = replica.uri
            fail(route, .unavailable, "\(id) has committed \(uri) only to \(committed), below its first entry \(first)")
            return
        }
        reply(route, .entry(replica.committedEntry))
    }

    /// OutOfRange for a read that starts below the stream's first entry, as this member knows
    /// it: nothing there is served, to readers or to peers (docs/protocol.md, "Trimming").
    static func belowFirstEntry(_ replica: StreamReplica, _ start: EntryID) -> WalleError? {
        let first = replica.metadata.firstEntryID
        guard start < first else { return nil }
        return WalleError(.outOfRange, "entry \(start) of \(replica.uri) is below its first entry \(first) (trimmed)")
    }

    /// Reads committed entries `[start, end)`; the committed entry itself is in memory.
    mutating func readCommitted(_ uri: StreamURI, start: EntryID, end: EntryID, then purpose: DiskRead.Purpose) {
        let replica = streams[held: uri]
        precondition(start < end && end <= replica.committedID + 1, "reads return committed entries only")
        if let error = Self.belowFirstEntry(replica, start) {
            fail(purpose.route, error.code, error.message)
            return
        }
        var end = end
        if case .answerPublic(let route) = purpose, replica.metadata.hasGap, start < replica.metadata.gapEnd {
            // The gap range is unverified (it may hold kept entries): readers never see it.
            guard start < replica.metadata.gapStart else {
                fail(route, .unavailable, "entry \(start) of \(uri) is not backfilled on \(id) yet")
                return
            }
            end = min(end, replica.metadata.gapStart)
        }
        if start == replica.committedID {
            answerRead(purpose, [replica.committedEntry], uri: uri, start: start)
            return
        }
        guard diskReads.count < configuration.diskReadsMax else {
            fail(
                purpose.route, .resourceExhausted, "\(diskReads.count) disk reads are already in flight on \(id)",
                limit: .diskReads)
            return
        }
        // The writes of this event so far go first: the disk applies requests in order, and
        // the read must see them (a gap commit drops stale entries the read must not return).
        flushWrites()
        nextDiskToken += 1
        diskReads[nextDiskToken] = DiskRead(uri: uri, start: start, purpose: purpose)
        var countMax = configuration.readBatchCountMax
        if case .answerInternal = purpose { countMax = max(countMax, ServerConfiguration.backfillAnswerCountMin) }
        let count = Int(min(UInt64(countMax), end - start))
        outbox.append(.disk(.read(token: nextDiskToken, uri, range: start..<end, countMax: count)))
    }

    mutating func readCompleted(_ read: DiskRead, _ entries: [Entry]) {
        // A trim learned while the read was on disk: nothing below the new first entry goes
        // out once the member knows it, whenever the read started.
        if let replica = streams[read.uri], let error = Self.belowFirstEntry(replica, read.start) {
            probe(.readOvertakenByTrim)
            fail(read.purpose.route, error.code, error.message)
            return
        }
        answerRead(read.purpose, entries, uri: read.uri, start: read.start)
    }

    /// A reader gets the entries contiguous from `start`; a hole (a gap not yet backfilled)
    /// ends the answer there. A peer's backfill checks its answer from the top down, so it
    /// gets the contiguous run that ends at the highest entry found. Nothing at all is an
    /// error the caller can retry elsewhere.
    private mutating func answerRead(_ purpose: DiskRead.Purpose, _ entries: [Entry], uri: StreamURI, start: EntryID) {
        switch purpose {
        case .answerInternal(let route):
            var contiguous = ArraySlice(entries)
            if let last = entries.last {
                let run = entries.reversed().enumerated().prefix { $0.element.id + UInt64($0.offset) == last.id }.count
                contiguous = entries.suffix(run)
            }
            // Over the byte bound, the lowest entries go: the backfill proves downwards from
            // the top, so the top of the run is what it can use, and it needs three of them.
            var bytes = contiguous.reduce(0) { $0 + $1.data.count }
            while bytes > configuration.readBatchBytesMax,
                contiguous.count > ServerConfiguration.backfillAnswerCountMin
            {
                bytes -= contiguous.removeFirst().data.count
            }
            if contiguous.isEmpty {
                fail(route, .notFound, "entry \(start) of \(uri) is missing on \(id)")
            } else {
                reply(route, .entries(Array(contiguous)))
            }
        case .answerPublic(let route):
            var contiguous: [Entry] = []
            var bytes = 0
            for entry in entries {
                guard entry.id == start + UInt64(contiguous.count) else { break }
                bytes += entry.data.count
                guard bytes <= configuration.readBatchBytesMax || contiguous.isEmpty else { break }
                contiguous.append(entry)
            }
            if contiguous.isEmpty {
                fail(route, .unavailable, "entry \(start) of \(uri) is not backfilled on \(id) yet")
            } else {
                reply(route, .entries(contiguous))
            }
        }
    }
}
