/// Coverage probes ("sometimes" assertions): the subtle branches of the core, by name. A state
/// machine marks a probe when it takes the branch; the simulator collects the marks of every
/// node after a run, and a sweep reports which probes no seed reached (docs/simulation.md,
/// "Coverage probes"). A sweep that never takes a branch has not tested it, however green.
///
/// In production the marks are made and never read: one OR into a word the core already
/// holds, on branches that are rare by nature. Nothing is allocated, sent or logged.
public enum Probe: Int, CaseIterable, Sendable {
    // Claims ([CLAIM-1] to [CLAIM-5]).
    case claimFencedByNewerWriter
    case claimEndedByTopologyMove
    case claimAlignedCommitted
    case claimRestampedSuffix
    case newWriterWaitedOutLease
    case newWriterRepeated
    case newWriterSupersededWhileWaiting
    // Puts, queues and commits ([PEI-1] to [PEI-4], [PIPE-*]).
    case queuedPutExpired
    case queuedPutOvertaken
    case resourceExhausted
    case staleStreamVersionRefused
    case commitMarkerFromFencedWriter
    case heartbeatWaitedForSync
    case writerCaughtUp
    // Catching up ([PIPE-6], [GAP-*]).
    case fastForwarded
    case gapCommitted
    case gapBackfilled
    case joinedByPull
    /// WS-4: a peer's committed entry is not the one the commit marker names.
    case fastForwardRefuted
    /// WS-4: fetched gap entries did not chain onto the verified ones.
    case backfillAnswerRefused
    // Trims.
    case trimStepDeleted
    /// A disk read finished after a trim moved the first entry above it.
    case readOvertakenByTrim
    /// A poll reached a member whose committed entry is still below the first entry.
    case pollBehindTrim
    // Writer clients.
    case writerLeaseLapsedWithPutsInFlight
    case writerFenced
    case writerLateRefusalClosed

    /// A probe a default sweep of a few hundred seeds reaches every time it has been
    /// measured (docs/simulation.md): `walle-sim sweep --require-coverage` fails without it.
    /// The others are rare by design and reported, not required.
    public var mustReach: Bool {
        switch self {
        case .readOvertakenByTrim, .pollBehindTrim: false
        default: true
        }
    }

    /// The probe's name in reports: kebab case of the case name (not `description`, which
    /// `String(describing:)` would call back).
    public var name: String {
        var name = ""
        for character in String(describing: self) {
            if character.isUppercase { name += "-" + character.lowercased() } else { name.append(character) }
        }
        return name
    }
}

/// A set of probes as one word: what a node marks and what a run reports.
public struct ProbeSet: Hashable, Sendable, Sequence {
    public private(set) var bits: UInt64 = 0

    public init() {}

    public init(bits: UInt64) { self.bits = bits }

    public mutating func insert(_ probe: Probe) { bits |= 1 << UInt64(probe.rawValue) }

    public func contains(_ probe: Probe) -> Bool { bits & (1 << UInt64(probe.rawValue)) != 0 }

    public mutating func formUnion(_ other: ProbeSet) { bits |= other.bits }

    public var count: Int { bits.nonzeroBitCount }

    public func makeIterator() -> some IteratorProtocol<Probe> {
        Probe.allCases.lazy.filter { self.contains($0) }.makeIterator()
    }
}
