import WalleCore
import WalleEnvironment

/// Hostile input is refused: a request invalid by construction gets a refusal with the code
/// the boundary documents, and a heartbeat whose commit marker cannot be true is not answered
/// OK ("hostile-acknowledged", design brief §5).
struct HostileAnswerChecker {
    /// A heartbeat a member must refuse, between its delivery and the member's answer.
    private var refusalExpected: (key: DurabilityChecker.CallKey, detail: String)?

    func answered(
        _ expectation: HostileExpectation, _ what: String, _ reply: Reply, client: NodeID, server: NodeID,
        verdict: Verdict
    ) {
        guard case .refused(let codes) = expectation else { return }
        guard case .failed(let error) = reply else {
            verdict.fail(.hostileAcknowledged, [server, client], "\(what) was answered \(reply), not refused")
            return
        }
        if let codes, !codes.contains(error.code) {
            verdict.fail(
                .hostileAcknowledged, [server, client],
                "\(what) was refused with \(error), expected \(codes.map(\.rawValue).sorted())")
        }
    }

    /// Before member `member` handles `message`: if it is a heartbeat whose commit marker
    /// differs from the member's own entry at that id (the committed one, or one a writer not
    /// older than the heartbeat's wrote), the marker cannot be true and the member must refuse
    /// it. Checked for every heartbeat, honest or hostile; hostile clients forge such markers.
    mutating func heartbeatArriving(
        _ message: Message, from source: NodeID, at member: NodeID, window: (StreamURI) -> [Entry]?
    ) {
        refusalExpected = nil
        guard case .putEntryInternal(let header, .write, let beat, let markerID, let markerChecksum) = message,
            beat.id == 0, header.target == member, let window = window(header.stream),
            let first = window.first, markerID >= first.id, markerID - first.id < UInt64(window.count)
        else { return }
        let local = window[Int(markerID - first.id)]
        guard local.checksum != markerChecksum, markerID == first.id || local.writerID >= beat.writerID else { return }
        refusalExpected = (
            DurabilityChecker.CallKey(coordinator: source, member: member, requestID: header.requestID),
            "\(member.short) answered ok to a heartbeat of \(beat.writerID) on \(header.stream) whose commit marker "
                + "\(markerID) (xx=\(hex16(markerChecksum).prefix(8))) differs from its \(local.brief)")
    }

    mutating func heartbeatHandled() { refusalExpected = nil }

    /// A member's answer leaving: an OK to the heartbeat it had to refuse is a violation.
    func responded(_ key: DurabilityChecker.CallKey, _ reply: Reply, verdict: Verdict) {
        if let expected = refusalExpected, expected.key == key, case .ok = reply {
            verdict.fail(.hostileAcknowledged, [key.member, key.coordinator], expected.detail)
        }
    }
}
