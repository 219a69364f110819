import WalleCore
import WalleEnvironment

/// True time and what happens next: the one thing every simulated component needs from its
/// surroundings. Components schedule events here; only the world advances time, by taking the
/// next event. A concrete class, not a protocol: clocks read `trueNow` on every event.
final class Agenda: SimScheduler {
    private(set) var trueNow: Int64 = 0
    private var queue = EventQueue<SimEvent>(countMax: 50_000_000)

    func schedule(at time: Int64, _ event: SimEvent) {
        precondition(time >= trueNow, "events are never scheduled in the past")
        queue.schedule(at: Instant(nanoseconds: time), event)
    }

    func scheduleWakeup(_ node: NodeID, atTrue time: Int64, generation: UInt64) {
        schedule(at: time, .wakeup(node, generation: generation))
    }

    /// The next event due at or before `end`, with time advanced to it.
    func next(until end: Int64) -> SimEvent? {
        guard let next = queue.nextDeadline, next.nanoseconds <= end else { return nil }
        trueNow = next.nanoseconds
        guard let event = queue.popDue(now: next) else { preconditionFailure("the queue's next event is due") }
        return event
    }
}

/// What a simulated disk needs from its surroundings: true time and an event queue. The
/// agenda is one; the disk contract tests (Tests/WalleContracts) drive a disk through another.
protocol SimScheduler: AnyObject {
    var trueNow: Int64 { get }
    func schedule(at time: Int64, _ event: SimEvent)
}

/// How often each fault kind ran and each bound refused in one seed: what the sweep summary
/// adds up.
final class SimCounters {
    private(set) var faults: [FaultKind: Int] = [:]
    /// Refusals for load or time by the bound that refused (the servers' `Effect.refused`),
    /// so a sweep shows which limit paths ran.
    private(set) var refusals: [Refusal: Int] = [:]

    func count(_ kind: FaultKind) { faults[kind, default: 0] += 1 }

    func refused(_ limit: Refusal) { refusals[limit, default: 0] += 1 }
}
