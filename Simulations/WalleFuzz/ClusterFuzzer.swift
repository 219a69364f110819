#if canImport(Glibc)
    import Glibc
#endif
import WalleEnvironment
import WalleSimulator
import WalleWire

/// Sends fuzzed frames to real nodes over TCP: a correct hello (as a client, or as one of the
/// cluster's servers), then well-formed frames whose fields carry edge values, with a few
/// frames bent at the byte level. A node that closes the connection (as it should for a bad
/// frame or a client's server-to-server message) is reconnected. After every batch each node
/// must answer a WriterStatus, or the run fails.
public struct ClusterFuzzer {
    public enum Identity: String, Sendable { case client, server }

    public let nodes: [(id: NodeID, host: String, port: Int)]
    public let streams: [StreamURI]
    public let identity: Identity
    private var fuzzer: MessageFuzzer
    private var random: SimRandom
    public private(set) var sent = 0
    public private(set) var reconnects = 0

    public init(
        nodes: [(id: NodeID, host: String, port: Int)], streams: [StreamURI], identity: Identity, seed: UInt64
    ) {
        self.nodes = nodes
        self.streams = streams
        self.identity = identity
        self.fuzzer = MessageFuzzer(seed: seed)
        self.random = SimRandom.fork(seed: seed, "cluster-fuzz")
        signal(SIGPIPE, SIG_IGN)
    }

    /// Sends `frames` frames spread over the nodes; checks every node answers after each batch.
    public mutating func run(frames: Int, batch: Int = 10_000, progress: (Int) -> Void = { _ in }) throws(WalleError) {
        var sockets: [Int32?] = Array(repeating: nil, count: nodes.count)
        defer { for case let socket? in sockets { close(socket) } }
        while sent < frames {
            let index = random.int(in: 0...(nodes.count - 1))
            if sockets[index] == nil { sockets[index] = try connectAndHello(index) }
            let frame = nextFrame(for: index)
            if !sendAll(sockets[index]!, frame) {
                close(sockets[index]!)
                sockets[index] = nil
                reconnects += 1
            }
            drain(sockets[index])
            sent += 1
            if sent % batch == 0 || sent == frames {
                try checkAnswers()
                progress(sent)
            }
        }
    }

    private mutating func nextFrame(for index: Int) -> [UInt8] {
        let node = nodes[index]
        var context = FuzzContext(target: node.id, servers: nodes.map(\.id), streams: streams)
        context.calls = (0..<4).map { _ in (node.id, random.next() >> 1) }
        let (message, _) = fuzzer.next(context)
        var frame = Wire.encode(.message(message))
        if random.chance(0.03) && frame.count > 5 {
            frame[random.int(in: 4...(frame.count - 1))] ^= UInt8(truncatingIfNeeded: random.next() | 1)
        }
        return frame
    }

    private mutating func connectAndHello(_ index: Int) throws(WalleError) -> Int32 {
        let socket = try Self.connect(nodes[index].host, nodes[index].port)
        let peers = nodes.map(\.id).filter { $0 != nodes[index].id }
        let me = identity == .client || peers.isEmpty ? NodeID(NodeID.clientBit | random.next()) : random.pick(peers)
        _ = sendAll(socket, Wire.encode(.hello(me)))
        return socket
    }

    /// Every node answers a WriterStatus of the first stream on a fresh client connection.
    public func checkAnswers() throws(WalleError) {
        for node in nodes {
            let socket = try Self.connect(node.host, node.port)
            defer { close(socket) }
            let requestID: RequestID = 77
            _ = sendAll(
                socket, Wire.encode(.hello(NodeID(NodeID.clientBit | 0xF0F0)))
                    + Wire.encode(.message(.writerStatus(requestID, streams[0]))))
            guard Self.awaitResponse(socket, requestID) else {
                throw WalleError(
                    .unavailable, "node \(node.id) at \(node.host):\(node.port) did not answer after \(sent) frames")
            }
        }
    }

    // MARK: Sockets

    /// A blocking TCP connection with 5 s send and receive timeouts.
    public static func connect(_ host: String, _ port: Int) throws(WalleError) -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw WalleError(.internal, "socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else {
            close(socket)
            throw WalleError(.unavailable, "cannot connect to \(host):\(port)")
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return socket
    }

    func sendAll(_ socket: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                send(socket, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    /// Reads and discards whatever the node answered so far, without waiting.
    private func drain(_ socket: Int32?) {
        guard let socket else { return }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while recv(socket, &buffer, buffer.count, Int32(MSG_DONTWAIT)) > 0 {}
    }

    /// Reads frames until the answer to `requestID` (true) or a timeout or close (false).
    static func awaitResponse(_ socket: Int32, _ requestID: RequestID) -> Bool {
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        for _ in 0..<1000 {
            let count = recv(socket, &buffer, buffer.count, 0)
            guard count > 0 else { return false }
            pending += buffer[0..<count]
            while pending.count >= 4 {
                let length = Int(pending[0]) | Int(pending[1]) << 8 | Int(pending[2]) << 16 | Int(pending[3]) << 24
                guard pending.count >= 4 + length else { break }
                let body = Array(pending[4..<(4 + length)])
                pending.removeFirst(4 + length)
                if case .message(.response(requestID, _))? = try? Wire.decode(body) { return true }
            }
        }
        return false
    }
}
