public import WalleEnvironment

/// The topology manager (docs/protocol.md, "StreamStatus and the manager"): the writer of the
/// root stream, whose entry N is topology version N. It makes one membership change at a time,
/// each a single add or remove ([MEM-2]), and waits before each:
/// - a majority of the stream's members are at its current version ([MEM-4]; with the members'
///   strict version check this closes WS-2);
/// - before a removal, a majority of the remaining members have no gap and hold everything that
///   may have been acknowledged under the newest writer's stamp (`settled`, closes WS-3, and
///   keeps the newest claim's stamp on a majority).
///
/// Sans-IO: it decides, and its host drives the root stream's writer, the network and the
/// timers (`ManagerNode` in WalleNode, for the simulator and for real nodes alike).
public struct TopologyManager {
    /// The manager's phase, each with exactly its data. `topology` is the newest version this
    /// manager knows committed; it is kept while unclaimed (the host reads it).
    enum State: Equatable {
        /// No claim holds: before the first, or after the writer failed to claim or closed.
        case unclaimed(Topology)
        /// Standing by (`whenLeaseExpired`): one WriterStatus probe of the root stream is out,
        /// to `member` (only its answer counts).
        case probing(Topology, requestID: RequestID, member: NodeID)
        /// Claimed, nothing out. A pending removal keeps its target across rounds.
        case waiting(Topology, removalTarget: SettledTarget?)
        /// One StreamStatus call for `pending.first` is out under `requestID`, to `member` (only
        /// its answer counts: anyone can send a response with a guessed id).
        case asking(Topology, requestID: RequestID, removalTarget: SettledTarget?, member: NodeID)
        /// Handed to the writer: the put runs, and the host reports its entry next. A refused
        /// put goes back to waiting with the removal target it had.
        case putting(Topology, Writing, removalTarget: SettledTarget?)
        /// `writing.next` was put as root entry `next.version`; its acknowledgement is awaited.
        case writing(Topology, Writing)
    }

    struct Writing: Equatable {
        var next: Topology
        /// Nil for version 1, the initial topology.
        var change: TopologyChange?
    }

    /// What the remaining members must hold before a removal (see `ready`).
    struct SettledTarget: Equatable {
        var id: EntryID
        var newestWriter: WriterID
    }

    /// A change waiting to be made, and the requests to answer once it is committed (none for
    /// the simulator's nemesis).
    struct PendingChange: Equatable {
        var change: TopologyChange
        var routes: [Route] = []
        /// Asked for by a request (not queued by the host itself, as the simulator's nemesis does).
        var fromRequest = false
    }

    /// Changes waiting to be made, the first in progress; at most `pendingChangesMax` from
    /// requests (the simulator's nemesis queues its own few directly).
    var pending: [PendingChange] = []
    var state: State = .unclaimed(.empty)
    /// The committed root entry that holds `topology`: what a request is answered with. Nil
    /// until the first claim.
    var rootEntry: Entry?
    let configuration: ManagerConfiguration
    var random: any RandomNumberGenerator
    /// Rotates the member asked for status, so a dead member is skipped on the next try.
    var statusCursor: Int
    var lastStatusRequestID: RequestID

    public init(configuration: ManagerConfiguration, random: any RandomNumberGenerator) {
        self.configuration = configuration
        self.random = random
        // One draw, before any other: where the rotation starts.
        self.statusCursor = Int(self.random.next() % 64)
        self.lastStatusRequestID = configuration.statusRequestIDBase
    }

    /// The newest version this manager knows committed.
    public var topology: Topology {
        switch state {
        case .unclaimed(let topology), .probing(let topology, _, _), .waiting(let topology, _),
            .asking(let topology, _, _, _), .putting(let topology, _, _), .writing(let topology, _):
            return topology
        }
    }

    /// No change waits and no version is being written.
    public var isIdle: Bool {
        switch state {
        case .putting, .writing: return false
        case .unclaimed, .probing, .waiting, .asking: return pending.isEmpty
        }
    }

    public var pendingChanges: [TopologyChange] { pending.map(\.change) }

    public var isClaimed: Bool {
        switch state {
        case .unclaimed, .probing: return false
        case .waiting, .asking, .putting, .writing: return true
        }
    }

    // MARK: Events

    /// The host starts the manager: the first claim comes after a millisecond.
    public mutating func start() -> [ManagerAction] {
        defer { checkInvariants() }
        return [.schedule(.claim, after: .milliseconds(1))]
    }

    /// Queues membership changes; they are made one at a time, in order.
    public mutating func enqueue(_ changes: [TopologyChange]) -> [ManagerAction] {
        defer { checkInvariants() }
        pending += changes.map { PendingChange(change: $0) }
        var actions: [ManagerAction] = [.note("manager: queued \(changes.map(\.description).joined(separator: ", "))")]
        if case .waiting(let topology, let target) = state { actions += advance(topology, removalTarget: target) }
        return actions
    }

