import WalleEnvironment

/// The boundary: every field of a request that arrives from the network is checked here,
/// before any handler acts on it (docs/wire-format.md, "Field rules"). A failed check answers
/// a typed error that names the field and its value, and changes nothing.
///
/// These are the checks that need no state. What depends on the member's state (an entry id
/// against the window, a writer id against the installed one) is checked by the handlers, and
/// the ranges enforced here are what keep their arithmetic (`id + 1`, `version + 1`) in bounds.
struct Boundary {
    let configuration: ServerConfiguration

    /// Role first ([ROLE-1]): a client may send only the public requests. Then the fields.
    func check(_ message: Message, from source: NodeID) -> WalleError? {
        if message.isInternalRequest && !source.isServer {
            return WalleError(
                .permissionDenied, "\(message.kindName) is a server-to-server message; \(source) is not a server")
        }
        switch message {
        case .claimWriter(_, _, let address, let lease):
            return checkClaim(address: address, leaseMilliseconds: lease)
        case .putEntry(_, let uri, let committedID, _, let entry):
            return checkPut(entry, kind: .write, committedID: committedID, committedChecksum: nil)
                ?? checkRootEntries(uri, [entry])
        case .pollStream(_, _, let pollEntryID):
            return checkEntryID(pollEntryID, "poll entry id")
        case .streamEntries(_, _, let start, let end), .readEntries(_, let start, let end):
            return checkRange(start: start, end: end)
        case .newWriter(let header, let writer, let address, let lease):
            return checkHeader(header) ?? checkWriter(writer, "writer id")
                ?? checkClaim(address: address, leaseMilliseconds: lease)
        case .putEntryInternal(let header, let kind, let entry, let committedID, let committedChecksum):
            return checkHeader(header)
                ?? checkPut(entry, kind: kind, committedID: committedID, committedChecksum: committedChecksum)
                ?? checkRootEntries(header.stream, [entry])
        case .restampEntries(let header, let entries):
            return checkHeader(header) ?? checkRestamp(entries) ?? checkRootEntries(header.stream, entries)
        case .writerInfo(let header), .tailEntries(let header):
            return checkHeader(header)
        case .topologyRequest(_, let request):
            return Self.checkTopologyRequest(request)
        case .writerStatus, .streamStatus, .response:
            return nil
        }
    }

    /// Streams under this prefix are the cluster's own (the root stream): no request creates one.
    static let reservedPrefix = "/cluster/"

    /// A request to the topology manager: server ids that can be members, 1 to
    /// `Topology.membersMax` distinct members for a new stream, no new stream under
    /// `reservedPrefix`. Whether the stream exists is the manager's to say (NotFound).
    static func checkTopologyRequest(_ request: TopologyRequest) -> WalleError? {
        switch request {
        case .fetch:
            return nil
        case .createStream(let uri, let members):
            guard !uri.rawValue.hasPrefix(reservedPrefix) else {
                return WalleError(.invalidArgument, "\(uri) is under \(reservedPrefix), reserved for the cluster")
            }
            guard members.count >= 1, members.count <= Topology.membersMax else {
                return WalleError(
                    .invalidArgument, "members: \(members.count) given, a stream has 1 to \(Topology.membersMax)")
            }
            guard Set(members).count == members.count else {
                return WalleError(.invalidArgument, "members: \(members.map(\.short)) names a server twice")
            }
            return members.lazy.compactMap { checkServer($0, "member") }.first
        case .addMember(_, let node), .removeMember(_, let node):
            return checkServer(node, "member")
        case .registerServer(let node, let address):
            return checkServer(node, "server") ?? checkAddress(address)
        case .trim(_, let first):
            // Entry 0 is every stream's start: a trim names a real entry.
            guard first >= 1, first <= ProtocolBounds.entryIDMax else {
                return WalleError(
                    .invalidArgument, "first entry \(first) is not from 1 to \(ProtocolBounds.entryIDMax)")
            }
            return nil
        }
    }

    /// A server's address as it registers it (`ServerAddress`).
    static func checkAddress(_ address: String) -> WalleError? {
        do {
            _ = try ServerAddress(parsing: address)
            return nil
        } catch {
            return error
        }
    }

    static func checkServer(_ node: NodeID, _ field: String) -> WalleError? {
        guard node.isServer else {
            return WalleError(.invalidArgument, "\(field) \(node) is not a server id (zero, or a client's)")
        }
        return nil
    }

    func checkEntryID(_ id: EntryID, _ field: String) -> WalleError? {
        guard id <= ProtocolBounds.entryIDMax else {
            return WalleError(.invalidArgument, "\(field) \(id) is above the limit \(ProtocolBounds.entryIDMax)")
        }
        return nil
    }

