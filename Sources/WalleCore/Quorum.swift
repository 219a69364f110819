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
    private var failed: [NodeID] = []
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
    mutating func recordFailure(_ failure: WalleError, from node: NodeID) -> Decision? {
        guard !isDecided else { return nil }
        precondition(!failed.contains(node) && !succeeded.contains(node), "one answer per member")
        failed.append(node)
        if failure.isFinal || !(error?.isFinal ?? false) { error = failure }
        guard failed.count > memberCount - majority, let error else { return nil }
        isDecided = true
        return .failed(error)
    }

    /// After a failure: fails now if a majority is out of reach once the members that have
    /// not answered and are presumed down count as failures. Waiting for their timeouts
    /// gains nothing, and it costs a put a whole `callTimeout`: in a four-member list with
    /// one dead member, a put that one live member refused (its predecessor had not arrived
    /// yet) held its writer's retry that long, the next put met the same refusal, and the
    /// stream committed one entry per `callTimeout` (seed 18394 under high load during a
    /// replacement). Failing early is safe: a failed put is retried, and the same entry is
    /// the same entry.
    mutating func failIfOutOfReach(members: [NodeID], presumedDown: Set<NodeID>) -> Decision? {
        guard !isDecided, let error, !presumedDown.isEmpty else { return nil }
        precondition(members.count == memberCount)
        let silent = members.count { presumedDown.contains($0) && !failed.contains($0) && !succeeded.contains($0) }
        guard failed.count + silent > memberCount - majority else { return nil }
        isDecided = true
        return .failed(error)
    }
}
