import WalleEnvironment

/// Deadlines keyed by what they are for: a key has at most one deadline, and the owner cancels
/// it when the thing it guards is done. So the queue holds exactly the live deadlines, and its
/// size is bounded by what is in flight, never by how much passed through (lazy cancellation
/// kept an answered call's timeout for the full timeout: at 50k calls/s it overran the bound).
public struct TimerQueue<Key: Hashable> {
    private var heap = DeadlineHeap()
    private var keys: [Key?] = []
    private var slotOfKey: [Key: Int] = [:]

    public init() {}

    public var count: Int { heap.count }
    public var nextDeadline: Instant? { heap.nextDeadline }

    public func contains(_ key: Key) -> Bool { slotOfKey[key] != nil }

    /// Sets the deadline of `key`, replacing the one it had.
    public mutating func schedule(_ key: Key, at deadline: Instant) {
        if let slot = slotOfKey[key] {
            heap.move(slot, to: deadline)
            return
        }
        let slot = heap.insert(at: deadline)
        if slot == keys.count { keys.append(nil) }
        keys[slot] = key
        slotOfKey[key] = slot
        assert(slotOfKey.count == heap.count, "timer keys out of step")
    }

    /// Sets the deadline of `key` unless it already has one at or before `deadline`.
    public mutating func schedule(_ key: Key, noLaterThan deadline: Instant) {
        if let slot = slotOfKey[key], heap.deadline(of: slot) <= deadline { return }
        schedule(key, at: deadline)
    }

    /// Removes the deadline of `key`, if it has one. Returns whether it had one.
    @discardableResult
    public mutating func cancel(_ key: Key) -> Bool {
        guard let slot = slotOfKey.removeValue(forKey: key) else { return false }
        keys[slot] = nil
        heap.remove(slot)
        return true
    }

    /// Removes and returns the earliest key due at or before `now`.
    public mutating func popDue(now: Instant) -> Key? {
        guard let slot = heap.popDue(now: now) else { return nil }
        guard let key = keys[slot].take() else { preconditionFailure("the heap holds slot \(slot) without a key") }
        slotOfKey.removeValue(forKey: key)
        return key
    }
}