    /// `start` must name an entry; `end` may be anything above it (reads stop at the committed
    /// id, so a huge end means "as far as there is").
    func checkRange(start: EntryID, end: EntryID) -> WalleError? {
        if let error = checkEntryID(start, "start") { return error }
        guard start < end else {
            return WalleError(.invalidArgument, "start \(start) must be below end \(end)")
        }
        return nil
    }

    func checkWriter(_ writer: WriterID, _ field: String) -> WalleError? {
        guard !writer.isZero else {
            return WalleError(.invalidArgument, "\(field) is the zero writer id, which never writes (WS-9)")
        }
        guard writer.ts <= ProtocolBounds.writerTimestampMax else {
            return WalleError(
                .invalidArgument, "\(field) \(writer) has ts \(writer.ts), above \(ProtocolBounds.writerTimestampMax)")
        }
        return nil
    }

    func checkHeader(_ header: InternalHeader) -> WalleError? {
        guard header.streamVersion <= ProtocolBounds.versionMax else {
            return WalleError(
                .invalidArgument, "stream version \(header.streamVersion) is above \(ProtocolBounds.versionMax)")
        }
        return nil
    }

    /// [CLAIM-0]: a non-empty address of bounded length, a lease within the configured bounds
    /// (upstream has no upper bound, WS-8; lease 0 is refused: it would let a claim skip the
    /// previous writer's lease on every member).
    func checkClaim(address: String, leaseMilliseconds: Int64) -> WalleError? {
        let addressBytes = address.utf8.count
        guard addressBytes > 0, addressBytes <= ProtocolBounds.writerAddressBytesMax else {
            return WalleError(
                .invalidArgument,
                "writer address is \(addressBytes) bytes; it must be 1 to \(ProtocolBounds.writerAddressBytesMax)")
        }
        let low = configuration.leaseMin.milliseconds
        let high = configuration.leaseMax.milliseconds
        guard leaseMilliseconds >= low, leaseMilliseconds <= high else {
            return WalleError(.invalidArgument, "lease \(leaseMilliseconds)ms is outside [\(low), \(high)]ms")
        }
        return nil
    }

    /// An entry and the commit marker that rides with it.
    /// - Entry 0 is only ever a heartbeat (empty, checksum 0) or, in a claim, Entry0 itself.
    /// - Every other entry carries a writer id; the zero id never writes (WS-9).
    /// - A writer's marker lies below its entry: nobody declares its own entry committed
    ///   (WS-10). A claim's put carries the entry it commits as its marker.
    func checkPut(_ entry: Entry, kind: PutKind, committedID: EntryID, committedChecksum: UInt64?) -> WalleError? {
        if let error = checkEntryID(entry.id, "entry id") { return error }
        if !configuration.plantedBugIsActive(.uncheckedMarkerBound),
            let error = checkEntryID(committedID, "committed id")
        {
            return error
        }
        guard entry.data.count <= Entry.dataSizeMax else {
            return WalleError(
                .invalidArgument, "entry \(entry.id) has \(entry.data.count) bytes, limit is \(Entry.dataSizeMax)")
        }
        if entry.id == 0, !entry.data.isEmpty || entry.checksum != 0 {
            return WalleError(.invalidArgument, "entry 0 carries no data and checksum 0 (a heartbeat or Entry0)")
        }
        let zeroAllowed = entry.writerID.isZero && configuration.plantedBugIsActive(.acceptZeroWriter)
        if !zeroAllowed, let error = checkWriter(entry.writerID, "entry \(entry.id)'s writer id") {
            return error
        }
        if kind.isCommitted {
            guard committedID == entry.id, committedChecksum == entry.checksum else {
                return WalleError(
                    .invalidArgument, "a claim's put commits its own entry \(entry.id), not \(committedID)")
            }
        } else if entry.id > 0 && committedID >= entry.id {
            return WalleError(
                .invalidArgument, "committed id \(committedID) must be below the entry id \(entry.id) (WS-10)")
        }
        return nil
    }

    /// [TOPO-2]: every entry of the root stream above Entry0 is a topology whose version is its
    /// entry id, so a forged or bent put cannot leave an entry there that no server or client
    /// can read (a claim of the root would commit it). Heartbeats (entry 0) carry no data.
    func checkRootEntries(_ uri: StreamURI, _ entries: [Entry]) -> WalleError? {
        guard uri == configuration.topologySource?.rootStream else { return nil }
        for entry in entries where entry.id > 0 {
            do {
                _ = try Topology.decode(entry.data, entryID: entry.id)
            } catch {
                return WalleError(.invalidArgument, "root entry \(entry.id) is not a topology: \(error.message)")
            }
        }
        return nil
    }

