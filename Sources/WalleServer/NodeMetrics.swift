import Foundation
import Metrics
import NIOCore
import WalleCore
import WalleEnvironment

/// The node's own series beside the transport's (docs/operating.md, "Metrics"): put latency at
/// the coordinator, refusals by the bound that refused, and the core's queue depths and
/// catch-up progress, sampled once a second on the node's loop. The storage adapter adds the
/// fsync series. Every series has a fixed set of labels: nothing here grows with load.
final class NodeMetrics: @unchecked Sendable {
    private let refusals = Dictionary(uniqueKeysWithValues: Refusal.allCases.map {
        ($0, Counter(label: "walle_requests_refused_total", dimensions: [("limit", $0.rawValue)]))
    })
    private let putsAcknowledged = Metrics.Timer(
        label: "walle_put_duration_seconds", dimensions: [("outcome", "acknowledged")])
    private let putsFailed = Metrics.Timer(label: "walle_put_duration_seconds", dimensions: [("outcome", "failed")])
    private let gauges: [(KeyPath<CoreGauges, Int>, Gauge)] = [
        (\.calls, Gauge(label: "walle_calls_in_flight")),
        (\.timers, Gauge(label: "walle_timers")),
        (\.pollWaiters, Gauge(label: "walle_poll_waiters")),
        (\.syncWaiters, Gauge(label: "walle_sync_waiters")),
        (\.newWriterWaits, Gauge(label: "walle_newwriter_waits")),
        (\.queuedPuts, Gauge(label: "walle_queued_puts")),
        (\.streams, Gauge(label: "walle_streams")),
        (\.streamsWithGap, Gauge(label: "walle_streams_with_gap")),
        (\.gapEntries, Gauge(label: "walle_gap_entries")),
    ]
    private let lock = NSLock()
    private var latest = CoreGauges()
    private var sampler: RepeatedTask?

    static let samplePeriod = TimeAmount.seconds(1)

    /// Counts what `node` reports and samples its gauges; call on the node's loop.
    func attach(to node: ProductionNode, on loop: any EventLoop) {
        node.refusalSink = { [refusals] in refusals[$0]?.increment() }
        node.putSink = { [putsAcknowledged, putsFailed] duration, acknowledged in
            (acknowledged ? putsAcknowledged : putsFailed).recordNanoseconds(duration.nanoseconds)
        }
        sampler = loop.scheduleRepeatedTask(initialDelay: .zero, delay: Self.samplePeriod) { [weak self, weak node] _ in
            guard let self, let node else { return }
            let sample = node.gauges
            for (path, gauge) in gauges { gauge.record(sample[keyPath: path]) }
            lock.withLock { latest = sample }
        }
    }

    func stop() { sampler?.cancel() }

    /// The last sample (at most `samplePeriod` old).
    var lastSample: CoreGauges { lock.withLock { latest } }
}
