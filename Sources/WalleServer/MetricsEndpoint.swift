import Metrics
public import NIOCore
import NIOHTTP1
import NIOPosix
public import Prometheus

/// Serves `GET /metrics` in Prometheus' text format from the registry swift-metrics reports to.
/// Anything else gets 404. Runs on its own loop so a slow scraper never delays the node.
public final class MetricsEndpoint: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    /// Makes `registry` the process's metrics backend (once per process) and listens.
    public static func start(at address: SocketAddress) async throws -> MetricsEndpoint {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(ScrapeHandler(registry: registry))
                }
            }
            .bind(to: address).get()
        return MetricsEndpoint(registry: registry, group: group, channel: channel)
    }

    private init(registry: PrometheusCollectorRegistry, group: MultiThreadedEventLoopGroup, channel: any Channel) {
        self.registry = registry
        self.group = group
        self.channel = channel
    }

    public var boundAddress: SocketAddress? { channel.localAddress }

    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

final class ScrapeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: PrometheusCollectorRegistry
    private var path = ""

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            path = head.uri
        case .body:
            break
        case .end:
            let found = path == "/metrics"
            var body = context.channel.allocator.buffer(capacity: 4096)
            if found { body.writeBytes(registry.emitToBuffer()) } else { body.writeString("not found\n") }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: found ? "text/plain; version=0.0.4" : "text/plain")
            headers.add(name: "Content-Length", value: "\(body.readableBytes)")
            let head = HTTPResponseHead(version: .http1_1, status: found ? .ok : .notFound, headers: headers)
            context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
