import WalleCore
import WalleEnvironment
import WalleNode

/// Everything that can happen in a run, in true (simulator) time.
enum SimEvent {
    case deliver(from: NodeID, to: NodeID, Message)
    case diskSynced(NodeID, token: UInt64, upTo: UInt64, incarnation: UInt64)
    case diskRead(NodeID, token: UInt64, [Entry], incarnation: UInt64)
    case wakeup(NodeID, generation: UInt64)
    case workload(WorkloadAction)
}

typealias SimServerNode = ServerNode<SimClock, SimNetwork, SimDisk>
typealias SimWriterNode = WriterNode<SimClock, SimNetwork>

final class ServerHost {
    let id: NodeID
    let clock: SimClock
    let disk: SimDisk
    var node: SimServerNode!
    /// The oracle's last view of this server, per workload stream (see `Oracle.observeServer`).
    var oracleCommitted: [EntryID] = []
    var oracleWriter: [WriterID] = []

    init(id: NodeID, clock: SimClock, disk: SimDisk) {
        self.id = id
        self.clock = clock
        self.disk = disk
    }
}

final class WriterHost {
    let id: NodeID
    let uri: StreamURI
    let clock: SimClock
    let node: SimWriterNode
    /// A paused writer receives nothing and does nothing, like a frozen process.
    var paused = false
    var burstGeneration: UInt64 = 0

    init(id: NodeID, uri: StreamURI, clock: SimClock, node: SimWriterNode) {
        self.id = id
        self.uri = uri
        self.clock = clock
        self.node = node
    }
}

/// One simulated cluster: servers, writer and reader clients, the scheduler that orders all
/// their events by (true time, insertion), and the oracle that watches them.
public final class World {
    static let epochNanoseconds: Int64 = 1_767_225_600_000_000_000
    public let seed: UInt64
    public let profile: Profile
    let options: RunOptions
    private(set) var trueNow: Int64 = 0
    private var queue = TimerQueue<SimEvent>(countMax: 50_000_000)
    let trace = Trace()
    private(set) var oracle: Oracle!
    private(set) var network: SimNetwork!
    private(set) var workload: Workload!
    var servers: [ServerHost] = []
    var writers: [WriterHost] = []
    var readers: [ReaderHost] = []
    private var hostIndex: [NodeID: HostRef] = [:]
    private var clockRandom: SimRandom

    enum HostRef {
        case server(Int)
        case writer(Int)
        case reader(Int)
    }

    public init(seed: UInt64, options: RunOptions) {
        self.seed = seed
        self.options = options
        self.profile = Profile.draw(seed: seed, duration: options.duration)
        self.clockRandom = SimRandom.fork(seed: seed, "clock")
        self.oracle = Oracle(world: self)
        self.network = SimNetwork(world: self, random: SimRandom.fork(seed: seed, "network"), profile: profile.network)
        self.workload = Workload(world: self, random: SimRandom.fork(seed: seed, "workload"))
        buildServers()
        workload.buildClients()
        workload.start()
    }

    var serverIDs: [NodeID] { servers.map(\.id) }

    func makeClock(_ node: NodeID, rateIndex: Int) -> SimClock {
        let origin = clockRandom.int(in: Int64(0)...1_000_000_000_000)
        let wallOffset = clockRandom.int(in: Int64(-50_000_000)...50_000_000)
        return SimClock(
            world: self, node: node, rate: profile.clockRates[rateIndex], localOrigin: origin,
            wallOffsetNanoseconds: wallOffset)
    }

    private func buildServers() {
        var configuration = ServerConfiguration()
        configuration.notesEnabled = options.printTrace
        configuration.plantedBugs = options.plantedBugs
        for index in 0..<profile.serverCount {
            let id = NodeID(UInt64(index + 1))
            let clock = makeClock(id, rateIndex: index)
            let disk = SimDisk(world: self, node: id, random: SimRandom.fork(seed: seed, "disk-\(index)"), profile: profile.disk)
            let host = ServerHost(id: id, clock: clock, disk: disk)
            servers.append(host)
            hostIndex[id] = .server(index)
        }
        for host in servers {
            let random = SimRandom.fork(seed: seed, "server-\(host.id.rawValue)")
            do {
                host.node = try SimServerNode(
                    id: host.id, configuration: configuration, clock: host.clock, network: network,
                    disk: host.disk, random: random)
            } catch {
                preconditionFailure("an empty simulated disk always recovers: \(error)")
            }
            host.node.noteSink = { [unowned self] text in trace.line(trueNow, "\(host.id.short) note: \(text)") }
        }
    }

