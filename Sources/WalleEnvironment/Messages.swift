/// Correlates a response with its request. Unique per sender; the receiver echoes it.
public typealias RequestID = UInt64

/// The membership of one stream at one version ([TOPO-4]).
public struct StreamTopology: Hashable, Sendable {
    public var version: UInt64
    /// Sorted, no duplicates.
    public var members: [NodeID]

    public init(version: UInt64, members: [NodeID]) {
        self.version = version
        self.members = members.sorted()
    }

    /// floor(n/2)+1.
    public var majority: Int { members.count / 2 + 1 }

    public func contains(_ node: NodeID) -> Bool { members.contains(node) }
}

/// Prefix of every server-to-server request ([HDR-*]).
public struct InternalHeader: Hashable, Sendable {
    public var requestID: RequestID
    public var stream: StreamURI
    /// The server the sender means to reach; a replaced node with a reused address says no.
    public var target: NodeID
    public var streamVersion: UInt64

    public init(requestID: RequestID, stream: StreamURI, target: NodeID, streamVersion: UInt64) {
        self.requestID = requestID
        self.stream = stream
        self.target = target
        self.streamVersion = streamVersion
    }
}

/// Why a server-to-server put was sent. Only claims may send committed puts: a public
/// PutEntry can never ask a member to treat its entry as committed (closes WS-10).
public enum PutKind: Hashable, Sendable {
    /// A writer's put (entry id > 0) or heartbeat (entry id 0), forwarded by a coordinator.
    case write
    /// Claim phase 2: spread an entry already committed somewhere; keeps its old writer id.
    case claimAlign
    /// Claim phase 5: commit the winning tail under the new writer id.
    case claimCommit

    /// Puts that carry an entry known to be committed skip the writer check (docs/protocol.md,
    /// "ClaimWriter", phases 2 and 5).
    public var isCommitted: Bool { self == .claimAlign || self == .claimCommit }
}

/// Every message Walle sends. Public requests come from clients; internal ones from servers.
public enum Message: Sendable {
    // Public API.
    case claimWriter(RequestID, StreamURI, writerAddress: String, leaseMilliseconds: Int64)
    case writerStatus(RequestID, StreamURI)
    case putEntry(RequestID, StreamURI, committedID: EntryID, committedChecksum: UInt64, Entry)
    case pollStream(RequestID, StreamURI, pollEntryID: EntryID)
    case streamEntries(RequestID, StreamURI, start: EntryID, end: EntryID)
    /// Every member's view of the stream (version, committed id, gap), for the topology
    /// manager's waits ([MEM-4]).
    case streamStatus(RequestID, StreamURI)
    /// A request to the topology manager (the writer of the root stream); answered with the
    /// root entry that holds the resulting topology, once it is committed.
    case topologyRequest(RequestID, TopologyRequest)
    // Internal API.
    case newWriter(InternalHeader, WriterID, writerAddress: String, leaseMilliseconds: Int64)
    case writerInfo(InternalHeader)
    case putEntryInternal(
        InternalHeader, PutKind, Entry, committedID: EntryID, committedChecksum: UInt64)
    case tailEntries(InternalHeader)
    /// Claim phase 4: the winning chain from the first entry this member lacks, stamped with
    /// the new writer id, applied all or nothing (see `ServerCore.memberRestamp`).
    case restampEntries(InternalHeader, [Entry])
    case readEntries(InternalHeader, start: EntryID, end: EntryID)
    // Every answer, public or internal.
    case response(RequestID, Reply)
}

/// What an operator or a client asks of the topology manager. Each is idempotent: asking again
/// for what is already so answers at once with the current topology.
public enum TopologyRequest: Hashable, Sendable, CustomStringConvertible {
    /// The newest committed topology.
    case fetch
    /// A new stream with these members, each a server id (1 to 16, distinct).
    case createStream(StreamURI, members: [NodeID])
    /// One more member ([MEM-2]: one change at a time).
    case addMember(StreamURI, NodeID)
    /// One member less; the manager waits until the remaining members hold what was
    /// acknowledged (WS-3).
    case removeMember(StreamURI, NodeID)
    /// A server says where it listens (`[MEM-1]`); only the server itself may ask.
    case registerServer(NodeID, address: String)
    /// The stream's new first entry: members delete what lies below it. It must be committed
    /// (at most the committed id a member reports), and a first entry never moves down.
    case trim(StreamURI, firstEntryID: EntryID)

