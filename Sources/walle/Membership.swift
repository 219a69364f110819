import ArgumentParser
import WalleClient
import WalleCore
import WalleEnvironment

/// `walle streams`: every stream of the topology, as the manager holds it.
struct Streams: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the streams of the topology: members, stream version, topology version.")
    @OptionGroup var cluster: ClusterOptions

    func run() async throws {
        try await withClient(cluster) { client in
            let topology = try await client.topologyRequest(.fetch)
            printLine("topology v\(topology.version)")
            for (uri, stream) in topology.streams.sorted(by: { $0.key < $1.key }) {
                printLine(memberLine(uri, stream, first: topology.firstEntryID(of: uri)))
            }
        }
    }
}

/// `walle servers`: every server the topology knows, with its address and the streams it is a
/// member of. A member that never registered shows `-` for its address.
struct Servers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the servers of the topology: id, registered address, streams it is a member of.")
    @OptionGroup var cluster: ClusterOptions

    func run() async throws {
        try await withClient(cluster) { client in
            let topology = try await client.topologyRequest(.fetch)
            printLine("topology v\(topology.version)")
            var streamsOf: [NodeID: [StreamURI]] = [:]
            for (uri, stream) in topology.streams {
                for member in stream.members { streamsOf[member, default: []].append(uri) }
            }
            for id in Set(streamsOf.keys).union(topology.servers.keys).sorted() {
                let address = topology.servers[id].map(\.description) ?? "-"
                let streams = (streamsOf[id] ?? []).sorted().map(\.rawValue).joined(separator: " ")
                printLine("\(id.rawValue) \(address) \(streams)")
            }
        }
    }
}

/// `walle members URI [--add ID | --remove ID]`: one member at a time, through the manager.
struct Members: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a stream's members, or add or remove one (the manager waits as the rules require).")
    @OptionGroup var cluster: ClusterOptions
    @Argument(help: "The stream URI.") var uri: String
    @Option(help: "A server id to add.") var add: UInt64?
    @Option(help: "A server id to remove.") var remove: UInt64?

    func validate() throws {
        guard add == nil || remove == nil else {
            throw ValidationError("give --add or --remove, not both: members change one at a time")
        }
    }

    func run() async throws {
        let uri = try parseURI(uri)
        let request: TopologyRequest =
            if let add { .addMember(uri, NodeID(add)) } else if let remove { .removeMember(uri, NodeID(remove)) }
            else { .fetch }
        try await withClient(cluster) { client in
            let topology = try await client.topologyRequest(request)
            guard let stream = topology.streams[uri] else {
                throw WalleError(.notFound, "\(uri) is not in topology v\(topology.version)")
            }
            printLine(memberLine(uri, stream, first: topology.firstEntryID(of: uri)))
        }
    }
}

/// `walle replace URI OLD NEW`: add the new server, then remove the old one. The manager makes
/// the removal only once the remaining members hold what was acknowledged; the new member
/// joins at the tail and backfills in the background.
struct Replace: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replace one member of a stream: add NEW, wait as the rules require, remove OLD.")
    @OptionGroup var cluster: ClusterOptions
    @Argument(help: "The stream URI.") var uri: String
    @Argument(help: "The server id to replace.") var old: UInt64
    @Argument(help: "The server id that takes its place.") var new: UInt64

    func validate() throws {
        guard old != new else { throw ValidationError("OLD and NEW are both \(old): nothing to replace") }
    }

    func run() async throws {
        let uri = try parseURI(uri)
        try await withClient(cluster) { client in
            let added = try await client.topologyRequest(.addMember(uri, NodeID(new)), patience: .seconds(120))
            printLine("added \(new): \(uri) members \(added.streams[uri]?.members.map(\.rawValue) ?? [])")
            let removed = try await client.topologyRequest(.removeMember(uri, NodeID(old)), patience: .seconds(120))
            printLine("removed \(old): \(uri) members \(removed.streams[uri]?.members.map(\.rawValue) ?? [])")
        }
    }
}

/// `walle trim URI ENTRY`: ENTRY becomes the stream's first entry. The manager refuses an entry
/// past the committed id (OutOfRange); a first entry never moves down, so trimming below the
/// current one is answered at once with nothing changed.
struct Trim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make ENTRY the stream's first entry: members delete what lies below it.")
    @OptionGroup var cluster: ClusterOptions
    @Argument(help: "The stream URI.") var uri: String
    @Argument(help: "The new first entry: a committed entry id.") var entry: UInt64

    func run() async throws {
        let uri = try parseURI(uri)
        try await withClient(cluster) { client in
            let topology = try await client.topologyRequest(.trim(uri, firstEntryID: entry), patience: .seconds(60))
            guard let stream = topology.streams[uri] else {
                throw WalleError(.notFound, "\(uri) is not in topology v\(topology.version)")
            }
            printLine(memberLine(uri, stream, first: topology.firstEntryID(of: uri)))
        }
    }
}

/// "/orders v3 members [1, 2, 3] first 0": the line `streams`, `members` and `trim` print for
/// a stream (first 0: never trimmed).
func memberLine(_ uri: StreamURI, _ stream: StreamTopology, first: EntryID) -> String {
    "\(uri) v\(stream.version) members \(stream.members.map(\.rawValue)) first \(first)"
}
