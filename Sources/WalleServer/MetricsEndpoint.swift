import Foundation
import Metrics
public import NIOCore
import NIOHTTP1
import NIOPosix
public import Prometheus

/// Serves `GET /metrics` in Prometheus' text format from the registry swift-metrics reports to,
/// and `GET /health`: 200 and a JSON line while the node serves, 503 while it starts or stops.
/// Anything else gets 404. Runs on its own loop so a slow scraper never delays the node.
public final class MetricsEndpoint: Sendable {
    public typealias Health = @Sendable () -> (serving: Bool, body: String)
    public let registry: PrometheusCollectorRegistry
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let health: HealthBox

    /// Makes `registry` the process's metrics backend (once per process) and listens.
    public static func start(at address: SocketAddress) async throws -> MetricsEndpoint {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Sub-millisecond fsyncs and puts on a fast disk; seconds when it stalls.
        let durations: [Duration] =
            [50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000]
            .map { .microseconds($0) }
        factory.defaultDurationHistogramBuckets = durations
        factory.valueHistogramBuckets["walle_sync_entries"] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]
        MetricsSystem.bootstrap(factory)
        let health = HealthBox()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(ScrapeHandler(registry: registry, health: health))
                }
            }
            .bind(to: address).get()
        return MetricsEndpoint(registry: registry, group: group, channel: channel, health: health)
    }

    private init(
        registry: PrometheusCollectorRegistry, group: MultiThreadedEventLoopGroup, channel: any Channel,
        health: HealthBox
    ) {
        self.registry = registry
        self.group = group
        self.channel = channel
        self.health = health
    }

    /// What `/health` answers from now on (nil: 503 "not serving").
    public func setHealth(_ provider: Health?) { health.set(provider) }

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
    let health: HealthBox
    private var path = ""
    private var keepAlive = true

    init(registry: PrometheusCollectorRegistry, health: HealthBox) {
        self.registry = registry
        self.health = health
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            path = head.uri
            keepAlive = head.isKeepAlive
        case .body:
            break
        case .end:
            var body = context.channel.allocator.buffer(capacity: 4096)
            let status: HTTPResponseStatus
            var contentType = "text/plain"
            switch path {
            case "/metrics":
                status = .ok
                contentType = "text/plain; version=0.0.4"
                body.writeBytes(registry.emitToBuffer())
            case "/health":
                let (serving, text) = health.get()?() ?? (false, "{\"serving\":false}\n")
                status = serving ? .ok : .serviceUnavailable
                contentType = "application/json"
                body.writeString(text)
            default:
                status = .notFound
                body.writeString("not found\n")
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: contentType)
            headers.add(name: "Content-Length", value: "\(body.readableBytes)")
            let head = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
            context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            // HTTP/1.0 or `Connection: close`: the client reads to the end of the stream.
            let close = !keepAlive
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                if close { context.close(promise: nil) }
            }
        }
    }
}

/// The health provider, set by the node's service as it starts and stops.
final class HealthBox: @unchecked Sendable {
    private let lock = NSLock()
    private var provider: MetricsEndpoint.Health?

    func set(_ provider: MetricsEndpoint.Health?) { lock.withLock { self.provider = provider } }
    func get() -> MetricsEndpoint.Health? { lock.withLock { provider } }
}
