public import WalleEnvironment

/// A min-heap of deadlines ordered by (instant, insertion sequence), so two timers due at the
/// same instant always fire in the order they were set: determinism does not depend on the
/// heap's layout.
///
/// Cancellation is lazy: a handler checks whether what it was set for still matters.
public struct TimerQueue<Payload> {
    private struct Item {
        var deadline: Instant
        var sequence: UInt64
        var payload: Payload

        func precedes(_ other: Item) -> Bool {
            deadline != other.deadline ? deadline < other.deadline : sequence < other.sequence
        }
    }

    private var heap: [Item] = []
    private var sequence: UInt64 = 0
    /// Bound on pending timers; every owner sets at most a few per request it holds.
    public let countMax: Int

    public init(countMax: Int) { self.countMax = countMax }

    public var count: Int { heap.count }
    public var nextDeadline: Instant? { heap.first?.deadline }

    public mutating func schedule(at deadline: Instant, _ payload: Payload) {
        precondition(heap.count < countMax, "timer queue is full: a bound was not enforced upstream")
        sequence += 1
        heap.append(Item(deadline: deadline, sequence: sequence, payload: payload))
        siftUp(heap.count - 1)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    public mutating func popDue(now: Instant) -> Payload? {
        guard let first = heap.first, first.deadline <= now else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        return first.payload
    }

    public mutating func removeAll() { heap.removeAll() }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].precedes(heap[smallest]) { smallest = left }
            if right < heap.count && heap[right].precedes(heap[smallest]) { smallest = right }
            if smallest == parent { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
