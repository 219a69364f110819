import WalleCore
import WalleEnvironment

/// The workload's trims, as `walle trim` makes them: now and then one stream's first entry moves
/// up to an entry at most `trimBackMax` below its highest acknowledged one, through the manager
/// like any change. Readers ask around the committed id, so some of their reads fall below the
/// new first entry. One trim in five asks past the highest acknowledged entry, as a careless
/// operator would: the manager must refuse it unless that entry is committed by then.
/// Trims stop with the faults, so the liveness phase checks the members converge on the last.
final class Trimmer {
    private var random: SimRandom
    private let agenda: Agenda
    private let trace: Trace
    private let counters: SimCounters
    private let streams: [StreamURI]
    private unowned let manager: any TopologyControl
    private unowned let acknowledgements: any AcknowledgementView
    private let perMinute: Double
    private var stopped = false

    /// How far below the highest acknowledged entry a trim may land: within the range readers
    /// ask (50 below what they know), so reads meet the first entry.
    static let trimBackMax: Int64 = 40

    init(
        random: SimRandom, agenda: Agenda, trace: Trace, counters: SimCounters, streams: [StreamURI],
        manager: any TopologyControl, acknowledgements: any AcknowledgementView, perMinute: Double
    ) {
        self.random = random
        self.agenda = agenda
        self.trace = trace
        self.counters = counters
        self.streams = streams
        self.manager = manager
        self.acknowledgements = acknowledgements
        self.perMinute = perMinute
    }

    func start() { scheduleNext() }

    func stop() { stopped = true }

    /// Exponential gaps, as the nemesis draws them.
    private func scheduleNext() {
        guard perMinute > 0, !stopped else { return }
        let gap = Int64(-60e9 / perMinute * log1pNegative(random.unit()))
        agenda.schedule(at: agenda.trueNow + max(1, gap), .workload(.trim))
    }

    func perform() {
        guard !stopped else { return }
        defer { scheduleNext() }
        // One change at a time from here, as an operator would: the queue stays small.
        guard manager.isIdle, manager.topology.version >= 1, !streams.isEmpty else { return }
        let uri = random.pick(streams)
        let acknowledged = acknowledgements.highestAcknowledged(uri)
        let first = manager.topology.firstEntryID(of: uri)
        guard acknowledged > first + 1 else { return }
        let back = random.int(in: 0...min(Self.trimBackMax, Int64(acknowledged - first - 2)))
        let target = random.chance(0.2)
            ? acknowledged + EntryID(random.int(in: 1...Self.trimBackMax)) : acknowledged - EntryID(back)
        counters.count(.trim)
        trace.line(agenda.trueNow, "workload: trim \(uri) below \(target)")
        manager.enqueue([.trim(uri, firstEntryID: target)])
    }
}
