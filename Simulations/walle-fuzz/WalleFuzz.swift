import ArgumentParser
import Foundation
import WalleEnvironment
import WalleFuzz
import WalleTransport

/// `walle-fuzz`: hostile input for the core in process, and for real nodes over TCP
/// (docs/simulation.md, "Fuzzing").
@main
struct WalleFuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "walle-fuzz",
        abstract: "Fuzz a Walle server core in process, or a running cluster over TCP.",
        subcommands: [Core.self, Cluster.self])
}

struct Core: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Feed one server core fuzzed messages of every type in process; a trap prints the frame.")

    @Option(help: "The seed: the same seed sends the same messages.") var seed: UInt64 = 1
    @Option(help: "How many messages.") var messages: Int = 1_000_000
    @Option(name: .customLong("plant"), help: "Plant a known bug (debug builds), to see the fuzzer find it.")
    var plantedBugs: [String] = []

    func run() throws {
        guard messages > 0 else { throw ValidationError("--messages must be positive") }
        #if !DEBUG
            guard plantedBugs.isEmpty else { throw ValidationError("planted bugs exist only in debug builds") }
        #endif
        CrashReport.install(seed: seed)
        let harness = CoreHarness(seed: seed, plantedBugs: plantedBugs)
        let start = Date()
        var done = 0
        while done < messages {
            let step = min(100_000, messages - done)
            harness.run(count: step) { message, source in
                done += 1
                CrashReport.record(message, from: source, index: done)
            }
            FileHandle.standardError.write(Data("\(done)/\(messages) messages\n".utf8))
        }
        let seconds = Date().timeIntervalSince(start)
        print("seed \(seed): \(harness.messages) messages, \(harness.refusals) refused with a typed error, "
            + "\(harness.restarts) restarts, no trap; \(Int(Double(harness.messages) / seconds)) messages/s")
        print("reached: \(harness.depth)")
    }
}

struct Cluster: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send fuzzed frames to running nodes; fails when a node stops answering.")

    @Option(help: "The nodes: ID=IPV4:PORT,... (numeric IPv4 addresses; as for walle --cluster).") var cluster: String
    @Option(help: "How many frames in all.") var frames: Int = 100_000
    @Option(help: "The seed.") var seed: UInt64 = 1
    @Option(help: "Say hello as a client or as one of the cluster's servers.") var identity: String = "client"
    @Option(help: "Streams to aim at (the root stream is always one).") var stream: [String] = []

    func run() throws {
        guard let who = ClusterFuzzer.Identity(rawValue: identity) else {
            throw ValidationError("--identity is client or server, not \(identity)")
        }
        let servers = try ServerList.parse(cluster)
        let nodes = servers.keys.sorted().map { id -> (id: NodeID, host: String, port: Int) in
            let address = servers[id]!
            return (id, address.host, address.port)
        }
        let streams = try [StreamURI("/cluster/root")] + stream.map { try StreamURI($0) }
        var fuzzer = ClusterFuzzer(nodes: nodes, streams: streams, identity: who, seed: seed)
        try fuzzer.run(frames: frames) { sent in
            FileHandle.standardError.write(Data("\(sent)/\(frames) frames, every node answers\n".utf8))
        }
        print(
            "sent \(fuzzer.sent) frames as a \(identity) to \(nodes.count) nodes (\(fuzzer.reconnects) reconnects); "
                + "every node still answers")
    }
}
