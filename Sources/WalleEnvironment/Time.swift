/// A reading of one node's monotonic clock, in nanoseconds since an arbitrary origin.
///
/// Instants from two different nodes cannot be compared: each node's clock runs at its own
/// rate (within 0.75 to 1.25 of true time, see docs/protocol.md). Only leases and timeouts use
/// it; wall time is a separate type so the two can never be mixed up.
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// Earlier than any reading a running clock returns ("renewed long ago").
    public static let distantPast = Instant(nanoseconds: Int64.min / 2)

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static func + (lhs: Instant, rhs: Duration) -> Instant {
        Instant(nanoseconds: lhs.nanoseconds &+ rhs.nanoseconds)
    }

    public static func - (lhs: Instant, rhs: Duration) -> Instant {
        Instant(nanoseconds: lhs.nanoseconds &- rhs.nanoseconds)
    }

    public static func - (lhs: Instant, rhs: Instant) -> Duration {
        .nanoseconds(lhs.nanoseconds &- rhs.nanoseconds)
    }

    public var description: String { Duration.nanoseconds(nanoseconds).formattedMilliseconds }
}

/// A reading of one node's wall clock, in nanoseconds since the Unix epoch.
///
/// Used only for the `ts` half of writer ids ([WID-1]; docs/protocol.md, "Clocks"); never for a
/// lease.
public struct WallTime: Comparable, Hashable, Sendable {
    public var nanosecondsSinceEpoch: Int64

    public init(nanosecondsSinceEpoch: Int64) { self.nanosecondsSinceEpoch = nanosecondsSinceEpoch }

    public static func < (lhs: WallTime, rhs: WallTime) -> Bool {
        lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch
    }
}

extension Duration {
    /// The whole nanoseconds in this duration (saturating at the Int64 range).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? Int64.min : Int64.max }
        return scaled &+ attoseconds / 1_000_000_000
    }

    /// The whole milliseconds in this duration, truncated toward zero.
    public var milliseconds: Int64 { nanoseconds / 1_000_000 }

    /// The milliseconds in this non-negative duration, rounded up: a stored wait must not
    /// come out shorter than the one it records.
    public var millisecondsRoundedUp: Int64 {
        let ns = nanoseconds
        precondition(ns >= 0, "a wait is never negative")
        return ns / 1_000_000 + (ns % 1_000_000 == 0 ? 0 : 1)
    }

    /// "12.345ms": fixed format so traces hash the same on every platform.
    public var formattedMilliseconds: String {
        let ns = nanoseconds
        let sign = ns < 0 ? "-" : ""
        let magnitude = ns.magnitude
        let fraction = String(magnitude % 1_000_000 / 1_000)
        let padded = String(repeating: "0", count: 3 - fraction.count) + fraction
        return "\(sign)\(magnitude / 1_000_000).\(padded)ms"
    }
}
