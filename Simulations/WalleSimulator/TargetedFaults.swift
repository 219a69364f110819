import WalleCore
import WalleEnvironment

/// Which targeted fault points a seed turns on (swarm testing, like FoundationDB's BUGGIFY):
/// faults aimed at the moments a protocol depends on, where a fault at a random time almost
/// never lands. Drawn from its own fork, so the rest of the profile is drawn as before.
public struct TargetedProfile: Sendable, CustomStringConvertible {
    /// Crash a server right after it sends a reply while it still has writes waiting for a
    /// sync: the window between an answer and the sync it may depend on.
    public var crashAfterReply: Bool
    /// Crash a claim's coordinator as it sends the next phase (before or after the messages
    /// leave), or cut it off for a while.
    public var claimPhases: Bool
    /// Drop or delay the message that completes a claim or a put: the coordinator's
    /// `claimed` or `putAcknowledged` answer.
    public var completionLoss: Bool
    /// Stall the sync of a group commit (a sync covering two or more transactions).
    public var groupCommitStalls: Bool
    /// Pauses of a whole server process, like SIGSTOP: it keeps its state, its clocks run on,
    /// what is sent to it waits; 0 when off.
    public var serverPausesPerMinute: Double
    public var serverPauseMax: Duration
    /// The chance that one opportunity (a moment a point aims at) strikes.
    public var strikeProbability: Double
    /// A point strikes at most once per this gap: a seed is not one long outage.
    public var strikeGapMin: Duration

    static let none = TargetedProfile(
        crashAfterReply: false, claimPhases: false, completionLoss: false, groupCommitStalls: false,
        serverPausesPerMinute: 0, serverPauseMax: .zero, strikeProbability: 0, strikeGapMin: .zero)

    static func draw(seed: UInt64) -> TargetedProfile {
        var random = SimRandom.fork(seed: seed, "targeted-faults")
        return TargetedProfile(
            crashAfterReply: random.chance(0.5), claimPhases: random.chance(0.5),
            completionLoss: random.chance(0.5), groupCommitStalls: random.chance(0.5),
            serverPausesPerMinute: random.chance(0.5) ? 0 : random.double(in: 1...6),
            serverPauseMax: .milliseconds(random.int(in: 10...3000)),
            strikeProbability: random.double(in: 0.01...0.3),
            strikeGapMin: .milliseconds(random.int(in: 500...5000)))
    }

    /// Every point on, with the seed's draws for the rest (`--all-targeted-faults`).
    var allOn: TargetedProfile {
        var profile = self
        profile.crashAfterReply = true
        profile.claimPhases = true
        profile.completionLoss = true
        profile.groupCommitStalls = true
        profile.serverPausesPerMinute = max(4, serverPausesPerMinute)
        return profile
    }

    public var isOff: Bool {
        !crashAfterReply && !claimPhases && !completionLoss && !groupCommitStalls && serverPausesPerMinute == 0
    }

    public var description: String {
        guard !isOff else { return "none" }
        var on: [String] = []
        if crashAfterReply { on.append("crash-after-reply") }
        if claimPhases { on.append("claim-phases") }
        if completionLoss { on.append("completion-loss") }
        if groupCommitStalls { on.append("group-commit-stalls") }
        if serverPausesPerMinute > 0 {
            let rate = Int((serverPausesPerMinute * 10).rounded())
            on.append("server-pauses=\(rate)/10min<=\(serverPauseMax.milliseconds)ms")
        }
        return on.joined(separator: " ")
            + " (strike \(Int((strikeProbability * 100).rounded()))%, gap>=\(strikeGapMin.milliseconds)ms)"
    }
}

/// What the network does with one message a targeted point looked at.
enum MessageVerdict {
    case send
    case drop
    case delay(nanoseconds: Int64)
}

/// The targeted fault points of one seed. The network and the disks ask it at the moments the
/// points aim at; it decides with its own random fork and has the nemesis crash or the
/// network isolate. Every strike is counted and traced.
final class TargetedFaults {
    private enum Point: Int, CaseIterable {
        case crashAfterReply, claimPhase, completionLoss, groupCommitStall
    }

    let profile: TargetedProfile
    private var random: SimRandom
    private let agenda: Agenda
    private let trace: Trace
    private let counters: SimCounters
    /// Unowned: the network holds this, and the cluster's servers hold the network.
    private unowned let cluster: Cluster
    private unowned let network: SimNetwork
    private var lastStrike = [Int64](repeating: Int64.min, count: Point.allCases.count)
    /// Servers that die once the event being handled ends: nothing more they send leaves.
    /// At most one per server, emptied by the crash event.
    private var dying: Set<NodeID> = []
    /// The last (server, instant) a claim-phase decision was made for: one decision per event.
    private var lastClaimPhaseEvent: (NodeID, Int64)?
    private var stopped = false

    init(
        profile: TargetedProfile, random: SimRandom, agenda: Agenda, trace: Trace, counters: SimCounters,
        cluster: Cluster, network: SimNetwork
    ) {
        self.profile = profile
        self.random = random
        self.agenda = agenda
        self.trace = trace
        self.counters = counters
        self.cluster = cluster
        self.network = network
    }

