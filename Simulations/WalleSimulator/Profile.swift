import WalleCore
import WalleEnvironment

public struct NetworkProfile: Sendable {
    public var latencyMin: Duration
    public var latencyMax: Duration
    public var jitterMax: Duration
}

/// Adversarial clients of one seed (swarm-drawn; zero in some seeds).
public struct HostileProfile: Sendable, CustomStringConvertible {
    public var clients: Int
    /// Each hostile client acts again after a gap drawn up to this.
    public var actionGapMax: Duration

    static let none = HostileProfile(clients: 0, actionGapMax: .zero)

    /// From its own fork, so the rest of the profile is drawn as before.
    static func draw(seed: UInt64) -> HostileProfile {
        var random = SimRandom.fork(seed: seed, "hostile-profile")
        guard !random.chance(0.25) else { return .none }
        return HostileProfile(clients: random.int(in: 1...2), actionGapMax: .milliseconds(random.int(in: 5...300)))
    }

    public var description: String {
        clients == 0 ? "none" : "\(clients) clients, one request per <=\(actionGapMax.milliseconds)ms each"
    }
}

public struct DiskProfile: Sendable {
    public var syncLatencyMin: Duration
    public var syncLatencyMax: Duration
    public var readLatencyMin: Duration
    public var readLatencyMax: Duration
}

/// Everything a seed decides about a run before it starts: the cluster, the workload and the
/// environment. Printed at the start of every run.
public struct Profile: Sendable, CustomStringConvertible {
    public var serverCount: Int
    public var streamCount: Int
    public var writersPerStream: Int
    public var readerCount: Int
    public var leaseMin: Duration
    public var leaseMax: Duration
    public var clockRates: [Double]
    public var rateChangeProbability: Double
    public var network: NetworkProfile
    public var disk: DiskProfile
    public var duration: Duration
    public var faults: FaultProfile
    public var hostile: HostileProfile
    /// Targeted fault points (`TargetedFaults`); none when faults or targeted faults are off.
    public var targeted: TargetedProfile
    public var limits: LimitsProfile
    public var load: LoadProfile
    public var beyondModel: Bool
    /// How often the workload trims a stream (`Trimmer`); none in half the seeds.
    public var trimsPerMinute: Double = 0
    /// Ids a server deletes per step of a trim (`ServerConfiguration.trimStepEntriesMax`).
    public var trimStepEntriesMax: UInt64 = 4096

    /// Draws a profile from the seed (its own fork, so workload draws do not move it).
    public static func draw(seed: UInt64, options: RunOptions) -> Profile {
        var random = SimRandom.fork(seed: seed, "profile")
        var faultRandom = SimRandom.fork(seed: seed, "faults")
        // Beyond the model, clocks may run from half to 1.6 times true time.
        let rates: ClosedRange<Double> = options.beyondModel ? 0.5...1.6 : 0.75...1.25
        let servers = random.chance(0.5) ? 3 : 5
        let clients = 8
        let load = options.drawnLimits && options.highLoad ? LoadProfile.draw(seed: seed) : .usual
        let streams = random.int(in: 1...4)
        let writers = random.int(in: 2...3)
        let trims = Self.trims(seed: seed)
        return Profile(
            serverCount: servers,
            streamCount: load.streamCount ?? streams,
            writersPerStream: load.writersPerStream ?? writers,
            readerCount: random.int(in: 1...2),
            leaseMin: .milliseconds(random.int(in: 100...400)),
            leaseMax: .milliseconds(random.int(in: 500...2000)),
            clockRates: (0..<(servers + clients)).map { _ in random.double(in: rates) },
            rateChangeProbability: random.double(in: 0...0.2),
            network: NetworkProfile(
                latencyMin: .microseconds(random.int(in: 20...200)),
                latencyMax: .microseconds(random.int(in: 300...3000)),
                jitterMax: .microseconds(random.int(in: 0...5000))),
            disk: DiskProfile(
                syncLatencyMin: .microseconds(random.int(in: 30...100)),
                syncLatencyMax: .microseconds(random.int(in: 200...3000)),
                readLatencyMin: .microseconds(10),
                readLatencyMax: .microseconds(random.int(in: 50...500))),
            duration: longRunDuration(seed: seed, options: options, load: load) ?? options.duration,
            faults: options.faults ? FaultProfile.draw(&faultRandom, replicaMoves: options.replicaMoves) : .none,
            hostile: options.faults && options.hostileClients ? HostileProfile.draw(seed: seed) : .none,
            targeted: Self.targeted(seed: seed, options: options),
            limits: options.drawnLimits
                ? LimitsProfile.draw(seed: seed, load: load).keepingBase(options.baseLimitNames) : .base,
            load: load,
            beyondModel: options.beyondModel,
            trimsPerMinute: trims.perMinute, trimStepEntriesMax: trims.stepEntriesMax)
    }

    private static func targeted(seed: UInt64, options: RunOptions) -> TargetedProfile {
        guard options.faults && options.targetedFaults else { return .none }
        let drawn = TargetedProfile.draw(seed: seed)
        return options.allTargetedFaults ? drawn.allOn : drawn
    }

    /// Its own fork, so the rest of the profile is drawn as before trims existed.
    private static func trims(seed: UInt64) -> (perMinute: Double, stepEntriesMax: UInt64) {
        var random = SimRandom.fork(seed: seed, "trim-rate")
        let perMinute = random.chance(0.5) ? 0 : random.double(in: 1...6)
        return (perMinute, UInt64(random.int(in: 4...256)))
    }

