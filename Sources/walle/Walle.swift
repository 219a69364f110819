import ArgumentParser
import Foundation
import Logging
import NIOCore
import WalleClient
import WalleCore
import WalleEnvironment

/// `walle`: the command line for a Walle cluster (docs/operating.md, "The walle command").
@main
struct Walle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "walle",
        abstract: "Talk to a Walle cluster: streams, writes, reads, status and load.",
        discussion: """
            Every command takes --cluster ID=HOST:PORT,... (or the WALLE_CLUSTER environment
            variable). Exit codes: 0 success, 1 the cluster refused or failed the request,
            64 bad arguments.
            """,
        subcommands: [
            CreateStream.self, Streams.self, Servers.self, Members.self, Replace.self, Trim.self, Claim.self, Put.self,
            Hold.self, Read.self, Tail.self,
            Poll.self, WriterCommand.self, Status.self, Bench.self,
        ])
}

struct ClusterOptions: ParsableArguments {
    @Option(help: "Every server: ID=HOST:PORT,ID=HOST:PORT,... (default: $WALLE_CLUSTER).")
    var cluster: String?

    func connect() throws -> ClusterClient {
        guard let text = cluster ?? ProcessInfo.processInfo.environment["WALLE_CLUSTER"] else {
            throw ValidationError("give --cluster ID=HOST:PORT,... or set WALLE_CLUSTER")
        }
        do {
            return try ClusterClient(serverList: text)
        } catch {
            throw ValidationError("\(error)")
        }
    }
}

/// Runs `body` with a client, closes it, and turns a cluster error into exit code 1.
func withClient(_ options: ClusterOptions, _ body: (ClusterClient) async throws -> Void) async throws {
    let client = try options.connect()
    do {
        try await body(client)
        await client.close()
    } catch let error as WalleError {
        await client.close()
        FileHandle.standardError.write(Data("walle: \(error)\n".utf8))
        throw ExitCode(1)
    } catch {
        await client.close()
        throw error
    }
}

func parseURI(_ text: String) throws -> StreamURI {
    do { return try StreamURI(text) } catch { throw ValidationError("\(error)") }
}

/// One line to standard output at once (unbuffered: tests and pipes read it as it comes).
func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

struct CreateStream: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-stream", abstract: "Add a stream to the topology.")
    @OptionGroup var cluster: ClusterOptions
    @Argument(help: "The stream URI, e.g. /orders/eu") var uri: String
    @Option(help: "Member server ids, comma-separated (default: every server).") var members: String?

    func run() async throws {
        let uri = try parseURI(uri)
        try await withClient(cluster) { client in
            var ids = client.serverIDs
            if let members {
                ids = try members.split(separator: ",").map { item in
                    guard let id = UInt64(item) else { throw ValidationError("member \"\(item)\" is not a server id") }
                    return NodeID(id)
                }
            }
            try await client.createStream(uri, members: ids)
            printLine("created \(uri) on \(ids.map(\.rawValue))")
        }
    }
}

struct Claim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Become the stream's writer (fencing the previous one) and print the tail.")
    @OptionGroup var cluster: ClusterOptions
    @Argument var uri: String
    @Option(help: "Lease in milliseconds.") var lease: Int = 2000
    @OptionGroup var politeness: Politeness

    func run() async throws {
        let uri = try parseURI(uri)
        try await withClient(cluster) { client in
            let (writer, id, tail) = try await claimWriter(client, uri, leaseMilliseconds: lease, politeness)
            printLine("writer \(id) tail \(tail.id)")
            await writer.close()
        }
    }
}

/// `--wait SECONDS`: claim only once the current writer's lease ran out (WaitAndClaim).
struct Politeness: ParsableArguments {
    @Option(
        help: """
            Do not fence a live writer: wait up to SECONDS for the current writer's lease to run \
            out, then claim (fails if the writer is still alive then).
            """)
    var wait: Int?

    func validate() throws {
        if let wait, !(1...86_400).contains(wait) { throw ValidationError("--wait is 1 to 86400 seconds, not \(wait)") }
    }
}

/// A writer for `uri` that has claimed it: its id and the committed tail it starts from.
func claimWriter(
    _ client: ClusterClient, _ uri: StreamURI, leaseMilliseconds: Int, _ politeness: Politeness
) async throws -> (StreamWriter, WriterID, Entry) {
    let writer = try await client.writer(for: uri, lease: .milliseconds(leaseMilliseconds))
    do {
        if let wait = politeness.wait {
            let (id, tail) = try await writer.waitAndClaim(patience: .seconds(wait))
            return (writer, id, tail)
        }
        let (id, tail) = try await writer.claim()
        return (writer, id, tail)
    } catch {
        await writer.close()
        throw error
    }
}

