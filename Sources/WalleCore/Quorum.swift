import WalleEnvironment

/// Counts answers from a fan-out to every member ([BC-2], [BC-3]).
///
/// Success as soon as a majority succeeded; failure as soon as a majority can no longer be
/// reached. Decides at most once.
struct Quorum {
    enum Decision {
        case succeeded([NodeID])
        case failed(WalleError)
    }

    let memberCount: Int
    private(set) var succeeded: [NodeID] = []
    private var failureCount = 0
    private var error: WalleError?
    private(set) var isDecided = false

    init(memberCount: Int) {
        precondition(memberCount > 0)
        self.memberCount = memberCount
    }

    var majority: Int { memberCount / 2 + 1 }

    mutating func recordSuccess(_ node: NodeID) -> Decision? {
        guard !isDecided else { return nil }
        precondition(!succeeded.contains(node), "one answer per member")
        succeeded.append(node)
        guard succeeded.count >= majority else { return nil }
        isDecided = true
        return .succeeded(succeeded)
    }

    /// A final error (FailedPrecondition, InvalidArgument) outranks any other; otherwise the
    /// latest error wins.
    mutating func recordFailure(_ failure: WalleError) -> Decision? {
        guard !isDecided else { return nil }
        failureCount += 1
        if failure.isFinal || !(error?.isFinal ?? false) { error = failure }
        guard failureCount > memberCount - majority, let error else { return nil }
        isDecided = true
        return .failed(error)
    }
}