    public var clockRateRange: ClosedRange<Double> { beyondModel ? 0.5...1.6 : 0.75...1.25 }

    /// One seed in a hundred of those with the usual load runs 120 to 600 s (its own fork: the
    /// rest of the profile is drawn as before). High-load seeds stay short: they already cost
    /// ten times a usual one per simulated second.
    public static let longRunShare = 0.01
    public static let longRunSeconds = 120...600

    private static func longRunDuration(seed: UInt64, options: RunOptions, load: LoadProfile) -> Duration? {
        guard options.longRuns, !load.isHigh else { return nil }
        var random = SimRandom.fork(seed: seed, "long-run")
        guard random.chance(longRunShare) else { return nil }
        return .seconds(random.int(in: longRunSeconds))
    }

    public var description: String {
        let rates = clockRates.prefix(serverCount).map { String(Int(($0 * 100).rounded())) + "%" }
        return "servers=\(serverCount) streams=\(streamCount) writers/stream=\(writersPerStream) "
            + "readers=\(readerCount) lease=\(leaseMin.milliseconds)-\(leaseMax.milliseconds)ms "
            + "server-clock-rates=[\(rates.joined(separator: ","))] "
            + "net=\(network.latencyMin.nanoseconds / 1000)-\(network.latencyMax.nanoseconds / 1000)us"
            + "+jitter\(network.jitterMax.nanoseconds / 1000)us "
            + "sync=\(disk.syncLatencyMin.nanoseconds / 1000)-\(disk.syncLatencyMax.nanoseconds / 1000)us "
            + "duration=\(duration.milliseconds / 1000)s\(beyondModel ? " BEYOND-MODEL" : "")\n"
            + "faults: \(faults)\n"
            + "hostile: \(hostile)\n"
            + "targeted: \(targeted)\n"
            + "limits: \(limits)\n"
            + "load: \(load)\n"
            + "trims: \(Int((trimsPerMinute * 10).rounded()))/10min, \(trimStepEntriesMax) ids per delete step"
    }
}

/// Options a user passes to one run.
public struct RunOptions: Sendable {
    /// Simulated length of the fault phase (a long run draws its own, see `longRuns`).
    public var duration: Duration = .seconds(30)
    /// Let the swarm give one seed in a hundred a long fault phase, 120 to 600 s, instead of
    /// `duration`: claims, backfills and queues must keep working however long a cluster has
    /// run. Off here (the debug-built test suite cannot afford them); `walle-sim` turns it on
    /// unless `--duration` or `--no-long-runs` is given.
    public var longRuns = false
    /// Inject faults (partitions, loss, crashes, stalls, clock steps) during the fault phase.
    public var faults = true
    /// Let clock rates leave [0.75, 1.25]: write safety must still hold; lease overlaps are
    /// then expected and reported, not failures.
    public var beyondModel = false
    /// Mix adversarial clients into the traffic (malformed, out-of-range, forged, stale and
    /// replayed requests) during the fault phase, as the swarm draws them.
    public var hostileClients = true
    /// Let the swarm turn on targeted fault points (`TargetedProfile`): crashes right after a
    /// reply, around claim phases, lost completions, stalled group commits, server pauses.
    public var targetedFaults = true
    /// Turn every targeted point on in every seed, not as the swarm draws them.
    public var allTargetedFaults = false
    /// Let the server-side oracles fail a run; off (`--no-server-oracles`), only the
    /// client-history checker can (to show what it catches on its own).
    public var serverOracles = true
    /// Move replicas between live servers (add one, remove another, which may be alive and
    /// lagging: the setting of WS-2 and WS-3).
    public var replicaMoves = true
    /// Let the swarm draw the servers' limits and the load (`LimitsProfile`, `LoadProfile`);
    /// off, every seed runs the base limits and the usual load.
    public var drawnLimits = true
    /// Let the swarm give some seeds the high load (`LoadProfile`); off, every seed runs the
    /// usual load (the debug-built test suite, where a high-load seed costs half a minute).
    public var highLoad = true
    /// Limits that keep their base value whatever the seed draws (`LimitsProfile.names`).
    public var baseLimitNames: Set<String> = []
    /// Replace one server (wipe it, start a new one) at this simulated time, whatever the
    /// profile says: the node-replacement scenario.
    public var replaceServerAt: Duration?
    /// After the heal, the cluster must converge within this much simulated time.
    public var livenessTimeout: Duration = .seconds(60)
    /// Print every event as it happens (replay).
    public var printTrace = false
    /// Deliberate bugs to plant (debug builds only; see `PlantedBug`).
    package var plantedBugs: Set<PlantedBug> = []

    public init() {}

    /// Planted bugs by name, for the command line and tests. Unknown names are an error.
    public mutating func plant(_ names: [String]) throws(WalleError) {
        #if !DEBUG
            if !names.isEmpty {
                throw WalleError(.invalidArgument, "planted bugs exist only in debug builds (swift run walle-sim ...)")
            }
        #endif
        for name in names {
            guard let bug = PlantedBug(rawValue: name) else {
                let known = PlantedBug.allCases.map(\.rawValue).joined(separator: ", ")
                throw WalleError(.invalidArgument, "unknown planted bug \"\(name)\"; known: \(known)")
            }
            plantedBugs.insert(bug)
        }
    }

    public static var plantedBugNames: [String] { PlantedBug.allCases.map(\.rawValue) }
}