    func register(_ id: NodeID, _ ref: HostRef) { hostIndex[id] = ref }

    // MARK: Scheduling

    func schedule(at time: Int64, _ event: SimEvent) {
        precondition(time >= trueNow, "events are never scheduled in the past")
        queue.schedule(at: Instant(nanoseconds: time), event)
    }

    func scheduleWakeup(_ node: NodeID, atTrue time: Int64, generation: UInt64) {
        schedule(at: time, .wakeup(node, generation: generation))
    }

    /// Runs until the profile's duration has passed or an oracle reports a violation.
    func runEvents() {
        let end = profile.duration.nanoseconds
        while oracle.violation == nil, let next = queue.nextDeadline, next.nanoseconds <= end {
            trueNow = next.nanoseconds
            let event = queue.popDue(now: next)!
            handle(event)
        }
        trueNow = max(trueNow, end)
    }

    private func handle(_ event: SimEvent) {
        switch event {
        case .deliver(let source, let target, let message):
            trace.event(at: trueNow, node: target, kind: 1)
            trace.mix(source.rawValue)
            trace.mix(message)
            trace.line(trueNow, "\(target.short) <- \(source.short) \(message)")
            deliver(message, from: source, to: target)
        case .diskSynced(let node, let token, let upTo, let incarnation):
            guard case .server(let index)? = hostIndex[node], servers[index].disk.incarnation == incarnation else { return }
            trace.event(at: trueNow, node: node, kind: 2)
            trace.mix(upTo)
            trace.line(trueNow, "\(node.short) disk synced writes up to #\(upTo)")
            servers[index].disk.syncCompleted(upTo: upTo)
            servers[index].node.diskCompleted(.synced(token: token))
            oracle.observeServer(servers[index])
        case .diskRead(let node, let token, let entries, let incarnation):
            guard case .server(let index)? = hostIndex[node], servers[index].disk.incarnation == incarnation else { return }
            trace.event(at: trueNow, node: node, kind: 3)
            trace.mix(UInt64(entries.count))
            trace.line(trueNow, "\(node.short) disk read \(entries.count) entries")
            servers[index].node.diskCompleted(.read(token: token, entries))
            oracle.observeServer(servers[index])
        case .wakeup(let node, let generation):
            wakeup(node, generation: generation)
        case .workload(let action):
            trace.event(at: trueNow, node: NodeID(0), kind: 5)
            workload.perform(action)
        }
    }

    private func deliver(_ message: Message, from source: NodeID, to target: NodeID) {
        switch hostIndex[target] {
        case .server(let index)?:
            servers[index].node.receive(message, from: source)
            oracle.observeServer(servers[index])
        case .writer(let index)?:
            let host = writers[index]
            guard !host.paused else {
                trace.line(trueNow, "\(target.short) is paused: message dropped")
                return
            }
            workload.writerEvents(host, host.node.receive(message, from: source))
        case .reader(let index)?:
            readers[index].receive(message, from: source)
        case nil:
            preconditionFailure("message to unknown node \(target)")
        }
    }

    private func wakeup(_ node: NodeID, generation: UInt64) {
        switch hostIndex[node] {
        case .server(let index)?:
            guard servers[index].clock.wakeupFired(generation: generation) else { return }
            trace.event(at: trueNow, node: node, kind: 4)
            servers[index].node.wake()
            oracle.observeServer(servers[index])
        case .writer(let index)?:
            let host = writers[index]
            guard host.clock.wakeupFired(generation: generation), !host.paused else { return }
            trace.event(at: trueNow, node: node, kind: 4)
            workload.writerEvents(host, host.node.wake())
        case .reader, nil:
            return
        }
    }

    func setClockRate(_ node: NodeID, _ rate: Double) {
        switch hostIndex[node] {
        case .server(let index)?: servers[index].clock.setRate(rate)
        case .writer(let index)?: writers[index].clock.setRate(rate)
        default: break
        }
    }
}