    public var description: String {
        switch self {
        case .fetch: return "fetch"
        case .createStream(let uri, let members): return "create \(uri) \(members.map(\.short))"
        case .addMember(let uri, let node): return "add \(node.short) to \(uri)"
        case .removeMember(let uri, let node): return "remove \(node.short) from \(uri)"
        case .registerServer(let node, let address): return "register \(node.short) at \(address)"
        case .trim(let uri, let first): return "trim \(uri) below \(first)"
        }
    }
}

/// What a response carries. The requester knows which request it answers.
public enum Reply: Sendable {
    case ok
    case claimed(WriterID, tail: Entry)
    case writerInfo(WriterInfo)
    case streamStatus([WriterInfo])
    case putAcknowledged(servers: [NodeID])
    case entry(Entry)
    case entries([Entry])
    case failed(WalleError)
}

/// One member's view of a stream's writer (docs/protocol.md, "Reads" and "WriterInfo catch-up").
public struct WriterInfo: Hashable, Sendable {
    public var writerID: WriterID
    public var writerAddress: String
    public var leaseMilliseconds: Int64
    public var remainingLeaseMilliseconds: Int64
    public var streamVersion: UInt64
    /// The answering member, its committed id, and whether it still has a gap to backfill.
    public var server: NodeID
    public var committedID: EntryID
    /// The member's last entry, committed or not, and the writer that wrote or re-stamped it.
    public var tailID: EntryID
    public var tailWriterID: WriterID
    public var hasGap: Bool

    public init(
        writerID: WriterID, writerAddress: String, leaseMilliseconds: Int64,
        remainingLeaseMilliseconds: Int64, streamVersion: UInt64,
        server: NodeID = NodeID(0), committedID: EntryID = 0, tailID: EntryID = 0, tailWriterID: WriterID = .zero,
        hasGap: Bool = false
    ) {
        self.writerID = writerID
        self.writerAddress = writerAddress
        self.leaseMilliseconds = leaseMilliseconds
        self.remainingLeaseMilliseconds = remainingLeaseMilliseconds
        self.streamVersion = streamVersion
        self.server = server
        self.committedID = committedID
        self.tailID = tailID
        self.tailWriterID = tailWriterID
        self.hasGap = hasGap
    }
}

extension Message: CustomStringConvertible {
    /// One line, no payload bytes: used in traces, so it must be the same on every platform.
    public var description: String {
        switch self {
        case .claimWriter(let r, let s, let addr, let lease):
            return "ClaimWriter#\(r) \(s) addr=\(addr) lease=\(lease)ms"
        case .writerStatus(let r, let s):
            return "WriterStatus#\(r) \(s)"
        case .putEntry(let r, let s, let c, _, let e):
            return "PutEntry#\(r) \(s) \(e.brief) committed=\(c)"
        case .pollStream(let r, let s, let id):
            return "PollStream#\(r) \(s) from=\(id)"
        case .streamEntries(let r, let s, let start, let end):
            return "StreamEntries#\(r) \(s) [\(start),\(end))"
        case .streamStatus(let r, let s):
            return "StreamStatus#\(r) \(s)"
        case .topologyRequest(let r, let request):
            return "TopologyRequest#\(r) \(request)"
        case .newWriter(let h, let w, let addr, let lease):
            return "NewWriter#\(h.requestID) \(h.stream) \(w) addr=\(addr) lease=\(lease)ms"
        case .writerInfo(let h):
            return "WriterInfo#\(h.requestID) \(h.stream)"
        case .putEntryInternal(let h, let kind, let e, let c, _):
            return "PutEntryInternal#\(h.requestID) \(h.stream) \(kind) \(e.brief) committed=\(c)"
        case .tailEntries(let h):
            return "TailEntries#\(h.requestID) \(h.stream)"
        case .restampEntries(let h, let entries):
            return "RestampEntries#\(h.requestID) \(h.stream) "
                + "[\(entries.first?.brief ?? "")...\(entries.last?.id ?? 0)]"
        case .readEntries(let h, let start, let end):
            return "ReadEntries#\(h.requestID) \(h.stream) [\(start),\(end))"
        case .response(let r, let reply):
            return "Reply#\(r) \(reply)"
        }
    }
}

