#if canImport(Glibc)
    import Glibc
#endif
import WalleEnvironment
import WalleWire

/// Prints the message the core was handling when the process trapped: its wire frame in hex
/// (a regression test decodes it with `Wire.decode`), the identity it claimed, and the command
/// that replays the run up to it. A trap raises SIGILL or SIGTRAP; the handler writes with
/// `write(2)` only, from buffers filled before each message.
public enum CrashReport {
    nonisolated(unsafe) private static var frame = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
    nonisolated(unsafe) private static var frameLength = 0
    nonisolated(unsafe) private static var messageIndex = 0
    nonisolated(unsafe) private static var source: UInt64 = 0
    nonisolated(unsafe) private static var seed: UInt64 = 0
    /// Set while the harness runs what follows a message (self-messages, timers, disk
    /// completions, a restart): a trap there was caused by some earlier message.
    nonisolated(unsafe) static var afterMessage = false
    /// Frames longer than this are cut in the report (only oversized entries are).
    static let capacity = 2 << 20

    public static func install(seed: UInt64) {
        Self.seed = seed
        for signal in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in CrashReport.report(signal) }
            sigaction(signal, &action, nil)
        }
    }

    /// Called before each message: the report shows this one if the core traps on it.
    public static func record(_ message: Message, from node: NodeID, index: Int) {
        let bytes = Wire.encode(.message(message))
        frameLength = min(bytes.count, capacity)
        bytes.withUnsafeBufferPointer { frame.update(from: $0.baseAddress!, count: frameLength) }
        messageIndex = index
        source = node.rawValue
    }

    private static func report(_ signal: Int32) {
        put("\nwalle-fuzz: the core trapped (signal ")
        putDecimal(UInt64(signal))
        put(afterMessage ? ") in the timers, disk completions or self-messages after message " : ") on message ")
        putDecimal(UInt64(messageIndex))
        put(" of seed ")
        putDecimal(seed)
        put(", sent by node ")
        putDecimal(source)
        put("\nframe (hex): ")
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var line = [UInt8](repeating: 0, count: 2)
        for index in 0..<frameLength {
            line[0] = digits[Int(frame[index] >> 4)]
            line[1] = digits[Int(frame[index] & 15)]
            _ = write(2, line, 2)
        }
        put("\nreplay: walle-fuzz core --seed ")
        putDecimal(seed)
        put(" --messages ")
        putDecimal(UInt64(messageIndex))
        put("\n")
        Glibc.signal(signal, SIG_DFL)
        raise(signal)
    }

    private static func put(_ text: StaticString) {
        _ = write(2, text.utf8Start, text.utf8CodeUnitCount)
    }

    private static func putDecimal(_ value: UInt64) {
        var digits = [UInt8](repeating: 0, count: 20)
        var index = 20
        var rest = value
        repeat {
            index -= 1
            digits[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        } while rest > 0
        digits.withUnsafeBufferPointer { _ = write(2, $0.baseAddress! + index, 20 - index) }
    }
}
