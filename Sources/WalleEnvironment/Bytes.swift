/// Little-endian fixed-width fields, the building blocks of every encoding Walle writes (the
/// topology entry, the storage records). Equal values encode to equal bytes on every platform.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public mutating func u64(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    public mutating func u32(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    public mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
    }

    public mutating func u8(_ value: UInt8) { bytes.append(value) }

    public mutating func raw(_ data: [UInt8]) { bytes += data }

    /// A string of at most 65535 UTF-8 bytes, preceded by its length.
    public mutating func string16(_ text: String) {
        let utf8 = Array(text.utf8)
        precondition(utf8.count <= Int(UInt16.max), "string too long for a 16-bit length")
        u16(UInt16(utf8.count))
        raw(utf8)
    }
}

/// Reads what `ByteWriter` wrote, failing with DataLoss (naming `what`) on truncation.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset = 0
    let what: String

    public init(bytes: [UInt8], what: String) {
        self.bytes = bytes
        self.what = what
    }

    public var isAtEnd: Bool { offset == bytes.count }
    public var remaining: Int { bytes.count - offset }

    public mutating func bytes(_ count: Int) throws(WalleError) -> [UInt8] {
        guard count >= 0, offset + count <= bytes.count else {
            throw WalleError(.dataLoss, "\(what) is truncated at byte \(offset)")
        }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// Reads `width` bytes as a little-endian integer without copying them out (the wire
    /// decodes many fields per message).
    private mutating func little(_ width: Int) throws(WalleError) -> UInt64 {
        guard offset + width <= bytes.count else {
            throw WalleError(.dataLoss, "\(what) is truncated at byte \(offset)")
        }
        var value: UInt64 = 0
        for index in stride(from: offset + width - 1, through: offset, by: -1) {
            value = value << 8 | UInt64(bytes[index])
        }
        offset += width
        return value
    }

    public mutating func u64() throws(WalleError) -> UInt64 { try little(8) }

    public mutating func u32() throws(WalleError) -> UInt32 { UInt32(try little(4)) }

    public mutating func u16() throws(WalleError) -> UInt16 { UInt16(try little(2)) }

    public mutating func u8() throws(WalleError) -> UInt8 { UInt8(try little(1)) }

    public mutating func string16() throws(WalleError) -> String {
        String(decoding: try bytes(Int(try u16())), as: UTF8.self)
    }

    /// Fails unless every byte was read.
    public func finish() throws(WalleError) {
        guard isAtEnd else { throw WalleError(.dataLoss, "\(what) has \(remaining) trailing bytes") }
    }
}
