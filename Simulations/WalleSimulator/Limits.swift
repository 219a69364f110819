import WalleCore
import WalleEnvironment

/// The server limits of one seed (swarm-drawn). A third of the seeds keep the values every
/// seed used to run with; the others draw each limit, half the time from a range that reaches
/// down to tiny values (log-uniform, so small values are as likely as large ones), so the
/// resource-exhausted and timeout paths run in every sweep. What must hold there: every such
/// refusal is a retryable typed error, nothing acknowledged is lost, the cluster converges.
///
/// The lower ends are the smallest values under which progress is still possible, each with
/// its reason next to it; below them a refusal would be permanent, not a limit.
public struct LimitsProfile: Sendable, CustomStringConvertible {
    /// Each limit as drawn, by its `ServerConfiguration` name; empty: the base values.
    public private(set) var drawn: [(name: String, value: Int64)] = []

    static let base = LimitsProfile()

    /// Integer limits: name, smallest, largest (the base value), and where it goes.
    nonisolated(unsafe) private static let counts:
        [(String, Int64, Int64, WritableKeyPath<ServerConfiguration, Int>)] = [
        // At once, one coordinator may need per stream (4 at most) a put (3 calls), a
        // fast-forward (2 to 4) and a backfill (1), plus a claim (up to 5) and a status (up
        // to 5): about 45. Below 64 the workload's own puts keep the table full and a
        // topology change starves (seed 141 with 29).
        ("callsInFlightMax", 64, 65_536, \.callsInFlightMax),
        ("queuedPutsMax", 1, 4096, \.queuedPutsMax),
        ("queuedPutRoutesMax", 1, 4, \.queuedPutRoutesMax),
        // Every server long-polls every root member for the topology: with one slot a reader's
        // poll could keep a server from ever learning a move.
        ("pollWaitersMax", 2, 4096, \.pollWaitersMax),
        // Entries are at most 300 bytes; at least one must fit.
        ("uncommittedBytesMax", 1024, 64 << 20, \.uncommittedBytesMax),
        // A backfill step proves its answer's entries but the lowest (and its top is known), and
        // a member that joins a stream backfills all of it (there is no trimming yet): with
        // answers of three entries, one per round, a 300-second seed's new member needed over
        // 70 s for 15,844 entries (seed 1). At least 16 entries per answer (of at most 300
        // bytes each), as the base allows 16 of the largest entries (16 MiB, 1 MiB).
        ("readBatchCountMax", 16, 512, \.readBatchCountMax),
        ("readBatchBytesMax", 16 * 300, 16 << 20, \.readBatchBytesMax),
        ("backfillBatchCountMax", 16, 512, \.backfillBatchCountMax),
        ("newWriterWaitsMax", 1, 4096, \.newWriterWaitsMax),
        // The answers of one sync at the highest simulated load (about 50k puts/s, 3 ms syncs)
        // are 150: below 256, refusing them is the normal state and a slow stream starves.
        ("syncWaitersMax", 256, 65_536, \.syncWaitersMax),
        ("diskReadsMax", 1, 256, \.diskReadsMax),
    ]

    /// Durations in milliseconds: name, smallest, largest, where it goes.
    nonisolated(unsafe) private static let durations:
        [(String, Int64, Int64, WritableKeyPath<ServerConfiguration, Duration>)] = [
        // Above a round trip with jitter and a sync (at most about 11 ms after the heal).
        ("callTimeout", 50, 5000, \.callTimeout),
        ("catchUpCallTimeout", 50, 1000, \.catchUpCallTimeout),
        ("queuedPutTimeout", 100, 3000, \.queuedPutTimeout),
        ("newWriterRetryInterval", 100, 1000, \.newWriterRetryInterval),
    ]

    /// Limits that cap how fast a stream can move: its window, its queue, a coordinator's
    /// calls, a member's catch-up. Under the high load a tiny one leaves a backlog of
    /// thousands of puts that takes minutes to drain (seed 26: 3,476 pending behind a
    /// 1,650-byte window), a capacity question rather than a protocol one, so high-load
    /// seeds keep these at their base values and reach the queues by volume instead.
    static let throughputLimits: Set<String> = [
        "callsInFlightMax", "readBatchCountMax", "readBatchBytesMax", "backfillBatchCountMax",
        "uncommittedEntriesMax", "uncommittedBytesMax", "queuedPutsMax",
    ]

    /// Every limit a seed may draw, for `--base-limit` and the docs.
    public static var names: [String] { ["uncommittedEntriesMax"] + counts.map(\.0) + durations.map(\.0) }

