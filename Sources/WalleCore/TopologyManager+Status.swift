import WalleEnvironment

extension TopologyManager {
    /// Why a trim cannot be made, from the members' StreamStatus answers: a first entry above
    /// every committed id a majority at the current version reports. Nil for any other change,
    /// for a trim within the committed log, and while the answers are too few to tell.
    /// Committed ids only grow, so a refusal is final for this request; the client may ask
    /// again once more is committed.
    func trimRefusal(_ change: TopologyChange, _ infos: [WriterInfo], in topology: Topology) -> WalleError? {
        guard case .trim(let uri, let first) = change, let stream = topology.streams[uri] else { return nil }
        let current = infos.filter { stream.contains($0.server) && $0.streamVersion == stream.version }
        guard current.count >= stream.majority else { return nil }
        let committed = current.map(\.committedID).max() ?? 0
        guard first > committed else { return nil }
        return WalleError(
            .outOfRange, "first entry \(first) is past the committed id \(committed) of \(uri); trim at most that")
    }

    /// Whether `change` may be made now, from the members' StreamStatus answers, and the removal
    /// target to keep for the next round.
    func ready(
        _ change: TopologyChange, _ infos: [WriterInfo], in topology: Topology, removalTarget: SettledTarget?
    ) -> (Bool, SettledTarget?) {
        if change.isWrittenAtOnce { return (true, removalTarget) }
        guard let uri = change.uri, let stream = topology.streams[uri] else { return (false, removalTarget) }
        let current = infos.filter { stream.contains($0.server) && $0.streamVersion == stream.version }
        guard current.count >= stream.majority else { return (false, removalTarget) }
        // A trim past the committed id was refused before this (`trimRefusal`, on the same
        // answers), so any other change but a removal may be made now.
        guard case .remove(_, let leaving) = change else { return (true, removalTarget) }
        let remaining = stream.members.filter { $0 != leaving }
        // Fixed at the first answer with a majority on the current version: entries
        // acknowledged under the previous list all precede it (members refuse the puts
        // still queued when they learn a version), while later ones are on a
        // majority of the current list, which the remaining members meet. A target that
        // followed the tail would chase a busy writer past slow members forever.
        let target = removalTarget ?? Self.settled(infos)
        let caughtUp = current.filter { info in
            guard remaining.contains(info.server), !info.hasGap else { return false }
            // The tail must carry the newest writer's stamp (or a newer one) through the target.
            // Holding that writer's chain is as good as having it committed: a writer writes
            // each id once, and a member only takes an entry that chains onto its own previous
            // one. Having committed through the target under an older stamp is not enough: the
            // stamp of the newest claim is what fences older writers' unacknowledged entries
            // above its tail, and removing one of its two holders lost it (seeds 9760 and
            // 11348). Members take a newer stamp from a peer after a StreamStatus round
            // (`ServerCore.pullNewerStamp`), so an idle stream gets there too.
            return info.tailWriterID >= target.newestWriter && info.tailID >= target.id
        }
        return (caughtUp.count >= remaining.count / 2 + 1, target)
    }

    /// The id the remaining members must have committed before a removal (WS-3). Beyond
    /// everything committed anywhere, that is the tail of the newest writer's entries: one of
    /// them may have been acknowledged under the previous member list, on a majority of it
    /// that the remaining members need not intersect (seed 15 with --replica-moves). The
    /// answers come from a majority of the current list, which meets every majority of the
    /// previous one, so one holder of each such entry answers. Tails of fenced writers are
    /// left out: the newest writer's claim adopted whatever of theirs was acknowledged, and
    /// counting their leftovers would stall the removal until someone overwrites them.
    static func settled(_ infos: [WriterInfo]) -> SettledTarget {
        let committed = infos.map(\.committedID).max() ?? 0
        let newest = infos.map(\.tailWriterID).max() ?? .zero
        let newestTail = infos.filter { $0.tailWriterID == newest }.map(\.tailID).max() ?? 0
        return SettledTarget(id: max(committed, newestTail), newestWriter: newest)
    }

    /// The next version: `change` made, the topology's and the stream's versions one higher.
    static func applying(_ change: TopologyChange, to topology: Topology) -> Topology {
        var next = topology
        next.version += 1
        switch change {
        case .create(let uri, let members):
            precondition(next.streams[uri] == nil, "a stream is created once (`advance` checked)")
            next.streams[uri] = StreamTopology(version: 1, members: members)
        case .register(let node, let address):
            next.servers[node] = address
        case .add(let uri, let node):
            let stream = existing(uri, in: next)
            next.streams[uri] = StreamTopology(version: stream.version + 1, members: stream.members + [node])
        case .remove(let uri, let node):
            let stream = existing(uri, in: next)
            let members = stream.members.filter { $0 != node }
            next.streams[uri] = StreamTopology(version: stream.version + 1, members: members)
        case .trim(let uri, let first):
            _ = existing(uri, in: next)
            precondition(first > next.firstEntryID(of: uri), "a first entry only moves up (`decide` checked)")
            next.firstEntryIDs[uri] = first
        }
        return next
    }

    private static func existing(_ uri: StreamURI, in topology: Topology) -> StreamTopology {
        guard let stream = topology.streams[uri] else {
            preconditionFailure("a change is made only to a stream of the topology (`ready` checked)")
        }
        return stream
    }

    /// What every state promises; run at the end of each entry point.
    func checkInvariants() {
        switch state {
        case .unclaimed:
            return
        case .probing(_, let requestID, _):
            precondition(requestID > configuration.statusRequestIDBase, "probes are numbered above the base")
            guard case .whenLeaseExpired = configuration.claimPolicy else {
                preconditionFailure("only a standing-by manager probes")
            }
        case .waiting(_, let target):
            assert(target == nil || Self.isRemoval(pending.first?.change), "a removal target is a pending removal's")
        case .asking(_, let requestID, let target, _):
            precondition(requestID > configuration.statusRequestIDBase, "status calls are numbered above the base")
            precondition(!pending.isEmpty, "a status call is out only for a pending change")
            assert(target == nil || Self.isRemoval(pending.first?.change), "a removal target is a pending removal's")
        case .putting(let topology, let writing, _), .writing(let topology, let writing):
            precondition(writing.next.version == topology.version + 1, "the version written is the next one")
            if let change = writing.change {
                precondition(pending.first?.change == change, "the change written is the first pending")
                assert(
                    writing.next == Self.applying(change, to: topology), "the version written makes exactly the change")
            } else {
                precondition(topology.version == 0, "only the first version is written without a change")
            }
        }
    }

    private static func isRemoval(_ change: TopologyChange?) -> Bool {
        if case .remove? = change { return true }
        return false
    }
}
