import WalleCore
import WalleEnvironment

/// The simulator's agenda: events in order of (instant, scheduling order), on the same heap as
/// a server's deadlines. Nothing is cancelled: an event's handler checks whether what it was
/// scheduled for still matters.
struct EventQueue<Payload> {
    private var heap = DeadlineHeap()
    private var payloads: [Payload?] = []
    /// Bound on pending events (a broken bound upstream, not a load the simulator offers).
    let countMax: Int

    init(countMax: Int) { self.countMax = countMax }

    var count: Int { heap.count }
    var nextDeadline: Instant? { heap.nextDeadline }

    mutating func schedule(at deadline: Instant, _ payload: Payload) {
        precondition(heap.count < countMax, "event queue is full: a bound was not enforced upstream")
        let slot = heap.insert(at: deadline)
        if slot == payloads.count { payloads.append(nil) }
        payloads[slot] = payload
    }

    /// Removes and returns the earliest event due at or before `now`.
    mutating func popDue(now: Instant) -> Payload? {
        guard let slot = heap.popDue(now: now) else { return nil }
        return payloads[slot].take()
    }
}
