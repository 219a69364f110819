import Testing
import WalleCore
import WalleEnvironment

@Suite("Timer queue")
struct TimerQueueTests {
    @Test("Timers fire by deadline, then in the order they were set")
    func order() {
        var queue = TimerQueue<Int>()
        queue.schedule(1, at: Instant(nanoseconds: 5))
        queue.schedule(2, at: Instant(nanoseconds: 3))
        queue.schedule(3, at: Instant(nanoseconds: 5))
        queue.schedule(4, at: Instant(nanoseconds: 3))
        var fired: [Int] = []
        while let next = queue.popDue(now: Instant(nanoseconds: 10)) { fired.append(next) }
        #expect(fired == [2, 4, 1, 3])
        #expect(queue.popDue(now: Instant(nanoseconds: 100)) == nil)
        #expect(queue.count == 0)
    }

    @Test("Nothing fires before its deadline")
    func notEarly() {
        var queue = TimerQueue<Int>()
        queue.schedule(1, at: Instant(nanoseconds: 10))
        #expect(queue.popDue(now: Instant(nanoseconds: 9)) == nil)
        #expect(queue.nextDeadline == Instant(nanoseconds: 10))
    }

    @Test("A key has one deadline: scheduling again moves it, cancelling removes it")
    func oneDeadlinePerKey() {
        var queue = TimerQueue<String>()
        queue.schedule("call", at: Instant(nanoseconds: 10))
        queue.schedule("call", at: Instant(nanoseconds: 30))
        queue.schedule("poll", at: Instant(nanoseconds: 20))
        #expect(queue.count == 2)
        #expect(queue.nextDeadline == Instant(nanoseconds: 20))
        queue.schedule("poll", noLaterThan: Instant(nanoseconds: 25))
        #expect(queue.nextDeadline == Instant(nanoseconds: 20), "a later deadline does not postpone")
        queue.schedule("call", noLaterThan: Instant(nanoseconds: 5))
        #expect(queue.nextDeadline == Instant(nanoseconds: 5), "an earlier one brings it forward")
        let first = queue.cancel("call")
        let second = queue.cancel("call")
        #expect(first && !second)
        #expect(!queue.contains("call") && queue.contains("poll"))
        #expect(queue.popDue(now: Instant(nanoseconds: 100)) == "poll")
        #expect(queue.count == 0 && queue.nextDeadline == nil)
    }

    /// Random schedules, moves, cancels and pops against a plain list kept sorted the slow
    /// way: the heap with its position index must agree on every pop.
    @Test("Against a model: any mix of schedule, move, cancel and pop")
    func model() {
        var random = Mixed()
        var queue = TimerQueue<Int>()
        var model: [Int: (deadline: Int64, sequence: Int)] = [:]
        var sequence = 0
        var now: Int64 = 0
        for _ in 0..<20_000 {
            let key = Int(random.next() % 300)
            switch random.next() % 4 {
            case 0, 1:
                let deadline = now + Int64(random.next() % 1000)
                sequence += 1
                queue.schedule(key, at: Instant(nanoseconds: deadline))
                model[key] = (deadline, sequence)
            case 2:
                let cancelled = queue.cancel(key)
                #expect(cancelled == (model.removeValue(forKey: key) != nil))
            default:
                now += Int64(random.next() % 200)
                while let fired = queue.popDue(now: Instant(nanoseconds: now)) {
                    let expected = model.filter { $0.value.deadline <= now }
                        .min { ($0.value.deadline, $0.value.sequence) < ($1.value.deadline, $1.value.sequence) }
                    #expect(fired == expected?.key)
                    model.removeValue(forKey: fired)
                }
                #expect(!model.values.contains { $0.deadline <= now })
            }
            #expect(queue.count == model.count)
        }
    }
}

/// SplitMix64's finaliser over a counter: well-mixed low bits for the model test.
private struct Mixed {
    var state: UInt64 = 7

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
