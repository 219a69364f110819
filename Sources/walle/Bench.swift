import ArgumentParser
import Foundation
import Histogram
import NIOCore
import WalleClient
import WalleCore
import WalleEnvironment

/// `walle bench`: puts with many in flight, closed-loop (a new put as each one commits) or
/// open-loop (puts at a fixed rate, whatever the latency). Latency runs from the put's submit
/// to its acknowledgement; throughput counts acknowledged puts after the warm-up.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure put throughput and latency (p50/p99/p99.9) against the cluster.",
        discussion: "Creates the stream when it is missing, claims it, and loads it; a progress line goes to stderr "
            + "every second.")
    @OptionGroup var cluster: ClusterOptions
    @Option(help: "Stream to load (created on every server when missing).") var stream = "/bench/load"
    @Option(name: .customLong("in-flight"), help: "Puts in flight at once (closed loop).") var inFlight = 16
    @Option(help: "Entry size in bytes.") var size = 100
    @Option(help: "Measured seconds.") var duration = 10.0
    @Option(help: "Warm-up seconds (not measured).") var warmup = 2.0
    @Option(help: "Open loop: puts per second (0: closed loop).") var rate = 0.0
    @Option(help: "Also print a line per window of this many seconds: its puts/s, p99 and p99.9 (0: none).")
    var window = 0.0
    @Flag(help: "Print one JSON line instead of the table.") var json = false

    func validate() throws {
        guard (1...4096).contains(inFlight) else { throw ValidationError("--in-flight must be 1...4096") }
        guard (0...Entry.dataSizeMax).contains(size) else {
            throw ValidationError("--size must be 0...\(Entry.dataSizeMax)")
        }
        guard duration > 0, warmup >= 0, rate >= 0 else {
            throw ValidationError("--duration must be > 0, --warmup and --rate >= 0")
        }
        guard window == 0 || (1...3600).contains(window) else {
            throw ValidationError("--window must be 0 or 1...3600 seconds")
        }
    }

    func run() async throws {
        let uri = try parseURI(stream)
        try await withClient(cluster) { client in
            if try await client.topology().streams[uri] == nil {
                try await client.createStream(uri, members: client.serverIDs)
            }
            let writer = try await client.writer(for: uri, lease: .seconds(2), address: "walle bench")
            _ = try await writer.claim()
            let load = Load(
                writer: writer, payload: [UInt8](repeating: 0x61, count: size), inFlight: inFlight, rate: rate,
                window: window)
            let result = try await load.run(warmup: warmup, duration: duration)
            await writer.close()
            report(result)
        }
    }

    private func report(_ result: Load.Result) {
        let h = result.histogram
        func ms(_ percentile: Double) -> Double { Double(h.valueAtPercentile(percentile)) / 1000 }
        let throughput = Double(result.acknowledged) / result.seconds
        if json {
            printLine(
                "{\"size\":\(size),\"in_flight\":\(inFlight),\"rate\":\(rate),\"puts_per_s\":\(Int(throughput)),"
                    + "\"p50_ms\":\(ms(50)),\"p99_ms\":\(ms(99)),\"p999_ms\":\(ms(99.9)),"
                    + "\"max_ms\":\(Double(h.max) / 1000),"
                    + "\"acknowledged\":\(result.acknowledged),\"failed\":\(result.failed)}")
        } else {
            printLine(
                "size \(size) B, \(rate > 0 ? "open loop \(Int(rate))/s" : "\(inFlight) in flight"), "
                    + "\(String(format: "%.1f", result.seconds)) s")
            printLine(String(
                format: "puts/s %.0f  p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms",
                throughput, ms(50), ms(99), ms(99.9), Double(h.max) / 1000))
            printLine("acknowledged \(result.acknowledged), failed \(result.failed)")
        }
    }
}

/// The load generator. Runs its bookkeeping on the writer's event loop through future
/// callbacks, so measuring costs no thread hops.
final class Load: @unchecked Sendable {
    struct Result {
        var histogram: Histogram<UInt64>
        var acknowledged: Int
        var failed: Int
        var seconds: Double
    }

