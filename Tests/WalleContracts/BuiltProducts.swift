import Foundation
import WalleEnvironment

/// An executable of this package, built next to the test bundle (`swift build` builds them).
public func builtProduct(_ name: String) throws -> URL {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    throw WalleError(.notFound, "\(name) was not built next to the tests; run `swift build` first")
}