    /// Claim phase 4: one writer's dense run of entries above Entry0, at most a window's worth.
    func checkRestamp(_ entries: [Entry]) -> WalleError? {
        guard let first = entries.first else {
            return WalleError(.invalidArgument, "a re-stamp carries at least one entry")
        }
        guard UInt64(entries.count) <= configuration.uncommittedEntriesMax + 1 else {
            return WalleError(
                .invalidArgument,
                "a re-stamp of \(entries.count) entries exceeds the window of \(configuration.uncommittedEntriesMax)")
        }
        guard first.id > 0 else { return WalleError(.invalidArgument, "a re-stamp never carries Entry0") }
        for (offset, entry) in entries.enumerated() {
            if let error = checkPut(entry, kind: .write, committedID: 0, committedChecksum: nil) { return error }
            guard entry.writerID == first.writerID, entry.id == first.id + UInt64(offset) else {
                return WalleError(
                    .invalidArgument,
                    "re-stamped entries are one writer's consecutive ids; entry \(entry.id) at \(offset) is not")
            }
        }
        return nil
    }
}

// MARK: - Replies

extension Boundary {
    /// A member's answer to WriterInfo, checked before it is merged or adopted.
    func checkInfo(_ info: WriterInfo) -> WalleError? {
        if !info.writerID.isZero, let error = checkWriter(info.writerID, "reported writer id") { return error }
        if let error = checkEntryID(info.committedID, "reported committed id")
            ?? checkEntryID(info.tailID, "reported tail id")
        {
            return error
        }
        guard info.tailID >= info.committedID else {
            return WalleError(.invalidArgument, "reported tail \(info.tailID) is below committed \(info.committedID)")
        }
        guard info.leaseMilliseconds >= 0, info.leaseMilliseconds <= configuration.leaseMax.milliseconds else {
            return WalleError(
                .invalidArgument,
                "reported lease \(info.leaseMilliseconds)ms is outside [0, \(configuration.leaseMax.milliseconds)]ms")
        }
        guard info.streamVersion <= ProtocolBounds.versionMax else {
            return WalleError(
                .invalidArgument, "reported stream version \(info.streamVersion) is above \(ProtocolBounds.versionMax)")
        }
        return nil
    }

    /// Entries a peer sent (tails, reads): ascending, dense, within the id bound. Their
    /// content is proven by the caller against checksums it trusts.
    func checkEntries(_ entries: [Entry]) -> WalleError? {
        for (offset, entry) in entries.enumerated() {
            if let error = checkEntryID(entry.id, "answered entry id") { return error }
            guard entry.data.count <= Entry.dataSizeMax else {
                return WalleError(.invalidArgument, "answered entry \(entry.id) has \(entry.data.count) bytes")
            }
            guard offset == 0 || entry.id == entries[offset - 1].id + 1 else {
                return WalleError(.invalidArgument, "answered entries are not consecutive at \(entry.id)")
            }
        }
        return nil
    }
}

extension Boundary {
    /// What a call may be answered with; anything else becomes an InvalidArgument failure.
    func checkReply(_ reply: Reply, for purpose: CallPurpose, from source: NodeID) -> Reply {
        let problem: WalleError?
        switch (purpose, reply) {
        case (_, .failed):
            problem = nil
        case (.claim(_, _, .tails), .entries(let entries)):
            problem = entries.isEmpty
                ? WalleError(.invalidArgument, "an empty tail")
                : checkEntries(entries) ?? checkRootEntries(purpose.stream, entries)
        case (.claim(_, _, .newWriter), .ok), (.claim(_, _, .align), .ok), (.claim(_, _, .restamp), .ok),
            (.claim(_, _, .commit), .ok), (.coordination, .ok):
            problem = nil
        case (.coordination, .writerInfo(let info)), (.writerCatchUp, .writerInfo(let info)),
            (.tailProbe, .writerInfo(let info)):
            // The reported server is the one that answered: a StreamStatus round calls it back.
            let otherServer = WalleError(.invalidArgument, "reported server \(info.server) is another")
            problem = checkInfo(info) ?? (info.server == source ? nil : otherServer)
        case (.fastForward, .entries(let entries)), (.backfill, .entries(let entries)),
            (.pull, .entries(let entries)):
            problem = checkEntries(entries) ?? checkRootEntries(purpose.stream, entries)
        default:
            problem = WalleError(.invalidArgument, "not an answer to this call")
        }
        guard let problem else { return reply }
        return .failed(WalleError(problem.code, "\(source) answered \(reply): \(problem.message)"))
    }
}
