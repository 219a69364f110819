public import NIOCore
public import WalleCore
public import WalleEnvironment
import WalleNode
import WalleTransport

/// The exclusive writer of one stream: claims it, then pipelines puts. Runs the simulator's
/// `WriterClient` through the same `WriterNode` driver, on TCP and the system clock.
///
/// `append` returns once the entry is committed (durable on a majority); many appends may be
/// in flight at once, and they commit in order. After `closed` (a newer writer took over),
/// every waiting append fails and the writer may `claim` again.
public final class StreamWriter: @unchecked Sendable {
    public let uri: StreamURI
    private let eventLoop: any EventLoop
    private let transport: Transport
    private let clock: SystemClock
    private let node: WriterNode<SystemClock, Transport>
    private var claimWaiter: EventLoopPromise<(WriterID, Entry)>?
    /// Set by `close`: a claim in progress stops retrying.
    private var closed = false
    private var appendWaiters: [EntryID: EventLoopPromise<Entry>] = [:]
    /// Appends refused for lack of room wait here for acknowledgements, bounded by count and
    /// by the bytes they hold (each keeps its data until it is retried): past either bound an
    /// append fails with ResourceExhausted instead of waiting.
    private var roomWaiters: [EventLoopPromise<Void>] = []
    private var roomWaiterBytes = 0
    static let roomWaitersMax = 1024
    static let roomWaiterBytesMax = 64 << 20

    init(client: ClusterClient, uri: StreamURI, members: [NodeID], configuration: WriterConfiguration) {
        self.uri = uri
        self.eventLoop = client.eventLoop
        let id = ClusterClient.makeClientID()
        // Every server it knows of: the writer follows the topology, and its members change.
        let transport = Transport(eventLoop: eventLoop, localID: id, peers: client.addresses, logger: client.logger)
        self.transport = transport
        self.clock = SystemClock(eventLoop: eventLoop)
        let writer = WriterClient(
            id: id, uri: uri, servers: members, configuration: configuration,
            firstServer: Int.random(in: 0..<members.count))
        self.node = WriterNode(client: writer, clock: clock, network: transport)
        node.serversSink = { [unowned transport] servers in transport.learn(servers) }
        transport.onMessage = { [weak self] message, source in
            guard let self else { return }
            handle(node.receive(message, from: source))
        }
        clock.onWake = { [weak self] in
            guard let self else { return }
            handle(node.wake())
        }
    }

    /// How long `claim` keeps trying. A coordinator collects NewWriter answers for up to
    /// `leaseMax` + `newWriterCallSlack` (65 s by default) while members wait out earlier
    /// leases; one attempt of this client gives up after 2 s + 3 leases. An attempt that fails
    /// for a passing reason (its coordinator died or restarted, a member was full or had moved
    /// on to a new member list) is made again through the next server, so the client's
    /// patience matches the servers' waits. Each retry waits out no lease a second time: a
    /// member answers it at the same lease end as before.
    public static let claimDeadline: Duration = .seconds(70)
    /// Pause between attempts: 100 ms more each time, at most 1 s.
    static let claimRetryPauseMax: Duration = .seconds(1)

    /// Becomes the stream's writer: waits out the previous writer's lease, commits the winning
    /// tail, and returns this writer's id and the last committed entry. Retries passing
    /// failures until `claimDeadline`; a final error (another writer won meanwhile, the stream
    /// does not exist) ends it at once.
    public func claim() async throws(WalleError) -> (WriterID, tail: Entry) {
        try await claim(deadline: ContinuousClock.now + Self.claimDeadline, patience: nil)
    }

    /// WaitAndClaim: becomes the writer only once no writer holds a live lease, so a live
    /// writer is not fenced. A live writer renews its lease for as long as it lives, so this
    /// waits up to `patience` in all for it to stop, then fails with DeadlineExceeded.
    public func waitAndClaim(patience: Duration) async throws(WalleError) -> (WriterID, tail: Entry) {
        let deadline = ContinuousClock.now + patience
        return try await claim(deadline: deadline, patience: deadline)
    }

    private func claim(
        deadline: ContinuousClock.Instant, patience: ContinuousClock.Instant?
    ) async throws(WalleError) -> (WriterID, tail: Entry) {
        var pause = Duration.zero
        while true {
            do {
                return try await claimOnce(patience: patience)
            } catch {
                let passing: Set<WalleError.Code> = [.unavailable, .deadlineExceeded, .resourceExhausted]
                let closed = (try? await eventLoop.submit { self.closed }.get()) ?? true
                guard passing.contains(error.code), !closed, ContinuousClock.now + pause < deadline else { throw error }
                pause = min(pause + .milliseconds(100), Self.claimRetryPauseMax)
                do {
                    try await Task.sleep(for: pause)
                } catch {
                    throw WalleError(.unavailable, "the claim of \(uri) was cancelled")
                }
            }
        }
    }