struct Put: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Claim the stream and append entries: the arguments, or each line of stdin.",
        discussion: """
            Prints `acked ID` for each committed entry as it commits. With --no-claim --socket \
            PATH it claims nothing and appends through the writer a `walle hold` keeps there.
            """)
    @OptionGroup var cluster: ClusterOptions
    @Argument var uri: String
    @Argument(help: "Entries to append; none: read lines from stdin.") var entries: [String] = []
    @Option(help: "Lease in milliseconds.") var lease: Int = 2000
    @OptionGroup var politeness: Politeness
    @Flag(help: "Do not claim: append through the writer a `walle hold` keeps at --socket.") var noClaim = false
    @Option(help: "With --no-claim: the Unix socket of `walle hold`.") var socket: String?

    func validate() throws {
        if noClaim != (socket != nil) { throw ValidationError("--no-claim and --socket go together") }
        if noClaim && politeness.wait != nil { throw ValidationError("--wait is for a claim; --no-claim makes none") }
    }

    func run() async throws {
        let uri = try parseURI(uri)
        let lines: AnySequence<String> = entries.isEmpty
            ? AnySequence(AnyIterator { readLine(strippingNewline: true) }) : AnySequence(entries)
        if let socket {
            do {
                try putThroughHolder(uri, socket: socket, lines: lines)
            } catch let error as WalleError {
                FileHandle.standardError.write(Data("walle: \(error)\n".utf8))
                throw ExitCode(1)
            }
            return
        }
        try await withClient(cluster) { client in
            let (writer, id, tail) = try await claimWriter(client, uri, leaseMilliseconds: lease, politeness)
            FileHandle.standardError.write(Data("writer \(id) from tail \(tail.id)\n".utf8))
            var futures: [EventLoopFuture<Entry>] = []
            for line in lines {
                let future = writer.submit(Array(line.utf8))
                future.whenSuccess { entry in printLine("acked \(entry.id)") }
                futures.append(future)
            }
            do {
                for future in futures { _ = try await future.get() }
                try await writer.finish()
            } catch {
                await writer.close()
                throw error
            }
            await writer.close()
        }
    }
}

struct Read: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print committed entries [from, to).")
    @OptionGroup var cluster: ClusterOptions
    @Argument var uri: String
    @Option(help: "Start; default: the stream's first entry (1 if it was never trimmed).") var from: UInt64?
    @Option(help: "End (exclusive); default: the committed tail.") var to: UInt64?
    @Option(help: "Read this server's copy only (to compare members).") var server: UInt64?

    func run() async throws {
        let uri = try parseURI(uri)
        try await withClient(cluster) { client in
            let only = server.map { [NodeID($0)] }
            // The topology first: where each server is, and where the stream starts.
            let first = try await client.topology().firstEntryID(of: uri)
            var end = to ?? 0
            if to == nil { end = try await client.poll(uri, from: 0, members: only).id + 1 }
            var next = from ?? max(1, first)
            while next < end {
                let entries = try await client.read(uri, start: next, end: end, server: only?.first)
                for entry in entries { printEntry(entry) }
                next = entries.last!.id + 1
            }
        }
    }
}

func printEntry(_ entry: Entry) {
    let text = String(decoding: entry.data, as: UTF8.self)
    printLine("\(entry.id)\t\(entry.writerID)\t\(text)")
}

struct Tail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print entries as they commit (Ctrl-C stops).")
    @OptionGroup var cluster: ClusterOptions
    @Argument var uri: String
    @Option(help: "First entry to print (default: the next to commit).") var from: UInt64?

    func run() async throws {
        let uri = try parseURI(uri)
        try await withClient(cluster) { client in
            var next = from ?? 0
            if from == nil { next = try await client.poll(uri, from: 0).id + 1 }
            while true {
                let newest: Entry
                do {
                    newest = try await client.poll(uri, from: next)
                } catch let error as WalleError where error.code == .outOfRange {
                    continue  // the long poll ended with nothing new
                }
                // A read's OutOfRange is not "nothing new": it names the first entry of a
                // trimmed stream, and the command ends with it.
                while next <= newest.id {
                    let entries = try await client.read(uri, start: next, end: newest.id + 1)
                    for entry in entries { printEntry(entry) }
                    next = entries.last!.id + 1
                }
            }
        }
    }
}

struct Poll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Wait until the committed id reaches ENTRY, then print the newest committed entry.")
    @OptionGroup var cluster: ClusterOptions
    @Argument var uri: String
    @Argument var entry: UInt64

    func run() async throws {
        let uri = try parseURI(uri)
        try await withClient(cluster) { client in printEntry(try await client.poll(uri, from: entry)) }
    }
}

struct WriterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "writer", abstract: "Show the stream's writer and lease.")
    @OptionGroup var cluster: ClusterOptions
    @Argument var uri: String

    func run() async throws {
        let uri = try parseURI(uri)
        try await withClient(cluster) { client in
            let info = try await client.writerStatus(uri)
            printLine(
                "writer \(info.writerID) address \"\(info.writerAddress)\" lease \(info.leaseMilliseconds)ms "
                    + "remaining \(info.remainingLeaseMilliseconds)ms version \(info.streamVersion)")
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the topology and every member's view of every stream.")
    @OptionGroup var cluster: ClusterOptions

    func run() async throws {
        try await withClient(cluster) { client in
            let topology = try await client.topology()
            printLine("topology version \(topology.version)")
            for uri in topology.streams.keys.sorted() {
                let stream = topology.streams[uri]!
                printLine("\(uri) v\(stream.version) members \(stream.members.map(\.rawValue))")
                let infos = (try? await client.streamStatus(uri)) ?? []
                for info in infos {
                    printLine(
                        "  server \(info.server.rawValue): v\(info.streamVersion) committed \(info.committedID) "
                            + "tail \(info.tailID) writer \(info.writerID)\(info.hasGap ? " gap" : "")")
                }
                let silent = stream.members.filter { member in !infos.contains { $0.server == member } }
                for member in silent { printLine("  server \(member.rawValue): no answer") }
            }
        }
    }
}
