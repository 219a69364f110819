import ArgumentParser
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import WalleEnvironment
import WalleServer
import WalleTransport

/// `walle-node`: one Walle server (docs/operating.md).
@main
struct WalleNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "walle-node",
        abstract: "Run one Walle server on WiredTiger storage and TCP.",
        discussion: """
            Every option can also come from a config file of `key = value` lines (the option
            names without dashes: id, listen, advertise, data-dir, peers, bootstrap, metrics,
            log-level, cache-mb). Options on the command line win over the file.

            Exit codes: 0 after a graceful shutdown (SIGTERM or SIGINT), 64 bad arguments,
            66 the data directory cannot be used, 70 storage failed while running.
            """)

    @Option(help: "A config file of `key = value` lines.") var config: String?
    @Option(help: "This server's id (a non-zero integer, fixed for the life of its data).") var id: UInt64?
    @Option(help: "Address to listen on, HOST:PORT (a numeric host).") var listen: String?
    @Option(
        help: """
            Where peers and clients reach this server, HOST:PORT (a host name works); registered in the \
            topology. Default: --listen.
            """)
    var advertise: String?
    @Option(name: .customLong("data-dir"), help: "The data directory (must exist; empty for a new server).")
    var dataDir: String?
    @Option(help: "The root stream's members, where to look for the topology first: ID=HOST:PORT,...")
    var peers: String?
    @Flag(
        help: """
            On a new data directory, create the root stream with every peer as member (--peers must \
            list this server).
            """)
    var bootstrap = false
    @Option(help: "Serve Prometheus metrics on HOST:PORT at /metrics.") var metrics: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?
    @Option(name: .customLong("cache-mb"), help: "WiredTiger cache size in MiB (default 256).") var cacheMegabytes: Int?

    func run() async throws {
        let settings: [String: String]
        do {
            settings = try merged()
        } catch {
            FileHandle.standardError.write(Data("walle-node: \(error)\n".utf8))
            throw ExitCode(64)
        }
        let level = Logger.Level(rawValue: settings["log-level"] ?? "info") ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "walle-node")
        let options: NodeOptions
        let metricsAddress: SocketAddress?
        do {
            (options, metricsAddress) = try Self.options(from: settings)
        } catch {
            logger.error("bad arguments: \(error)")
            throw ExitCode(64)
        }
        // The service opens the port inside the group: the group traps SIGTERM and SIGINT
        // before any service runs, so a signal that arrives while the node starts is a graceful
        // shutdown, never the default action (CI saw exit by signal 15 right after listening).
        let service = NodeService(options: options, metricsAddress: metricsAddress, logger: logger)
        let group = ServiceGroup(
            services: [service], gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        do {
            try await group.run()
        } catch let failure as NodeService.StartFailure {
            logger.error("cannot start: \(failure.error)")
            throw ExitCode(66)
        }
    }

    /// The config file's settings with the command line's on top.
    private func merged() throws -> [String: String] {
        var settings: [String: String] = [:]
        if let config { settings = try ConfigFile.read(config) }
        let flags: [String: String?] = [
            "id": id.map(String.init), "listen": listen, "advertise": advertise, "data-dir": dataDir, "peers": peers,
            "metrics": metrics,
            "log-level": logLevel, "cache-mb": cacheMegabytes.map(String.init), "bootstrap": bootstrap ? "true" : nil,
        ]
        for case let (key, value?) in flags { settings[key] = value }
        return settings
    }

    private static func options(from settings: [String: String]) throws -> (NodeOptions, SocketAddress?) {
        func required(_ key: String) throws(WalleError) -> String {
            guard let value = settings[key], !value.isEmpty else {
                throw WalleError(.invalidArgument, "--\(key) is required (or `\(key) = ...` in the config file)")
            }
            return value
        }
        guard let id = UInt64(try required("id")), id != 0 else {
            throw WalleError(.invalidArgument, "--id must be a non-zero integer")
        }
        let peers = try ServerList.parse(try required("peers"))
        let bootstrap = settings["bootstrap"] == "true"
        guard !bootstrap || peers[NodeID(id)] != nil else {
            throw WalleError(.invalidArgument, "--bootstrap: --peers does not list this server's id \(id)")
        }
        let listen = try required("listen")
        let advertise = try ServerAddress(parsing: settings["advertise"] ?? listen)
        guard !["0.0.0.0", "::"].contains(advertise.host) else {
            throw WalleError(.invalidArgument, "--advertise is required when --listen is a wildcard (\(listen))")
        }
        var options = NodeOptions(
            id: NodeID(id), listen: try ServerList.parseAddress(listen), advertise: advertise,
            dataDirectory: try required("data-dir"), peers: peers, bootstrap: bootstrap)
        if let cache = settings["cache-mb"] {
            guard let megabytes = Int(cache), megabytes >= 1 else {
                throw WalleError(.invalidArgument, "cache-mb must be a positive integer")
            }
            options.cacheMegabytes = megabytes
        }
        return (options, try settings["metrics"].map { try ServerList.parseAddress($0) })
    }
}

/// Starts the node, runs it until a graceful shutdown is requested, then stops it cleanly.
struct NodeService: Service {
    /// The node could not start (exit code 66).
    struct StartFailure: Error { var error: any Error }

    let options: NodeOptions
    let metricsAddress: SocketAddress?
    let logger: Logger

    func run() async throws {
        var endpoint: MetricsEndpoint?
        if let metricsAddress {
            do {
                endpoint = try await MetricsEndpoint.start(at: metricsAddress)
            } catch {
                throw StartFailure(
                    error: WalleError(.unavailable, "cannot serve metrics on \(metricsAddress): \(error)"))
            }
            logger.info("metrics at http://\(metricsAddress)/metrics, health at /health")
        }
        let runtime: NodeRuntime
        do {
            runtime = try await NodeRuntime.start(options, logger: logger)
        } catch {
            await endpoint?.stop()
            throw StartFailure(error: error)
        }
        endpoint?.setHealth { runtime.health }
        try? await gracefulShutdown()
        logger.info("shutting down")
        endpoint?.setHealth(nil)
        await runtime.stop()
        await endpoint?.stop()
    }
}

/// `key = value` lines; `#` starts a comment; values may be in double quotes.
enum ConfigFile {
    static let keys: Set<String> = [
        "id", "listen", "advertise", "data-dir", "peers", "bootstrap", "metrics", "log-level", "cache-mb"]

    static func read(_ path: String) throws(WalleError) -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw WalleError(.notFound, "config file \(path) cannot be read")
        }
        var settings: [String: String] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
                .trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, keys.contains(parts[0]) else {
                throw WalleError(
                    .invalidArgument, "\(path) line \(index + 1): expected one of \(keys.sorted()) = value")
            }
            var value = parts[1]
            if value.count >= 2 && value.hasPrefix("\"") && value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            settings[parts[0]] = value
        }
        return settings
    }
}
