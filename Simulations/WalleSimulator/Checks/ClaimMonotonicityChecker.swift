import WalleCore
import WalleEnvironment

/// Invariant 5, claim monotonicity: claimed tails grow with writer ids.
struct ClaimMonotonicityChecker {
    func claimed(
        _ uri: StreamURI, _ writer: WriterID, _ tail: Entry, by node: NodeID, claims: ClaimLedger, verdict: Verdict
    ) {
        for other in claims.of(uri) {
            let ordered = other.writer < writer ? other.tail.id <= tail.id : other.tail.id >= tail.id
            if !ordered {
                verdict.fail(
                    .claimMonotonicity, [node],
                    "\(writer) claimed tail \(tail.id) but \(other.writer) claimed \(other.tail.id)")
            }
        }
    }
}