    /// One claim; with `patience`, a polite one that waits for the current lease to run out,
    /// until then at most.
    private func claimOnce(patience: ContinuousClock.Instant?) async throws(WalleError) -> (WriterID, tail: Entry) {
        let promise = eventLoop.makePromise(of: (WriterID, Entry).self)
        eventLoop.execute { [self] in
            guard claimWaiter == nil else {
                promise.fail(WalleError(.failedPrecondition, "a claim of \(uri) is already running"))
                return
            }
            switch node.client.phase {
            case .idle, .closed:
                claimWaiter = promise
                guard let patience else {
                    handle(node.claim())
                    return
                }
                handle(node.waitAndClaim())
                let left = ContinuousClock.now.duration(to: patience)
                eventLoop.scheduleTask(in: .nanoseconds(max(0, left.nanoseconds))) { [self] in
                    let error = WalleError(.deadlineExceeded, "the writer of \(uri) kept its lease; stopped waiting")
                    handle(node.stopWaiting(error))
                }
            default:
                promise.fail(WalleError(.failedPrecondition, "already the writer of \(uri)"))
            }
        }
        return try await Self.wait(promise)
    }

    /// Appends `data` and returns the committed entry.
    public func append(_ data: [UInt8]) async throws(WalleError) -> Entry {
        try await Self.wait(submit(data))
    }

    /// Appends `data` and returns at once; the future completes when the entry commits. When
    /// the writer's pending bound is full, it waits for room first.
    public func submit(_ data: [UInt8]) -> EventLoopFuture<Entry> {
        let promise = eventLoop.makePromise(of: Entry.self)
        eventLoop.execute { [self] in tryPut(data, promise) }
        return promise.futureResult
    }

    private func tryPut(_ data: [UInt8], _ promise: EventLoopPromise<Entry>) {
        do {
            let (entry, events) = try node.put(data)
            appendWaiters[entry.id] = promise
            handle(events)
        } catch where error.code == .resourceExhausted && roomWaiters.count < Self.roomWaitersMax
            && roomWaiterBytes + data.count <= Self.roomWaiterBytesMax
        {
            let room = eventLoop.makePromise(of: Void.self)
            roomWaiters.append(room)
            roomWaiterBytes += data.count
            room.futureResult.whenComplete { [self] result in
                roomWaiterBytes -= data.count
                switch result {
                case .success: tryPut(data, promise)
                case .failure(let error): promise.fail(error)
                }
            }
        } catch {
            promise.fail(error)
        }
    }

    /// Whether this client may still serve reads as the exclusive writer (its lease margin).
    public func isExclusive() async -> Bool {
        try! await eventLoop.submit { [self] in node.isExclusive() }.get()
    }

    /// The members the writer sends its requests through now: it follows the topology.
    public var members: [NodeID] {
        get async { try! await eventLoop.submit { [self] in node.client.servers }.get() }
    }

    public var writerID: WriterID {
        get async { try! await eventLoop.submit { [self] in node.client.writerID }.get() }
    }

    /// Waits until every append is acknowledged and a majority of members know the last one
    /// committed (the writer's short heartbeat tells them), so readers see everything. Call it
    /// before `close` when the writer is done; gives up after `timeout`.
    public func finish(timeout: Duration = .seconds(5)) async throws(WalleError) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (done, phase) = try! await eventLoop.submit { [self] in
                (node.client.pendingCount == 0 && node.client.membersKnowCommitted, node.client.phase)
            }.get()
            if case .closed(let error) = phase { throw error }
            if done { return }
            try? await Task.sleep(for: .milliseconds(2))
        }
        throw WalleError(.deadlineExceeded, "the writer of \(uri) did not finish within \(timeout)")
    }

    /// Stops talking to the servers. Appends still waiting fail.
    public func close() async {
        try? await eventLoop.submit { [self] in
            closed = true
            clock.cancel()
            fail(WalleError(.unavailable, "the writer of \(uri) was closed"))
        }.get()
        await transport.close()
    }

    private func handle(_ events: [WriterEvent]) {
        for event in events {
            switch event {
            case .claimed(let writer, let tail):
                claimWaiter?.succeed((writer, tail))
                claimWaiter = nil
            case .claimFailed(let error):
                claimWaiter?.fail(error)
                claimWaiter = nil
            case .putAcknowledged(let entry):
                appendWaiters.removeValue(forKey: entry.id)?.succeed(entry)
                let waiting = roomWaiters
                roomWaiters.removeAll()
                for room in waiting { room.succeed(()) }
            case .closed(let error):
                fail(error)
            }
        }
    }

    private func fail(_ error: WalleError) {
        claimWaiter?.fail(error)
        claimWaiter = nil
        for id in appendWaiters.keys.sorted() { appendWaiters.removeValue(forKey: id)!.fail(error) }
        let waiting = roomWaiters
        roomWaiters.removeAll()
        for room in waiting { room.fail(error) }
    }

    static func wait<Value: Sendable>(_ future: EventLoopFuture<Value>) async throws(WalleError) -> Value {
        do {
            return try await future.get()
        } catch let error as WalleError {
            throw error
        } catch {
            throw WalleError(.internal, "\(error)")
        }
    }

    static func wait<Value: Sendable>(_ promise: EventLoopPromise<Value>) async throws(WalleError) -> Value {
        try await wait(promise.futureResult)
    }
}