    /// The fault phase ended: no point strikes again.
    func stop() { stopped = true }

    /// A message as it is sent (after the oracle saw it): what the network does with it.
    func verdict(_ message: Message, from source: NodeID, to target: NodeID) -> MessageVerdict {
        guard !stopped, source.isServer else { return .send }
        if dying.contains(source) { return .drop }
        guard source != target else { return .send }
        if profile.crashAfterReply, case .response = message { crashAfterReply(source) }
        if profile.claimPhases, message.startsClaimPhase { return claimPhase(source, message) }
        if profile.completionLoss, !target.isServer, message.completesClaimOrPut { return completion(message, target) }
        return .send
    }

    /// A sync was submitted: when it covers a group of transactions, maybe the disk stalls.
    /// Returns the true time the sync may not complete before.
    func syncSubmitted(_ disk: SimDisk) -> Int64? {
        guard !stopped, profile.groupCommitStalls, disk.unsyncedCount >= 2, strikes(.groupCommitStall) else {
            return nil
        }
        let length = random.int(in: Int64(1_000_000)...500_000_000)
        counters.count(.targetedGroupCommitStall)
        trace.line(
            agenda.trueNow,
            "\(disk.node.short) TARGETED: sync of \(disk.unsyncedCount) transactions stalls "
                + "\(Duration.nanoseconds(length).formattedMilliseconds)")
        return agenda.trueNow + length
    }

    /// The crash event ran (or found the server already down).
    func crashed(_ server: NodeID) { dying.remove(server) }

    private func crashAfterReply(_ server: NodeID) {
        guard let host = cluster.serverHost(server), host.disk.unsyncedCount > 0,
            cluster.majorityStaysUp(without: server), strikes(.crashAfterReply)
        else { return }
        counters.count(.targetedCrashAfterReply)
        trace.line(
            agenda.trueNow,
            "\(server.short) TARGETED: crashes right after a reply, \(host.disk.unsyncedCount) transactions unsynced")
        crashAtEndOfEvent(server)
    }

    private func claimPhase(_ coordinator: NodeID, _ message: Message) -> MessageVerdict {
        if let last = lastClaimPhaseEvent, last.0 == coordinator, last.1 == agenda.trueNow { return .send }
        lastClaimPhaseEvent = (coordinator, agenda.trueNow)
        guard strikes(.claimPhase) else { return .send }
        counters.count(.targetedClaimPhase)
        let canCrash = cluster.majorityStaysUp(without: coordinator)
        switch canCrash ? random.int(in: 0...2) : 2 {
        case 0:
            trace.line(agenda.trueNow, "\(coordinator.short) TARGETED: crashes as it sends \(message.kindName)")
            crashAtEndOfEvent(coordinator)
            return .send
        case 1:
            trace.line(agenda.trueNow, "\(coordinator.short) TARGETED: crashes before \(message.kindName) leaves")
            crashAtEndOfEvent(coordinator)
            return .drop
        default:
            let length = random.int(in: Int64(50_000_000)...2_000_000_000)
            trace.line(
                agenda.trueNow,
                "\(coordinator.short) TARGETED: cut off for \(Duration.nanoseconds(length).formattedMilliseconds) "
                    + "as it sends \(message.kindName)")
            network.isolate(coordinator, until: agenda.trueNow + length)
            return .drop
        }
    }

    private func completion(_ message: Message, _ client: NodeID) -> MessageVerdict {
        guard strikes(.completionLoss) else { return .send }
        counters.count(.targetedCompletionLoss)
        if random.chance(0.5) {
            trace.line(agenda.trueNow, "TARGETED: completion to \(client.short) dropped: \(message)")
            return .drop
        }
        let delay = random.int(in: Int64(1_000_000)...1_000_000_000)
        trace.line(
            agenda.trueNow,
            "TARGETED: completion to \(client.short) held \(Duration.nanoseconds(delay).formattedMilliseconds)")
        return .delay(nanoseconds: delay)
    }

    private func crashAtEndOfEvent(_ server: NodeID) {
        guard dying.insert(server).inserted else { return }
        agenda.schedule(at: agenda.trueNow, .fault(.targetedCrash(server)))
    }

    /// An opportunity strikes with the profile's probability, at most once per gap per point.
    private func strikes(_ point: Point) -> Bool {
        let last = lastStrike[point.rawValue]
        guard last == Int64.min || agenda.trueNow - last >= profile.strikeGapMin.nanoseconds,
            random.chance(profile.strikeProbability)
        else { return false }
        lastStrike[point.rawValue] = agenda.trueNow
        return true
    }
}

extension Message {
    /// A claim coordinator's request that opens a phase after NewWriter ([CLAIM-2] to [CLAIM-5]).
    var startsClaimPhase: Bool {
        switch self {
        case .tailEntries, .restampEntries: true
        case .putEntryInternal(_, let kind, _, _, _): kind == .claimAlign || kind == .claimCommit
        default: false
        }
    }

    /// The coordinator's answer that ends a claim or acknowledges a put.
    var completesClaimOrPut: Bool {
        switch self {
        case .response(_, .claimed), .response(_, .putAcknowledged): true
        default: false
        }
    }
}
