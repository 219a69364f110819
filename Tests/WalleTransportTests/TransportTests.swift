import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing
import WalleEnvironment
@testable import WalleTransport
import WalleWire

/// What arrived at a transport, collected from its event loop.
final class Inbox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(Message, NodeID)] = []

    func add(_ message: Message, _ source: NodeID) { lock.withLock { items.append((message, source)) } }

    var count: Int { lock.withLock { items.count } }

    func all() -> [(Message, NodeID)] { lock.withLock { items } }

    /// Waits up to 10 s for at least `count` messages.
    func wait(for count: Int, seconds: Double = 10) async -> [(Message, NodeID)] {
        for _ in 0..<Int(seconds * 100) where self.count < count { try? await Task.sleep(for: .milliseconds(10)) }
        return all()
    }
}

/// A transport on its own loop with an inbox.
struct Endpoint {
    let group: MultiThreadedEventLoopGroup
    let transport: Transport
    let inbox = Inbox()

    init(
        _ id: UInt64, peers: [NodeID: ServerAddress], configuration: TransportConfiguration = TransportConfiguration()
    ) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        transport = Transport(
            eventLoop: group.next(), localID: NodeID(id), peers: peers, configuration: configuration,
            logger: Logger(label: "test-\(id)"))
        let inbox = inbox
        transport.onMessage = { message, source in inbox.add(message, source) }
    }

    func send(_ message: Message, to target: UInt64) {
        let transport = transport
        transport.eventLoop.execute { transport.send(message, from: transport.localID, to: NodeID(target)) }
    }

    func stop() async {
        await transport.close()
        try? await group.shutdownGracefully()
    }
}

func loopback(_ port: Int) -> SocketAddress { try! SocketAddress(ipAddress: "127.0.0.1", port: port) }

/// How a peer is named in the transport's table: by host name, so the resolver is on the path.
func peer(_ port: Int) -> ServerAddress { try! ServerAddress(parsing: "localhost:\(port)") }