extension ClusterClient {
    /// A writer for `uri` (not yet claimed). `lease` is how long members keep its lease
    /// after each put or heartbeat; a failed writer's successor waits that long.
    public func writer(
        for uri: StreamURI, lease: Duration = .seconds(2), address: String = "walle-client"
    ) async throws(WalleError) -> StreamWriter {
        let topology = try await topology()
        guard let members = topology.streams[uri]?.members, !members.isEmpty else {
            throw WalleError(.notFound, "stream \(uri) does not exist in the cluster's topology")
        }
        var configuration = WriterConfiguration(address: address, lease: lease)
        let root = topology.streams[Self.rootStream]?.members ?? serverIDs
        configuration.topologySource = TopologySource(rootStream: Self.rootStream, rootMembers: root)
        return StreamWriter(client: self, uri: uri, members: members, configuration: configuration)
    }

    /// Adds `uri` to the topology with `members` as version 1 of its member list: asks the
    /// topology manager (docs/protocol.md, "Requests to the manager") and waits until every
    /// member has created the stream. Asking again for the same members succeeds; for other
    /// members of an existing stream it fails with FailedPrecondition.
    public func createStream(_ uri: StreamURI, members: [NodeID]) async throws(WalleError) {
        _ = try await topology()  // learns the registered servers' addresses
        let unknown = members.filter { addresses[$0] == nil }
        guard unknown.isEmpty, !members.isEmpty else {
            throw WalleError(.invalidArgument, "members \(unknown.map(\.rawValue)) are not servers of this cluster")
        }
        _ = try await topologyRequest(.createStream(uri, members: members))
        try await waitForMembers(uri, members)
    }

    /// Sends `request` to the topology manager and returns the committed topology that makes it
    /// true. The manager is the root stream's writer, `manager@N`; while it moves (a standby
    /// takes over once the old one's lease has run out) the request is sent again, every 200 ms
    /// for up to `patience`. Final errors (InvalidArgument, FailedPrecondition, NotFound,
    /// PermissionDenied) end it at once.
    public func topologyRequest(
        _ request: TopologyRequest, patience: Duration = .seconds(30)
    ) async throws(WalleError) -> Topology {
        let deadline = ContinuousClock.now + patience
        var lastError = WalleError(.unavailable, "no topology manager answered within \(patience)")
        repeat {
            do throws(WalleError) {
                let manager = try await managerID()
                // Short calls: a manager that died is noticed soon, and a change that takes longer
                // (a removal waiting for members to catch up) is asked about again, the new
                // request taking the old one's place at the manager.
                let reply = await call(manager, timeout: .seconds(5)) { .topologyRequest($0, request) }
                guard case .entry(let entry) = reply else { throw unexpected(reply) }
                return try Topology.decode(entry.data, entryID: entry.id)
            } catch {
                if error.isFinal || error.code == .notFound { throw error }
                logger.debug("topology request \(request): \(error); asking again")
                lastError = error
            }
            try? await Task.sleep(for: .milliseconds(200))
        } while ContinuousClock.now < deadline
        throw lastError
    }

    /// The server whose manager writes the root stream, read from its writer address.
    func managerID() async throws(WalleError) -> NodeID {
        let info = try await writerStatus(Self.rootStream)
        let prefix = "manager@"
        guard info.writerAddress.hasPrefix(prefix), let raw = UInt64(info.writerAddress.dropFirst(prefix.count)),
            addresses[NodeID(raw)] != nil
        else {
            throw WalleError(.unavailable, "the root stream's writer is \"\(info.writerAddress)\", not a known manager")
        }
        return NodeID(raw)
    }

    /// Members create a stream when they learn the topology (they long-poll the root stream);
    /// a claim before that would find it missing.
    private func waitForMembers(_ uri: StreamURI, _ members: [NodeID]) async throws(WalleError) {
        for _ in 0..<100 {
            var ready = 0
            for member in members {
                if case .writerInfo = await call(member, timeout: .seconds(1), { .writerStatus($0, uri) }) {
                    ready += 1
                }
            }
            if ready == members.count { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
        throw WalleError(.unavailable, "members of \(uri) did not all learn the new topology within 5 s")
    }
}
