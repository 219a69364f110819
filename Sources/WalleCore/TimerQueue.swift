import WalleEnvironment

/// A min-heap of deadlines ordered by (instant, insertion sequence), so two timers due at the
/// same instant always fire in the order they were set: determinism does not depend on the
/// heap's layout.
///
/// Payloads live in a slab beside the heap, so sifting moves three words instead of copying
/// (and retaining) a payload. Cancellation is lazy: a handler checks whether what it was set
/// for still matters.
public struct TimerQueue<Payload> {
    private struct Item {
        var deadline: Int64
        var sequence: UInt64
        var slot: Int

        @inline(__always) func precedes(_ other: Item) -> Bool {
            deadline != other.deadline ? deadline < other.deadline : sequence < other.sequence
        }
    }

    private var heap: [Item] = []
    private var payloads: [Payload?] = []
    private var freeSlots: [Int] = []
    private var sequence: UInt64 = 0
    /// Bound on pending timers; every owner sets at most a few per request it holds.
    public let countMax: Int

    public init(countMax: Int) { self.countMax = countMax }

    public var count: Int { heap.count }
    public var nextDeadline: Instant? { heap.first.map { Instant(nanoseconds: $0.deadline) } }

    public mutating func schedule(at deadline: Instant, _ payload: Payload) {
        precondition(heap.count < countMax, "timer queue is full: a bound was not enforced upstream")
        sequence += 1
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            payloads[slot] = payload
        } else {
            slot = payloads.count
            payloads.append(payload)
        }
        heap.append(Item(deadline: deadline.nanoseconds, sequence: sequence, slot: slot))
        siftUp(heap.count - 1)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    public mutating func popDue(now: Instant) -> Payload? {
        guard let first = heap.first, first.deadline <= now.nanoseconds else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        let payload = payloads[first.slot].take()
        freeSlots.append(first.slot)
        return payload
    }

    public mutating func removeAll() {
        heap.removeAll()
        payloads.removeAll()
        freeSlots.removeAll()
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        let item = heap[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard item.precedes(heap[parent]) else { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = item
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let item = heap[parent]
        let count = heap.count
        while true {
            let left = 2 * parent + 1
            guard left < count else { break }
            let right = left + 1
            let smaller = right < count && heap[right].precedes(heap[left]) ? right : left
            guard heap[smaller].precedes(item) else { break }
            heap[parent] = heap[smaller]
            parent = smaller
        }
        heap[parent] = item
    }
}