/// The network contract on the real transport (the simulator's network keeps the same
/// clauses in every simulated run; docs/architecture.md, "Contracts"):
/// delivery with the sender's id and unchanged content, no synchronous delivery, silent loss
/// for unknown targets, no ordering promise the core relies on, recovery after a peer restarts.
@Suite("Network contract: TCP transport", .serialized)
struct TransportTests {
    @Test("A client's server-to-server message is answered PermissionDenied and never delivered")
    func refusesClientRole() async throws {
        let server = Endpoint(1, peers: [:])
        let port = try await server.transport.listen(on: loopback(0)).port!
        let client = Endpoint(1 << 63 | 6, peers: [NodeID(1): peer(port)])
        let serverMessage = try sampleMessages().first { $0.isInternalRequest }!
        client.send(serverMessage, to: 1)
        let answers = await client.inbox.wait(for: 1)
        guard case .response(serverMessage.requestID, .failed(let error))? = answers.first?.0 else {
            Issue.record("expected a refusal, got \(answers)")
            return
        }
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains("server-to-server"))
        #expect(await server.inbox.wait(for: 1, seconds: 0.5).isEmpty, "the node never sees it")
        await client.stop()
        await server.stop()
    }

    @Test("A frame too big for a hello, before the hello, closes the connection at once")
    func bigFrameBeforeHello() async throws {
        let server = Endpoint(1, peers: [:])
        let port = try await server.transport.listen(on: loopback(0)).port!
        let clients = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try await ClientBootstrap(group: clients).connect(to: loopback(port)).get()
        var buffer = channel.allocator.buffer(capacity: 8)
        buffer.writeInteger(UInt32(Wire.helloFrameBytesMax + 1), endianness: .little)
        buffer.writeBytes([1, 2, 3, 4])
        try await channel.writeAndFlush(buffer)
        #expect(await closes(channel), "the node closes it without waiting for the body")
        try await clients.shutdownGracefully()
        await server.stop()
    }

    @Test("Silent connections close after the hello timeout; one past the limit closes at once")
    func connectionBounds() async throws {
        var configuration = TransportConfiguration()
        configuration.helloTimeout = .seconds(3)
        configuration.acceptedConnectionsMax = 2
        let server = Endpoint(1, peers: [:], configuration: configuration)
        let port = try await server.transport.listen(on: loopback(0)).port!
        let clients = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var open: [any Channel] = []
        for _ in 0..<2 { open.append(try await ClientBootstrap(group: clients).connect(to: loopback(port)).get()) }
        let third = try await ClientBootstrap(group: clients).connect(to: loopback(port)).get()
        #expect(await closes(third), "a third connection is over the limit of two")
        let stillOpen = open.filter { $0.isActive }.count
        #expect(stillOpen == 2, "the first two wait for their hello meanwhile")
        for channel in open { #expect(await closes(channel), "no hello within the timeout") }
        try await clients.shutdownGracefully()
        await server.stop()
    }

    /// Whether the other side closes `channel` within 60 s (a condition, not a time: the
    /// deadline only catches a node that never closes it).
    private func closes(_ channel: any Channel) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(60)
        while channel.isActive && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        return !channel.isActive
    }

    @Test("Messages arrive unchanged with the sender's id, both ways, and a client is answered on its own connection")
    func delivers() async throws {
        let server = Endpoint(1, peers: [:])
        let port = try await server.transport.listen(on: loopback(0)).port!
        let client = Endpoint(1 << 63 | 5, peers: [NodeID(1): peer(port)])
        // A client may send the public requests only (docs/wire-format.md, "Roles").
        let messages = try sampleMessages().filter(\.isPublicRequest)
        for message in messages { client.send(message, to: 1) }
        let arrived = await server.inbox.wait(for: messages.count)
        #expect(arrived.count == messages.count)
        #expect(arrived.allSatisfy { $0.1 == NodeID(1 << 63 | 5) })
        #expect(Set(arrived.map { $0.0.description }) == Set(messages.map(\.description)))
        // A server may send everything.
        let peer = Endpoint(2, peers: [NodeID(1): peer(port)])
        let all = try sampleMessages()
        for message in all { peer.send(message, to: 1) }
        let fromPeer = await server.inbox.wait(for: messages.count + all.count)
        #expect(Set(fromPeer.dropFirst(messages.count).map { $0.0.description }) == Set(all.map(\.description)))
        await peer.stop()
        // The server has no address for the client: the answer goes back on the client's connection.
        server.send(.response(9, .ok), to: 1 << 63 | 5)
        let answers = await client.inbox.wait(for: 1)
        #expect(answers.first?.1 == NodeID(1))
        await client.stop()
        await server.stop()
    }

    @Test("A message to oneself arrives, never inside send; one to an unknown node is dropped")
    func selfAndUnknown() async throws {
        let node = Endpoint(1, peers: [:])
        let transport = node.transport
        let inbox = node.inbox
        let duringSend = try await transport.eventLoop.submit {
            transport.send(.writerStatus(1, try StreamURI("/a")), from: NodeID(1), to: NodeID(1))
            transport.send(.writerStatus(2, try StreamURI("/a")), from: NodeID(1), to: NodeID(99))
            return inbox.count
        }.get()
        #expect(duringSend == 0)
        let arrived = await inbox.wait(for: 1)
        try await Task.sleep(for: .milliseconds(50))
        #expect(arrived.count == 1 && inbox.count == 1)
        await node.stop()
    }

    @Test("After the peer restarts on the same port, messages flow again (reconnect with back-off)")
    func reconnects() async throws {
        let port = try await {
            let probe = Endpoint(7, peers: [:])
            let port = try await probe.transport.listen(on: loopback(0)).port!
            await probe.stop()
            return port
        }()
        var server = Endpoint(1, peers: [:])
        _ = try await server.transport.listen(on: loopback(port))
        let client = Endpoint(2, peers: [NodeID(1): peer(port)])
        client.send(.writerStatus(1, try StreamURI("/a")), to: 1)
        #expect(await server.inbox.wait(for: 1).count == 1)
        await server.stop()
        // While it is down, sends are lost, not queued without bound.
        for id in 2...20 { client.send(.writerStatus(RequestID(id), try StreamURI("/a")), to: 1) }
        try await Task.sleep(for: .milliseconds(200))
        server = Endpoint(1, peers: [:])
        _ = try await server.transport.listen(on: loopback(port))
        var delivered = 0
        for attempt in 0..<100 where delivered == 0 {
            client.send(.writerStatus(RequestID(100 + attempt), try StreamURI("/a")), to: 1)
            try await Task.sleep(for: .milliseconds(50))
            delivered = server.inbox.count
        }
        #expect(delivered > 0, "no message arrived after the restart")
        await client.stop()
        await server.stop()
    }

    @Test("A peer that answers with another id is not used: a replaced server's address")
    func wrongPeer() async throws {
        let impostor = Endpoint(9, peers: [:])
        let port = try await impostor.transport.listen(on: loopback(0)).port!
        let client = Endpoint(2, peers: [NodeID(1): peer(port)])
        client.send(.writerStatus(1, try StreamURI("/a")), to: 1)
        try await Task.sleep(for: .milliseconds(300))
        // The impostor saw the hello only; the message meant for server 1 was never sent to it.
        #expect(impostor.inbox.count == 0)
        await client.stop()
        await impostor.stop()
    }
}
