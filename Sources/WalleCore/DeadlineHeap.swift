import WalleEnvironment

/// A min-heap of deadlines ordered by (instant, sequence of scheduling), so two deadlines due
/// at the same instant come out in the order they were set: determinism does not depend on the
/// heap's layout. Each deadline gets a slot number; owners keep what the deadline is for in
/// arrays indexed by slot, so sifting moves three words instead of copying a payload, and each
/// slot knows its heap position, so moving or removing one is O(log n).
public struct DeadlineHeap {
    private struct Item {
        var deadline: Int64
        var sequence: UInt64
        var slot: Int

        @inline(__always) func precedes(_ other: Item) -> Bool {
            deadline != other.deadline ? deadline < other.deadline : sequence < other.sequence
        }
    }

    private var heap: [Item] = []
    /// Heap position of each slot in use (stale for free slots).
    private var positions: [Int] = []
    private var freeSlots: [Int] = []
    private var sequence: UInt64 = 0

    public init() {}

    public var count: Int { heap.count }
    public var nextDeadline: Instant? { heap.first.map { Instant(nanoseconds: $0.deadline) } }
    /// One more than the highest slot ever handed out: owners size their arrays by it.
    public var slotCount: Int { positions.count }

    public func deadline(of slot: Int) -> Instant { Instant(nanoseconds: heap[positions[slot]].deadline) }

    /// Adds a deadline and returns its slot.
    public mutating func insert(at deadline: Instant) -> Int {
        sequence += 1
        let slot = freeSlots.popLast() ?? positions.count
        if slot == positions.count { positions.append(0) }
        heap.append(Item(deadline: deadline.nanoseconds, sequence: sequence, slot: slot))
        positions[slot] = heap.count - 1
        siftUp(heap.count - 1)
        return slot
    }

    /// Gives `slot` a new deadline; it counts as set now for the order of equal deadlines.
    public mutating func move(_ slot: Int, to deadline: Instant) {
        sequence += 1
        let position = positions[slot]
        heap[position].deadline = deadline.nanoseconds
        heap[position].sequence = sequence
        resift(position)
    }

    public mutating func remove(_ slot: Int) {
        let position = positions[slot]
        freeSlots.append(slot)
        let last = heap.removeLast()
        guard position < heap.count else { return }
        place(last, at: position)
        resift(position)
    }

    /// Removes the earliest deadline due at or before `now` and returns its slot.
    public mutating func popDue(now: Instant) -> Int? {
        guard let first = heap.first, first.deadline <= now.nanoseconds else { return nil }
        remove(first.slot)
        return first.slot
    }

    private mutating func resift(_ position: Int) {
        if position > 0 && heap[position].precedes(heap[(position - 1) / 2]) {
            siftUp(position)
        } else {
            siftDown(position)
        }
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        let item = heap[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard item.precedes(heap[parent]) else { break }
            place(heap[parent], at: child)
            child = parent
        }
        place(item, at: child)
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
            place(heap[smaller], at: parent)
            parent = smaller
        }
        place(item, at: parent)
    }

    @inline(__always) private mutating func place(_ item: Item, at position: Int) {
        heap[position] = item
        positions[item.slot] = position
    }
}
