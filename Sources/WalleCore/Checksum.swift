public import WalleEnvironment

/// xxHash64 (seed 0 unless given), written from the published algorithm.
///
/// Walle only needs the one-shot form over "8 bytes of the previous checksum, then the data"
/// ([XX-2]); `chainChecksum` builds that input on the stack for small entries.
public enum XXH64 {
    static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    public static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }

    public static func hash(_ input: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let length = input.count
        var offset = 0
        var h: UInt64
        if length >= 32 {
            var v1 = seed &+ prime1 &+ prime2
            var v2 = seed &+ prime2
            var v3 = seed
            var v4 = seed &- prime1
            while offset + 32 <= length {
                v1 = round(v1, load64(input, offset))
                v2 = round(v2, load64(input, offset + 8))
                v3 = round(v3, load64(input, offset + 16))
                v4 = round(v4, load64(input, offset + 24))
                offset += 32
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            h = mergeRound(h, v1)
            h = mergeRound(h, v2)
            h = mergeRound(h, v3)
            h = mergeRound(h, v4)
        } else {
            h = seed &+ prime5
        }
        h = h &+ UInt64(length)
        while offset + 8 <= length {
            h ^= round(0, load64(input, offset))
            h = rotl(h, 27) &* prime1 &+ prime4
            offset += 8
        }
        if offset + 4 <= length {
            h ^= UInt64(load32(input, offset)) &* prime1
            h = rotl(h, 23) &* prime2 &+ prime3
            offset += 4
        }
        while offset < length {
            h ^= UInt64(input[offset]) &* prime5
            h = rotl(h, 11) &* prime1
            offset += 1
        }
        return avalanche(h)
    }

    @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 {
        (x << r) | (x >> (64 - r))
    }

    @inline(__always) static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* prime2, 31) &* prime1
    }

    @inline(__always) static func mergeRound(_ acc: UInt64, _ value: UInt64) -> UInt64 {
        (acc ^ round(0, value)) &* prime1 &+ prime4
    }

    @inline(__always) static func avalanche(_ value: UInt64) -> UInt64 {
        var h = value
        h ^= h >> 33
        h = h &* prime2
        h ^= h >> 29
        h = h &* prime3
        h ^= h >> 32
        return h
    }

    @inline(__always) static func load64(_ p: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always) static func load32(_ p: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}

/// `checksum(n) = XXH64(seed 0, LE64(checksum(n-1)) ‖ data(n))` ([XX-2]).
public func chainChecksum(previous: UInt64, data: [UInt8]) -> UInt64 {
    let length = 8 + data.count
    return withUnsafeTemporaryAllocation(byteCount: length, alignment: 8) { buffer in
        buffer.storeBytes(of: previous.littleEndian, toByteOffset: 0, as: UInt64.self)
        data.withUnsafeBytes { source in
            if !source.isEmpty {
                UnsafeMutableRawBufferPointer(rebasing: buffer[8...]).copyMemory(from: source)
            }
        }
        return XXH64.hash(UnsafeRawBufferPointer(buffer))
    }
}

extension Entry {
    /// Whether this entry's checksum extends a chain whose previous checksum is `previous`.
    public func chains(onto previous: UInt64) -> Bool {
        chainChecksum(previous: previous, data: data) == checksum
    }
}