    /// The drawn limits but those named, which keep their base values: to find which limit
    /// a failing seed needs (`walle-sim run --seed N --base-limit callsInFlightMax`).
    func keepingBase(_ names: Set<String>) -> LimitsProfile {
        var profile = self
        profile.drawn.removeAll { names.contains($0.name) }
        return profile
    }

    /// From its own fork, so the rest of the profile is drawn as before.
    static func draw(seed: UInt64, load: LoadProfile) -> LimitsProfile {
        var random = SimRandom.fork(seed: seed, "limits-profile")
        guard !random.chance(1.0 / 3) else { return .base }
        var profile = LimitsProfile()
        // [LOG-2] refuses a put once T − C reaches this; 2 leaves room for one put beyond the
        // committed entry, whose marker the next put carries.
        if random.chance(0.5) {
            let value = logUniform(&random, 2...4096)
            if !load.isHigh { profile.drawn.append(("uncommittedEntriesMax", value)) }
        }
        for (name, low, high, _) in counts where random.chance(0.5) {
            let value = logUniform(&random, low...high)
            guard !load.isHigh || !throughputLimits.contains(name) else { continue }
            profile.drawn.append((name, value))
        }
        for (name, low, high, _) in durations where random.chance(0.5) {
            profile.drawn.append((name, logUniform(&random, low...high)))
        }
        return profile
    }

    /// Log-uniform in integers: a power-of-two octave uniformly, then a value in it (no
    /// floating-point library, so every machine draws the same).
    private static func logUniform(_ random: inout SimRandom, _ range: ClosedRange<Int64>) -> Int64 {
        let lowOctave = 63 - range.lowerBound.leadingZeroBitCount
        let highOctave = 63 - range.upperBound.leadingZeroBitCount
        let octave = random.int(in: lowOctave...highOctave)
        let start = max(range.lowerBound, Int64(1) << octave)
        let end = min(range.upperBound, (Int64(1) << (octave + 1)) - 1)
        return random.int(in: start...max(start, end))
    }

    func apply(to configuration: inout ServerConfiguration) {
        for (name, value) in drawn {
            if name == "uncommittedEntriesMax" {
                configuration.uncommittedEntriesMax = UInt64(value)
            } else if let count = Self.counts.first(where: { $0.0 == name }) {
                configuration[keyPath: count.3] = Int(value)
            } else if let duration = Self.durations.first(where: { $0.0 == name }) {
                configuration[keyPath: duration.3] = .milliseconds(value)
            }
        }
    }

    public var description: String {
        guard !drawn.isEmpty else { return "base" }
        return drawn.map { name, value in
            Self.durations.contains { $0.0 == name } ? "\(name)=\(value)ms" : "\(name)=\(value)"
        }.joined(separator: " ")
    }
}

/// How hard the writers push (swarm-drawn): most seeds run the usual bursts; 10% run a
/// high load of many writers with deep pipelines, which is what fills queues and windows.
public struct LoadProfile: Sendable, CustomStringConvertible {
    public var isHigh: Bool
    /// Puts per burst at most, and the longest gap between a writer's bursts.
    public var burstMax: Int
    public var burstGapMax: Duration
    /// Puts a simulated application keeps pending at most.
    public var pendingMax: Int
    /// The writers' `putsInFlightMax` (pipeline depth).
    public var putsInFlightMax: Int
    /// Overrides of the profile's streams and writers per stream.
    public var streamCount: Int?
    public var writersPerStream: Int?

    static let usual = LoadProfile(
        isHigh: false, burstMax: 24, burstGapMax: .milliseconds(200), pendingMax: 512, putsInFlightMax: 128)

    static func draw(seed: UInt64) -> LoadProfile {
        var random = SimRandom.fork(seed: seed, "load-profile")
        guard random.chance(0.1) else { return .usual }
        // About five times the usual offered load: enough to fill pipelines and queues, while
        // a seed still runs in a few seconds of wall time (twice that cost 30 s for seed 1384).
        return LoadProfile(
            isHigh: true, burstMax: random.int(in: 16...64), burstGapMax: .milliseconds(random.int(in: 10...50)),
            pendingMax: random.int(in: 1024...4096), putsInFlightMax: random.int(in: 128...512),
            streamCount: random.int(in: 2...4), writersPerStream: random.int(in: 3...5))
    }

    public var description: String {
        guard isHigh else { return "usual" }
        return "HIGH bursts<=\(burstMax) every<=\(burstGapMax.milliseconds)ms pending<=\(pendingMax) "
            + "in-flight<=\(putsInFlightMax)"
    }
}
