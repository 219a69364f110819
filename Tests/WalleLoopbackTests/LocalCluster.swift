import Foundation
import WalleClient
import WalleContracts
import WalleEnvironment
import WalleFuzz

#if canImport(Glibc)
    import Glibc
#endif

/// Real `walle-node` processes on loopback, each with its own temporary data directory.
/// Every process it starts is killed by `stopAll`, which `deinit` also calls: a failing test
/// leaves nothing running.
final class LocalCluster: @unchecked Sendable {
    let directory: URL
    /// The bootstrap servers (the root members): `ids`, `serverList`.
    let ports: [UInt64: Int]
    /// Servers started later with `startJoining`: nobody is told their address.
    private var joinedPorts: [UInt64: Int] = [:]
    /// Where each node serves /metrics and /health, when started with metrics.
    let metricsPorts: [UInt64: Int]
    private var processes: [UInt64: Process] = [:]
    private let lock = NSLock()

    init(size: Int = 3, metrics: Bool = false) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("walle-loopback-\(UUID().uuidString)")
        var ports: [UInt64: Int] = [:]
        var metricsPorts: [UInt64: Int] = [:]
        for id in 1...UInt64(size) {
            ports[id] = try freePort()
            if metrics { metricsPorts[id] = try freePort() }
        }
        self.ports = ports
        self.metricsPorts = metricsPorts
        for id in ids {
            try FileManager.default.createDirectory(at: dataDirectory(id), withIntermediateDirectories: true)
        }
    }

    deinit {
        stopAll()
        try? FileManager.default.removeItem(at: directory)
    }

    var ids: [UInt64] { ports.keys.sorted() }

    var serverList: String { ids.map { "\($0)=127.0.0.1:\(ports[$0]!)" }.joined(separator: ",") }

    func port(_ id: UInt64) -> Int { ports[id] ?? lock.withLock { joinedPorts[id]! } }

    func dataDirectory(_ id: UInt64) -> URL { directory.appendingPathComponent("node-\(id)") }

    func logFile(_ id: UInt64) -> URL { directory.appendingPathComponent("node-\(id).log") }

    func client() throws -> ClusterClient { try ClusterClient(serverList: serverList) }

    /// Starts every node (bootstrapping the root stream on first start).
    func startAll() throws {
        for id in ids { try start(id) }
    }

    /// A new server, on a new port, with the bootstrap servers as its `--peers` (where it looks
    /// for the topology) and no `--bootstrap`: it registers its own address ([MEM-1]).
    func startJoining(_ id: UInt64) throws {
        precondition(ports[id] == nil, "a joining server has an id of its own")
        let port = try freePort()
        lock.withLock { joinedPorts[id] = port }
        try FileManager.default.createDirectory(at: dataDirectory(id), withIntermediateDirectories: true)
        try start(id)
    }

    func start(_ id: UInt64) throws {
        let process = Process()
        process.executableURL = try builtProduct("walle-node")
        process.arguments = [
            "--id", String(id), "--listen", "127.0.0.1:\(port(id))", "--data-dir", dataDirectory(id).path,
            "--peers", serverList, "--log-level", "info",
        ] + (ports[id] == nil ? [] : ["--bootstrap"])
            + (metricsPorts[id].map { ["--metrics", "127.0.0.1:\($0)"] } ?? [])
        let log = logFile(id)
        if !FileManager.default.fileExists(atPath: log.path) {
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        lock.withLock { processes[id] = process }
        try waitUntilListening(id)
    }

    /// SIGKILL: no shutdown code runs, unsynced writes may be lost (the point of the test).
    func kill9(_ id: UInt64) {
        guard let process = lock.withLock({ processes.removeValue(forKey: id) }) else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, and the exit status of the graceful shutdown.
    func terminate(_ id: UInt64) -> Int32 {
        guard let process = lock.withLock({ processes.removeValue(forKey: id) }) else { return -1 }
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }

    func stopAll() {
        let running = lock.withLock { () -> [Process] in
            defer { processes.removeAll() }
            return Array(processes.values)
        }
        for process in running where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    func isRunning(_ id: UInt64) -> Bool { lock.withLock { processes[id]?.isRunning ?? false } }

    func log(_ id: UInt64) -> String { (try? String(contentsOf: logFile(id), encoding: .utf8)) ?? "" }

    /// Waits for the port, not for a time: beside other suites on two cores, opening
    /// WiredTiger can take many seconds. The outer deadline only catches a node that hangs.
    private func waitUntilListening(_ id: UInt64) throws {
        let deadline = Date().addingTimeInterval(LocalCluster.startDeadlineSeconds)
        while Date() < deadline {
            if let socket = try? connectTCP(port: port(id)) {
                close(socket)
                return
            }
            if let process = lock.withLock({ processes[id] }), !process.isRunning {
                throw WalleError(.unavailable, "walle-node \(id) exited (\(process.terminationStatus)): \(log(id))")
            }
            usleep(25_000)
        }
        throw WalleError(
            .deadlineExceeded,
            "walle-node \(id) did not listen within \(LocalCluster.startDeadlineSeconds) s: \(log(id))")
    }

    static let startDeadlineSeconds: Double = 120
}

/// A port nothing listens on right now (the kernel's pick for port 0).
func freePort() throws -> Int {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { throw WalleError(.internal, "socket() failed") }
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(socket, pointer, length) == 0 && getsockname(socket, pointer, &length) == 0
        }
    }
    guard bound else { throw WalleError(.internal, "bind() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A plain blocking TCP connection to 127.0.0.1:`port`, for sending raw bytes.
func connectTCP(port: Int) throws -> Int32 { try ClusterFuzzer.connect("127.0.0.1", port) }

/// Runs a built executable to its end; returns its exit status and standard output.
func run(_ name: String, _ arguments: [String], stdin: String? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = try builtProduct(name)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    let input = Pipe()
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Runs a built executable to its end; returns its exit status, standard output and standard
/// error (where `walle` prints the error that made it fail).
func runCapturingErrors(
    _ name: String, _ arguments: [String]
) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = try builtProduct(name)
    process.arguments = arguments
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // stderr is short (one error line); stdout is read to its end first.
    let data = output.fileHandleForReading.readDataToEndOfFile()
    let errors = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self), String(decoding: errors, as: UTF8.self))
}

/// `GET path` on 127.0.0.1:`port` over HTTP/1.0: the status code and the body (nil on no answer
/// within 5 s).
func httpGet(port: Int, _ path: String) -> (status: Int, body: String)? {
    guard let socket = try? connectTCP(port: port) else { return nil }
    defer { close(socket) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let request = Array("GET \(path) HTTP/1.0\r\nHost: localhost\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) }
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while received.count < 64 << 20 {
        let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        received += chunk[0..<count]
        let text = String(decoding: received, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { continue }
        let header = text[..<split.lowerBound]
        let length = header.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
        let body = String(text[split.upperBound...])
        if let length, body.utf8.count < length { continue }
        let status = header.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, body)
    }
    return nil
}

/// A `walle put` process that keeps its stdin open, and so stays the writer (renewing its
/// lease) until the test closes its input or it is fenced. Its stdout goes to `output`.
struct WriterProcess {
    let process = Process()
    let input = Pipe()
    let output: URL

    init(_ cluster: LocalCluster, _ uri: String, name: String) throws {
        output = cluster.directory.appendingPathComponent("\(name).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        process.executableURL = try builtProduct("walle")
        process.arguments = ["put", uri, "--lease", "1000", "--cluster", cluster.serverList]
        process.standardInput = input
        process.standardOutput = try FileHandle(forWritingTo: output)
        try process.run()
    }

    func write(_ lines: String) { input.fileHandleForWriting.write(Data(lines.utf8)) }

    /// Waits until the process printed `acked ID`.
    func waitForAck(_ id: Int) throws {
        try waitFor("the writer process acknowledges entry \(id)") {
            (try? String(contentsOf: output, encoding: .utf8))?.contains("acked \(id)") ?? false
        }
    }

    func kill() { if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) } }
}

/// Tries `attempt` every `interval` until it returns a value, and once more after `within` has
/// passed. The last try matters: beside other suites on two cores, both of the cooperative
/// threads can be busy with synchronous tests for minutes, so a sleeping test may wake long
/// after its deadline, and a condition that came true meanwhile must still count. (The trim
/// test failed twice in CI that way: its files had shrunk, but the poll never ran again.)
func eventually<T>(
    within: Duration = .seconds(60), every interval: Duration = .milliseconds(200),
    _ attempt: () async throws -> T?
) async throws -> T? {
    let deadline = ContinuousClock.now + within
    while true {
        if let value = try await attempt() { return value }
        guard ContinuousClock.now < deadline else { return nil }
        try await Task.sleep(for: interval)
    }
}