    let writer: StreamWriter
    let payload: [UInt8]
    let inFlight: Int
    let rate: Double
    /// Seconds per window line (0: none). Each window has its own histogram, so a tail that
    /// grows over a soak shows up in the window where it happens.
    let window: Double
    private let lock = NSLock()
    private var histogram = Histogram<UInt64>(
        highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    private var windowHistogram = Histogram<UInt64>(
        highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    private var windowAcknowledged = 0
    private var acknowledged = 0
    private var failed = 0
    private var outstanding = 0
    private var measuring = false
    private var stopping = false
    private var firstError: WalleError?

    init(writer: StreamWriter, payload: [UInt8], inFlight: Int, rate: Double, window: Double = 0) {
        self.writer = writer
        self.payload = payload
        self.inFlight = inFlight
        self.rate = rate
        self.window = window
    }

    func run(warmup: Double, duration: Double) async throws -> Result {
        let start = Self.nowMicros()
        if rate > 0 {
            startOpenLoop(start: start)
        } else {
            for _ in 0..<inFlight { submitOne() }
        }
        try await Task.sleep(for: .seconds(warmup))
        lock.withLock {
            histogram.reset()
            windowHistogram.reset()
            acknowledged = 0
            windowAcknowledged = 0
            failed = 0
            measuring = true
        }
        let measuredStart = Self.nowMicros()
        var second = 0
        var windowStart = measuredStart
        while Double(Self.nowMicros() - measuredStart) / 1e6 < duration {
            try await Task.sleep(for: .seconds(min(1, duration - Double(second))))
            second += 1
            if window > 0, Double(Self.nowMicros() - windowStart) / 1e6 >= window - 0.001 {
                printWindow(from: measuredStart, windowStart: windowStart)
                windowStart = Self.nowMicros()
            }
            let (count, p99) = lock.withLock { (acknowledged, histogram.valueAtPercentile(99)) }
            let elapsed = Double(Self.nowMicros() - measuredStart) / 1e6
            FileHandle.standardError.write(Data(String(
                format: "\r%5.1fs %8.0f puts/s  p99 %.2f ms   ", elapsed, Double(count) / elapsed,
                Double(p99) / 1000).utf8))
            if let error = lock.withLock({ firstError }), error.isFinal { throw error }
        }
        let seconds = Double(Self.nowMicros() - measuredStart) / 1e6
        FileHandle.standardError.write(Data("\n".utf8))
        return lock.withLock {
            stopping = true
            return Result(histogram: histogram, acknowledged: acknowledged, failed: failed, seconds: seconds)
        }
    }

    /// One line: the window's end (seconds into the measurement), puts/s, p99 and p99.9.
    private func printWindow(from measuredStart: Int64, windowStart: Int64) {
        let now = Self.nowMicros()
        let (count, p99, p999) = lock.withLock {
            defer {
                windowHistogram.reset()
                windowAcknowledged = 0
            }
            return (windowAcknowledged, windowHistogram.valueAtPercentile(99), windowHistogram.valueAtPercentile(99.9))
        }
        let seconds = Double(now - windowStart) / 1e6
        FileHandle.standardError.write(Data("\n".utf8))
        printLine(String(
            format: "window %6.0f s  %8.0f puts/s  p99 %7.2f ms  p99.9 %7.2f ms",
            Double(now - measuredStart) / 1e6, Double(count) / seconds, Double(p99) / 1000, Double(p999) / 1000))
    }

    private func submitOne() {
        let sent = Self.nowMicros()
        lock.withLock { outstanding += 1 }
        writer.submit(payload).whenComplete { [self] result in
            let latency = Self.nowMicros() - sent
            let again = lock.withLock { () -> Bool in
                outstanding -= 1
                switch result {
                case .success:
                    if measuring {
                        _ = histogram.record(UInt64(max(latency, 0)))
                        _ = windowHistogram.record(UInt64(max(latency, 0)))
                        acknowledged += 1
                        windowAcknowledged += 1
                    }
                case .failure(let error):
                    if measuring { failed += 1 }
                    if firstError == nil { firstError = error as? WalleError }
                }
                return !stopping && rate == 0
            }
            if again { submitOne() }
        }
    }

    /// Open loop: a put every 1/rate seconds, however many are outstanding (bounded by the
    /// writer's own pending limit, which then makes `submit` wait).
    private func startOpenLoop(start: Int64) {
        let interval = 1e6 / rate
        Thread.detachNewThread { [self] in
            var next = Double(start)
            while !lock.withLock({ stopping }) {
                let now = Double(Self.nowMicros())
                if now < next { usleep(UInt32(min(next - now, 1000))); continue }
                submitOne()
                next += interval
            }
        }
    }

    static func nowMicros() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
    }
}
