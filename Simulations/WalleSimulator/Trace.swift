import WalleEnvironment

/// The run's trace: a running hash over every event (always) and readable lines (on replay).
///
/// The hash mixes the fields that decide behaviour (time, node, message kind, ids, checksums)
/// rather than the rendered text, so sweeps pay for no string formatting; a replay prints the
/// text and computes the same hash.
final class Trace {
    private(set) var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    private(set) var eventCount: UInt64 = 0
    var printer: ((String) -> Void)?

    var isPrinting: Bool { printer != nil }

    func mix(_ value: UInt64) {
        hash = (hash ^ value) &* 0x0000_0100_0000_01B3
        hash ^= hash >> 29
    }

    func mixSigned(_ value: Int64) { mix(UInt64(bitPattern: value)) }

    func event(at time: Int64, node: NodeID, kind: UInt64) {
        eventCount += 1
        mixSigned(time)
        mix(node.rawValue)
        mix(kind)
    }

    func line(_ time: Int64, _ text: @autoclosure () -> String) {
        guard let printer else { return }
        printer("\(Duration.nanoseconds(time).formattedMilliseconds.leftPadded(12)) \(text())")
    }

    func mix(_ message: Message) {
        switch message {
        case .claimWriter(let r, _, _, let lease): mix(1); mix(r); mixSigned(lease)
        case .writerStatus(let r, _): mix(2); mix(r)
        case .putEntry(let r, _, let c, let x, let e): mix(3); mix(r); mix(c); mix(x); mix(e)
        case .pollStream(let r, _, let id): mix(4); mix(r); mix(id)
        case .streamEntries(let r, _, let s, let e): mix(5); mix(r); mix(s); mix(e)
        case .streamStatus(let r, _): mix(13); mix(r)
        case .topologyRequest(let r, let request): mix(14); mix(r); mix(UInt64(request.hashTag))
        case .newWriter(let h, let w, _, let lease): mix(6); mix(h); mix(w.ts); mix(w.id); mixSigned(lease)
        case .writerInfo(let h): mix(7); mix(h)
        case .putEntryInternal(let h, let kind, let e, let c, let x):
            mix(8); mix(h); mix(UInt64(kind.hashTag)); mix(e); mix(c); mix(x)
        case .tailEntries(let h): mix(9); mix(h)
        case .restampEntries(let h, let entries): mix(12); mix(h); for e in entries { mix(e) }
        case .readEntries(let h, let s, let e): mix(10); mix(h); mix(s); mix(e)
        case .response(let r, let reply): mix(11); mix(r); mix(reply)
        }
    }

    private func mix(_ header: InternalHeader) {
        mix(header.requestID)
        mix(header.target.rawValue)
        mix(header.streamVersion)
    }

    private func mix(_ entry: Entry) {
        mix(entry.id)
        mix(entry.writerID.ts)
        mix(entry.writerID.id)
        mix(entry.checksum)
    }

    private func mix(_ reply: Reply) {
        switch reply {
        case .ok: mix(20)
        case .claimed(let w, let tail): mix(21); mix(w.ts); mix(w.id); mix(tail)
        case .writerInfo(let info): mix(22); mix(info.writerID.id); mixSigned(info.remainingLeaseMilliseconds)
        case .putAcknowledged(let servers): mix(23); for s in servers { mix(s.rawValue) }
        case .streamStatus(let infos):
            mix(27); for i in infos { mix(i.server.rawValue); mix(i.streamVersion); mix(i.committedID) }
        case .entry(let e): mix(24); mix(e)
        case .entries(let es): mix(25); mix(UInt64(es.count)); if let last = es.last { mix(last) }
        case .failed(let error): mix(26); mix(UInt64(WalleError.Code.allCases.firstIndex(of: error.code)!))
        }
    }
}

extension TopologyRequest {
    var hashTag: Int {
        switch self {
        case .fetch: return 0
        case .createStream: return 1
        case .addMember: return 2
        case .removeMember: return 3
        case .registerServer: return 4
        case .trim: return 5
        }
    }
}

extension PutKind {
    var hashTag: Int {
        switch self {
        case .write: return 1
        case .claimAlign: return 2
        case .claimCommit: return 4
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

extension NodeID {
    /// A simulated client's id: the client bit and a small number (c100, c900, ...).
    static func client(_ number: UInt64) -> NodeID { NodeID(NodeID.clientBit | number) }
}