    /// A manager timer fired. `writerCanClaim`: the root writer is idle or closed.
    public mutating func timerFired(_ timer: ManagerTimer, writerCanClaim: Bool) -> [ManagerAction] {
        defer { checkInvariants() }
        switch (timer, state) {
        case (.claim, _):
            guard writerCanClaim else { return [] }
            switch configuration.claimPolicy {
            case .immediate:
                return [.claimRoot]
            case .whenLeaseExpired(let root, let members):
                guard case .unclaimed = state else { return [] }
                return probe(root, members)
            }
        case (.probeTimeout(let id), .probing(let topology, let asked, _)) where id == asked:
            state = .unclaimed(topology)
            return [.schedule(.claim, after: .zero)]
        case (.retry, .waiting(let topology, let target)):
            return pending.isEmpty ? [] : advance(topology, removalTarget: target)
        case (.statusTimeout(let id), .asking(let topology, let asked, let target, _)) where id == asked:
            state = .waiting(topology, removalTarget: target)
            return advance(topology, removalTarget: target)
        case (.retry, _), (.statusTimeout, _), (.probeTimeout, _):
            return []
        }
    }

    /// One event of the root writer, in the order the writer reported them.
    public mutating func writerEvent(_ event: WriterEvent) -> [ManagerAction] {
        defer { checkInvariants() }
        switch event {
        case .claimed(_, let tail):
            return claimed(tail)
        case .putAcknowledged(let entry):
            return acknowledged(entry)
        case .claimFailed, .closed:
            state = .unclaimed(topology)
            let delay = Self.draw(configuration.claimRetryMilliseconds, &random)
            // The changes stay (the next claim makes them); their requests are told to ask again.
            return [.schedule(.claim, after: .milliseconds(delay))] + refuseWaitingRequests()
        }
    }

    /// The writer took the put of `.putTopology` as `entry`.
    public mutating func topologyPut(_ entry: Entry) -> [ManagerAction] {
        defer { checkInvariants() }
        guard case .putting(let topology, let writing, _) = state else {
            preconditionFailure("a topology put reported with none handed over")
        }
        precondition(entry.id == writing.next.version, "entry N holds version N ([TOPO-1])")
        state = .writing(topology, writing)
        return [.entryWritten(entry)]
    }

    /// The writer refused the put of `.putTopology` (not the writer, or full): try again soon.
    public mutating func topologyPutRefused() -> [ManagerAction] {
        defer { checkInvariants() }
        guard case .putting(let topology, _, let target) = state else {
            preconditionFailure("a topology put refused with none handed over")
        }
        state = .waiting(topology, removalTarget: target)
        return [.schedule(.retry, after: configuration.retryDelay)]
    }

    /// A response on the network. Returns nil when it is not the answer of the status call or
    /// the probe that is out, from the member it went to (the host hands it to the writer then).
    public mutating func statusAnswered(_ message: Message, from source: NodeID) -> [ManagerAction]? {
        if case .response(let requestID, let reply) = message,
            case .probing(let topology, let asked, let member) = state, requestID == asked, source == member
        {
            defer { checkInvariants() }
            state = .unclaimed(topology)
            return probeAnswered(reply)
        }
        guard case .response(let requestID, let reply) = message,
            case .asking(let topology, let asked, let target, let member) = state, requestID == asked, source == member
        else { return nil }
        defer { checkInvariants() }
        state = .waiting(topology, removalTarget: target)
        guard case .streamStatus(let infos) = reply, let change = pending.first?.change else {
            return [.schedule(.retry, after: configuration.retryDelay)]
        }
        if let error = trimRefusal(change, infos, in: topology) {
            let dropped = pending.removeFirst()
            return answers(dropped, .refuse(error)) + advance(topology, removalTarget: nil)
        }
        let (isReady, newTarget) = ready(change, infos, in: topology, removalTarget: target)
        state = .waiting(topology, removalTarget: newTarget)
        guard isReady else { return [.schedule(.retry, after: configuration.retryDelay)] }
        guard let put = write(Self.applying(change, to: topology), change: change, over: topology) else {
            preconditionFailure("a change that does not fit was refused by `decide`")
        }
        return put
    }

    // MARK: Steps

    private mutating func claimed(_ tail: Entry) -> [ManagerAction] {
        let found: Topology
        do {
            found = try Topology.decode(tail.data, entryID: tail.id)
        } catch {
            return [.invalid("root entry \(tail.id) does not decode: \(error)")]
        }
        state = .waiting(found, removalTarget: nil)
        rootEntry = tail
        // A change whose version committed while its acknowledgement was lost is already in
        // the claimed topology: doing it again would add a member twice. (Its requests were
        // told to retry when the claim was lost.)
        pending.removeAll { $0.change.isApplied(in: found) }
        if found.version == 0 {
            return write(configuration.initial, change: nil, over: found)
                ?? [.invalid("the initial topology is over one entry (\(Topology.encodedSizeMax) bytes)")]
        }
        return [.topologyCommitted(found)] + advance(found, removalTarget: nil)
    }