extension Reply: CustomStringConvertible {
    public var description: String {
        switch self {
        case .ok: return "ok"
        case .claimed(let w, let tail): return "claimed \(w) tail=\(tail.brief)"
        case .writerInfo(let i):
            return "writer \(i.writerID) remaining=\(i.remainingLeaseMilliseconds)ms v\(i.streamVersion)"
        case .putAcknowledged(let servers): return "acked by \(servers.count)"
        case .streamStatus(let infos):
            return "status " + infos.map {
                "\($0.server.rawValue):v\($0.streamVersion)/c\($0.committedID)/t\($0.tailID)\($0.hasGap ? "/gap" : "")"
            }.joined(separator: " ")
        case .entry(let e): return "entry \(e.brief)"
        case .entries(let es):
            guard let first = es.first, let last = es.last else { return "entries []" }
            return "entries [\(first.id)...\(last.id)]"
        case .failed(let error): return "failed \(error)"
        }
    }
}

extension Entry {
    /// "e12(w5.1a2b3c,xx=9f00..,4B)": enough to follow a trace without the payload.
    public var brief: String {
        "e\(id)(\(writerID),xx=\(hex16(checksum).prefix(8)),\(data.count)B)"
    }
}

// MARK: - Roles

extension Message {
    public var isResponse: Bool {
        if case .response = self { return true }
        return false
    }

    /// Server-to-server requests: only a server may send them (docs/wire-format.md, "Roles").
    public var isInternalRequest: Bool {
        switch self {
        case .newWriter, .writerInfo, .putEntryInternal, .tailEntries, .restampEntries, .readEntries: return true
        case .claimWriter, .writerStatus, .putEntry, .pollStream, .streamEntries, .streamStatus, .topologyRequest,
            .response:
            return false
        }
    }

    /// Requests a client may send: the public API.
    public var isPublicRequest: Bool {
        switch self {
        case .claimWriter, .writerStatus, .putEntry, .pollStream, .streamEntries, .streamStatus, .topologyRequest:
            return true
        case .newWriter, .writerInfo, .putEntryInternal, .tailEntries, .restampEntries, .readEntries, .response:
            return false
        }
    }

    /// The request id the sender expects its answer under.
    public var requestID: RequestID {
        switch self {
        case .claimWriter(let r, _, _, _), .writerStatus(let r, _), .putEntry(let r, _, _, _, _),
            .pollStream(let r, _, _), .streamEntries(let r, _, _, _), .streamStatus(let r, _),
            .topologyRequest(let r, _), .response(let r, _):
            return r
        case .newWriter(let h, _, _, _), .writerInfo(let h), .putEntryInternal(let h, _, _, _, _), .tailEntries(let h),
            .restampEntries(let h, _), .readEntries(let h, _, _):
            return h.requestID
        }
    }

    /// The stream a request is about (nil for a response, and for a topology request: it goes to
    /// the manager, whatever stream it names).
    public var stream: StreamURI? {
        switch self {
        case .claimWriter(_, let s, _, _), .writerStatus(_, let s), .putEntry(_, let s, _, _, _),
            .pollStream(_, let s, _), .streamEntries(_, let s, _, _), .streamStatus(_, let s):
            return s
        case .newWriter(let h, _, _, _), .writerInfo(let h), .putEntryInternal(let h, _, _, _, _), .tailEntries(let h),
            .restampEntries(let h, _), .readEntries(let h, _, _):
            return h.stream
        case .topologyRequest, .response:
            return nil
        }
    }

    /// The message's name as the protocol reference spells it.
    public var kindName: String {
        switch self {
        case .claimWriter: return "ClaimWriter"
        case .writerStatus: return "WriterStatus"
        case .putEntry: return "PutEntry"
        case .pollStream: return "PollStream"
        case .streamEntries: return "StreamEntries"
        case .streamStatus: return "StreamStatus"
        case .topologyRequest: return "TopologyRequest"
        case .newWriter: return "NewWriter"
        case .writerInfo: return "WriterInfo"
        case .putEntryInternal: return "PutEntryInternal"
        case .tailEntries: return "TailEntries"
        case .restampEntries: return "RestampEntries"
        case .readEntries: return "ReadEntries"
        case .response: return "Response"
        }
    }
}
