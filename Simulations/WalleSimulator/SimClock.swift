import WalleEnvironment

/// One node's clocks as functions of true (simulator) time.
///
/// Monotonic: piecewise linear, `local = baseLocal + (true − baseTrue) · rate`, with the rate
/// inside [0.75, 1.25] in the normal model and changing at chosen moments. Wall: true time
/// plus an offset, independent of the monotonic rate (writer ids use it, WS-8).
public final class SimClock: Clock {
    let agenda: Agenda
    let node: NodeID
    private var baseTrue: Int64 = 0
    private var baseLocal: Int64
    public private(set) var rate: Double
    var wallOffsetNanoseconds: Int64
    /// The local deadline the node asked to be woken at.
    private(set) var wakeupDeadline: Instant?
    var wakeupGeneration: UInt64 = 0

    init(agenda: Agenda, node: NodeID, rate: Double, localOrigin: Int64, wallOffsetNanoseconds: Int64) {
        self.agenda = agenda
        self.node = node
        self.rate = rate
        self.baseLocal = localOrigin
        self.wallOffsetNanoseconds = wallOffsetNanoseconds
    }

    public var now: Instant { local(atTrue: agenda.trueNow) }

    public var wallNow: WallTime {
        WallTime(nanosecondsSinceEpoch: World.epochNanoseconds + agenda.trueNow + wallOffsetNanoseconds)
    }

    public func scheduleWakeup(at instant: Instant) {
        wakeupDeadline = instant
        wakeupGeneration += 1
        agenda.scheduleWakeup(node, atTrue: trueTime(forLocal: instant), generation: wakeupGeneration)
    }

    func local(atTrue t: Int64) -> Instant {
        Instant(nanoseconds: baseLocal + Int64((Double(t - baseTrue) * rate).rounded(.down)))
    }

    /// The first true instant at which the local clock reads at least `instant`, at the
    /// current rate.
    func trueTime(forLocal instant: Instant) -> Int64 {
        let localDelta = instant.nanoseconds - baseLocal
        guard localDelta > 0 else { return max(agenda.trueNow, baseTrue) }
        var candidate = baseTrue + Int64((Double(localDelta) / rate).rounded(.up))
        while local(atTrue: candidate) < instant { candidate += 1 }
        return max(candidate, agenda.trueNow)
    }

    /// Changes the rate from now on; a pending wake-up is re-timed to the new rate.
    func setRate(_ newRate: Double, reschedule: Bool) {
        let t = agenda.trueNow
        baseLocal = local(atTrue: t).nanoseconds
        baseTrue = t
        rate = newRate
        if reschedule, let deadline = wakeupDeadline { scheduleWakeup(at: deadline) }
    }

    /// The process died: its pending wake-up must not fire into the next incarnation.
    func cancelWakeup() {
        wakeupDeadline = nil
        wakeupGeneration += 1
    }

    func wakeupFired(generation: UInt64) -> Bool {
        guard generation == wakeupGeneration, let deadline = wakeupDeadline else { return false }
        guard now >= deadline else {
            scheduleWakeup(at: deadline)
            return false
        }
        wakeupDeadline = nil
        return true
    }
}