    /// Hands the next version to the writer; nil (and nothing changed) when it would not fit in
    /// one entry: `advance` refuses such a change before it gets here, so that is a bug of ours.
    private mutating func write(
        _ next: Topology, change: TopologyChange?, over topology: Topology
    ) -> [ManagerAction]? {
        precondition(next.version == topology.version + 1, "topology versions grow by one ([TOPO-3])")
        let encoded = next.encoded()
        guard encoded.count <= Topology.encodedSizeMax else { return nil }
        var target: SettledTarget?
        if case .waiting(_, let waiting) = state { target = waiting }
        state = .putting(topology, Writing(next: next, change: change), removalTarget: target)
        return [.putTopology(encoded, version: next.version)]
    }

    private mutating func acknowledged(_ entry: Entry) -> [ManagerAction] {
        guard case .writing(_, let writing) = state, entry.id == writing.next.version else { return [] }
        let committed = writing.next
        state = .waiting(committed, removalTarget: nil)
        rootEntry = entry
        let suffix = writing.change.map { " (\($0))" } ?? ""
        var actions: [ManagerAction] = [
            .note("manager: topology v\(committed.version) committed\(suffix)"), .topologyCommitted(committed),
        ]
        if let change = writing.change {
            actions.append(.changeCommitted(change, committed))
            assert(pending.first?.change == change, "the change written is the first pending")
            let done = pending.removeFirst()
            actions += done.routes.map { .answer($0, .entry(entry)) }
        }
        return actions + advance(committed, removalTarget: nil)
    }

    /// Moves to the next change, from `.waiting`. The change at the head is checked again
    /// against the topology as it is now (it was checked against the topology it would follow,
    /// and a lost claim or a change undone since may have moved it): one already made is
    /// answered and dropped, one that can no longer be made is refused and dropped. A new
    /// stream or an address is written at once (no member has anything to wait for); a member
    /// change asks for status first.
    mutating func advance(_ topology: Topology, removalTarget: SettledTarget?) -> [ManagerAction] {
        var actions: [ManagerAction] = []
        var target = removalTarget
        // Bounded: each turn drops one pending change.
        while let first = pending.first {
            let decision = Self.decide(first.change, in: topology)
            if case .queue = decision { break }
            pending.removeFirst()
            target = nil
            actions += answers(first, decision)
        }
        state = .waiting(topology, removalTarget: target)
        guard let first = pending.first else { return actions }
        if first.change.isWrittenAtOnce {
            let next = Self.applying(first.change, to: topology)
            guard let put = write(next, change: first.change, over: topology) else {
                preconditionFailure("a change that does not fit was refused by `decide`")
            }
            return actions + put
        }
        return actions + askStatus(topology, removalTarget: target)
    }

    /// The answers to a dropped change's requests, and a note for a refused one.
    private func answers(_ dropped: PendingChange, _ decision: Decision) -> [ManagerAction] {
        switch decision {
        case .answerNow:
            guard let rootEntry else { return [] }
            return dropped.routes.map { .answer($0, .entry(rootEntry)) }
        case .refuse(let error):
            return [.note("manager: dropped \(dropped.change): \(error.message)")]
                + dropped.routes.map { .answer($0, .failed(error)) }
        case .queue:
            return []
        }
    }

    /// Asks a member of the next change's stream for every member's status. From `.waiting`.
    private mutating func askStatus(_ topology: Topology, removalTarget: SettledTarget?) -> [ManagerAction] {
        guard let change = pending.first?.change, let uri = change.uri, let stream = topology.streams[uri],
            !stream.members.isEmpty
        else {
            return []
        }
        lastStatusRequestID += 1
        statusCursor += 1
        let target = stream.members[statusCursor % stream.members.count]
        state = .asking(topology, requestID: lastStatusRequestID, removalTarget: removalTarget, member: target)
        return [
            .send(.streamStatus(lastStatusRequestID, uri), to: target),
            .schedule(.statusTimeout(lastStatusRequestID), after: configuration.statusTimeout),
        ]
    }

    /// `lower + next() % width`: the simulator's `SimRandom.int(in:)` draws the same way, so a
    /// seed's runs did not move when the manager came into the core.
    static func draw(_ range: ClosedRange<Int64>, _ random: inout any RandomNumberGenerator) -> Int64 {
        let width = UInt64(range.upperBound - range.lowerBound) &+ 1
        if width == 0 { return Int64(bitPattern: random.next()) }
        return range.lowerBound + Int64(random.next() % width)
    }
}
