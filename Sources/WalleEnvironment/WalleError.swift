/// A protocol error with a code that tells the caller what to do, and a message for people.
///
/// Only `failedPrecondition`, `invalidArgument` and `permissionDenied` are final
/// (docs/protocol.md, "Errors"): clients do not retry them and a writer closes on one.
/// Everything else is worth retrying.
public struct WalleError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        case invalidArgument
        case failedPrecondition
        case notFound
        case outOfRange
        case dataLoss
        case `internal`
        case unavailable
        case resourceExhausted
        case deadlineExceeded
        /// The sender's role may not send this (a client sending a server-to-server message).
        case permissionDenied
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var isFinal: Bool {
        code == .failedPrecondition || code == .invalidArgument || code == .permissionDenied
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
