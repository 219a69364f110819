import NIOCore
import WalleEnvironment
import WalleWire

/// One connection's end: says hello, checks the other side's hello, decodes frames and hands
/// messages to the transport. A bad frame closes this connection only, with a logged reason.
final class FrameHandler: ChannelInboundHandler {
    typealias InboundIn = [UInt8]
    typealias OutboundOut = ByteBuffer

    enum Role {
        /// The other side connected to us: it is identified by its hello.
        case accepted
        /// We connected to this peer from the address book.
        case outbound(NodeID)
    }

    let role: Role
    /// Strong: a connection may outlive its owner's last reference until the loop closes it.
    private let transport: Transport
    private var context: ChannelHandlerContext?
    /// Set by the other side's hello; nothing else is accepted before it.
    private(set) var peer: NodeID?
    private(set) var remoteDescription = "?"
    /// Set once the connection is being closed: frames already decoded are not acted on.
    private var isRefusing = false
    private let limit: FrameLimit
    private var helloDeadline: Scheduled<Void>?

    init(transport: Transport, role: Role, limit: FrameLimit) {
        self.transport = transport
        self.role = role
        self.limit = limit
    }

    var channel: (any Channel)? { context?.channel }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        remoteDescription = context.remoteAddress.map { "\($0)" } ?? "?"
    }

    func channelActive(context: ChannelHandlerContext) {
        remoteDescription = context.remoteAddress.map { "\($0)" } ?? "?"
        write(Wire.encode(.hello(transport.localID)))
        context.flush()
        let timeout = transport.configuration.helloTimeout
        helloDeadline = context.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { [self] in
            guard peer == nil, let context = self.context else { return }
            refuse(context, "no hello within \(timeout)")
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        helloDeadline?.cancel()
        transport.closed(self)
        self.context = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let body = Self.unwrapInboundIn(data)
        guard !isRefusing else { return }
        do {
            switch try Wire.decode(body) {
            case .hello(let id):
                guard peer == nil else { throw WireError(.badHello, "a second hello, from \(id)") }
                guard id.rawValue != 0 else { throw WireError(.badHello, "a hello from node 0, which is nobody") }
                guard transport.identified(self, as: id) else {
                    context.close(promise: nil)
                    return
                }
                peer = id
                helloDeadline?.cancel()
                limit.bytesMax = id.isClient ? Wire.clientFrameBytesMax : Wire.frameBytesMax
            case .message(let message):
                guard let peer else { throw WireError(.badHello, "a message before the hello") }
                guard !peer.isClient || message.isPublicRequest else {
                    refuseRole(context, message, from: peer)
                    return
                }
                transport.received(message, from: peer)
            }
        } catch {
            refuse(context, "\(error)")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? WireError {
            refuse(context, "\(error)")
        } else {
            // Resets and the like: the peer went away, nothing it sent was wrong.
            transport.logger.debug("connection to \(remoteDescription) failed: \(error)")
            context.close(promise: nil)
        }
    }

    /// A client sent what only a server may send (docs/wire-format.md, "Roles"): it gets a
    /// PermissionDenied answer naming the message, the refusal is counted and logged, and the
    /// connection closes once the answer is out. The core never sees the message.
    private func refuseRole(_ context: ChannelHandlerContext, _ message: Message, from peer: NodeID) {
        isRefusing = true
        let reason = "\(message.kindName) is a server-to-server message; \(peer) declared itself a client"
        transport.refusedRole(self, reason)
        let answer = Wire.encode(.message(.response(message.requestID, .failed(WalleError(.permissionDenied, reason)))))
        var buffer = context.channel.allocator.buffer(capacity: answer.count)
        buffer.writeBytes(answer)
        context.writeAndFlush(Self.wrapOutboundOut(buffer)).whenComplete { _ in context.close(promise: nil) }
    }

    private func refuse(_ context: ChannelHandlerContext, _ reason: String) {
        isRefusing = true
        transport.badFrame(self, reason)
        context.close(promise: nil)
    }

    func write(_ frame: [UInt8]) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: frame.count)
        buffer.writeBytes(frame)
        context.write(Self.wrapOutboundOut(buffer), promise: nil)
    }

    func flush() { context?.flush() }
}
