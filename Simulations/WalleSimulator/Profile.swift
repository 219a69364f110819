import WalleCore
import WalleEnvironment

public struct NetworkProfile: Sendable {
    public var latencyMin: Duration
    public var latencyMax: Duration
    public var jitterMax: Duration
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

    /// Draws a profile from the seed (its own fork, so workload draws do not move it).
    public static func draw(seed: UInt64, duration: Duration) -> Profile {
        var random = SimRandom.fork(seed: seed, "profile")
        let servers = random.chance(0.5) ? 3 : 5
        let clients = 8
        return Profile(
            serverCount: servers,
            streamCount: random.int(in: 1...4),
            writersPerStream: random.int(in: 2...3),
            readerCount: random.int(in: 1...2),
            leaseMin: .milliseconds(random.int(in: 100...400)),
            leaseMax: .milliseconds(random.int(in: 500...2000)),
            clockRates: (0..<(servers + clients)).map { _ in random.double(in: 0.75...1.25) },
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
            duration: duration)
    }

    public var description: String {
        let rates = clockRates.prefix(serverCount).map { String(Int(($0 * 100).rounded())) + "%" }
        return "servers=\(serverCount) streams=\(streamCount) writers/stream=\(writersPerStream) "
            + "readers=\(readerCount) lease=\(leaseMin.milliseconds)-\(leaseMax.milliseconds)ms "
            + "server-clock-rates=[\(rates.joined(separator: ","))] "
            + "net=\(network.latencyMin.milliseconds)-\(network.latencyMax.milliseconds)ms+jitter\(network.jitterMax.milliseconds)ms "
            + "sync=\(disk.syncLatencyMin.nanoseconds / 1000)-\(disk.syncLatencyMax.nanoseconds / 1000)us "
            + "duration=\(duration.milliseconds / 1000)s"
    }
}

/// Options a user passes to one run.
public struct RunOptions: Sendable {
    public var duration: Duration = .seconds(30)
    /// Print every event as it happens (replay).
    public var printTrace = false
    /// Deliberate bugs to plant (debug builds only; see `PlantedBug`).
    package var plantedBugs: Set<PlantedBug> = []

    public init() {}

    /// Planted bugs by name, for the command line and tests. Unknown names are an error.
    public mutating func plant(_ names: [String]) throws(WalleError) {
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
