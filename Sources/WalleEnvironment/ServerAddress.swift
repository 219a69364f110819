/// Where a server listens, as it registers it in the topology (`[MEM-1]`) and as operators
/// write it in `--peers`: `HOST:PORT`, the host a DNS name, a numeric IPv4 address or an IPv6
/// address in brackets. Checked as text only: the name is resolved where it is dialed, and one
/// that does not resolve is a dial that fails (the peer is unreachable, as if it were down).
public struct ServerAddress: Hashable, Sendable, CustomStringConvertible {
    /// Without brackets for IPv6.
    public let host: String
    public let port: Int

    /// Longest address text, in UTF-8 bytes: a DNS name is at most 253, the port with its
    /// colon at most 6 more.
    public static let textBytesMax = 259

    public init(parsing text: String) throws(WalleError) {
        let shown = text.prefix(64)
        let bytes = Array(text.utf8)
        guard (3...Self.textBytesMax).contains(bytes.count), let colon = bytes.lastIndex(of: UInt8(ascii: ":")) else {
            throw WalleError(.invalidArgument, "address \"\(shown)\" is not HOST:PORT")
        }
        let port = bytes[(colon + 1)...]
        guard (1...5).contains(port.count), port.allSatisfy(Self.isDigit),
            let value = Int(String(decoding: port, as: UTF8.self)), (1...65535).contains(value)
        else {
            throw WalleError(.invalidArgument, "address \"\(shown)\": the port is not 1 to 65535")
        }
        guard let host = Self.host(bytes[..<colon]) else {
            throw WalleError(
                .invalidArgument, "address \"\(shown)\": the host is not a DNS name, an IPv4 address or [IPv6]")
        }
        self.host = host
        self.port = value
    }

    /// `HOST:PORT`, brackets around an IPv6 host: parses back to the same address.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)
    }

    /// Letters, digits, `-` and `.` (a name or IPv4), or hex digits, `:` and `.` in brackets
    /// (IPv6); nil for anything else.
    private static func host(_ text: ArraySlice<UInt8>) -> String? {
        if text.first == UInt8(ascii: "[") {
            guard text.count > 2, text.last == UInt8(ascii: "]") else { return nil }
            let inner = text.dropFirst().dropLast()
            let isIPv6 = inner.allSatisfy { byte in
                isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
                    || byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".")
            }
            return isIPv6 ? String(decoding: inner, as: UTF8.self) : nil
        }
        let isName = !text.isEmpty && text.allSatisfy { byte in
            isDigit(byte) || isLetter(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
        return isName ? String(decoding: text, as: UTF8.self) : nil
    }
}
