/// The simulator's own random generator: xoshiro256** seeded through splitmix64.
///
/// Owned by the simulator (not the standard library's) so that a seed means the same run on
/// every platform and toolchain. Each component draws from its own fork, so adding a draw in
/// one component does not shift the numbers another one sees.
public struct SimRandom: RandomNumberGenerator, Sendable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    public init(seed: UInt64) {
        var state = seed
        s0 = SimRandom.splitmix(&state)
        s1 = SimRandom.splitmix(&state)
        s2 = SimRandom.splitmix(&state)
        s3 = SimRandom.splitmix(&state)
    }

    /// A generator for one component, derived from the root seed and a stable label.
    public static func fork(seed: UInt64, _ label: String) -> SimRandom {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in label.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return SimRandom(seed: seed ^ hash)
    }

    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    public mutating func chance(_ probability: Double) -> Bool { unit() < probability }

    /// Uniform in `range` (inclusive), without modulo bias worth caring about at these sizes.
    public mutating func int(in range: ClosedRange<Int64>) -> Int64 {
        let width = UInt64(range.upperBound - range.lowerBound) &+ 1
        if width == 0 { return Int64(bitPattern: next()) }
        return range.lowerBound + Int64(next() % width)
    }

    public mutating func int(in range: ClosedRange<Int>) -> Int {
        Int(int(in: Int64(range.lowerBound)...Int64(range.upperBound)))
    }

    public mutating func double(in range: ClosedRange<Double>) -> Double {
        range.lowerBound + unit() * (range.upperBound - range.lowerBound)
    }

    /// Fisher-Yates with this generator: the same order on every toolchain (the standard
    /// library's shuffle algorithm is not promised to stay the same).
    public mutating func shuffled<T>(_ items: [T]) -> [T] {
        var result = items
        var index = result.count - 1
        while index > 0 {
            let other = Int(next() % UInt64(index + 1))
            result.swapAt(index, other)
            index -= 1
        }
        return result
    }

    public mutating func pick<T>(_ items: [T]) -> T {
        precondition(!items.isEmpty)
        return items[Int(next() % UInt64(items.count))]
    }

    private static func splitmix(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
