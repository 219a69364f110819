#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
public import NIOCore
public import WalleEnvironment

/// The `Clock` interface on the operating system: `CLOCK_MONOTONIC` for leases and timeouts,
/// `CLOCK_REALTIME` only for writer ids. Wake-ups are tasks on the node's event loop.
///
/// Threading: confined to `eventLoop`, like the node it serves.
public final class SystemClock: Clock, @unchecked Sendable {
    public let eventLoop: any EventLoop
    /// Called on the event loop when a requested wake-up is due.
    public var onWake: (() -> Void)?
    private var scheduled: Scheduled<Void>?

    public init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    public var now: Instant { Instant(nanoseconds: Self.read(CLOCK_MONOTONIC)) }

    public var wallNow: WallTime { WallTime(nanosecondsSinceEpoch: Self.read(CLOCK_REALTIME)) }

    public func scheduleWakeup(at instant: Instant) {
        scheduled?.cancel()
        let delay = max(instant.nanoseconds - now.nanoseconds, 0)
        scheduled = eventLoop.scheduleTask(in: .nanoseconds(delay)) { [self] in
            scheduled = nil
            onWake?()
        }
    }

    public func cancel() {
        scheduled?.cancel()
        scheduled = nil
    }

    private static func read(_ clock: clockid_t) -> Int64 {
        var spec = timespec()
        let status = clock_gettime(clock, &spec)
        precondition(status == 0, "clock_gettime failed")
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }
}
