@testable import WalleCore
import WalleEnvironment

/// A deterministic generator for tests (not the simulator's: tests of the core stay free of it).
struct CountingRandom: RandomNumberGenerator {
    var state: UInt64 = 0x1234

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return state
    }
}

let streamURI = try! StreamURI("/test/stream")

func at(_ milliseconds: Int64) -> NodeTime {
    NodeTime(
        monotonic: Instant(nanoseconds: milliseconds * 1_000_000),
        wall: WallTime(nanosecondsSinceEpoch: 1_700_000_000_000_000_000 + milliseconds * 1_000_000))
}

func node(_ raw: UInt64) -> NodeID { NodeID(raw) }

/// A server core that is a member of `/test/stream` with members 1, 2, 3.
func makeServer(_ id: UInt64 = 1, configuration: ServerConfiguration = ServerConfiguration()) -> ServerCore {
    var configuration = configuration
    configuration.deepChecksEnabled = true
    var core = ServerCore(
        id: node(id), configuration: configuration, recovered: RecoveredState(streams: []),
        random: CountingRandom(), time: at(0))
    core.createStream(streamURI, topology: StreamTopology(version: 1, members: [node(1), node(2), node(3)]))
    _ = core.takeEffects()
    return core
}

func header(_ requestID: RequestID, target: UInt64 = 1) -> InternalHeader {
    InternalHeader(requestID: requestID, stream: streamURI, target: node(target), streamVersion: 1)
}

/// Builds entries that chain from `previous`.
func chain(from previous: Entry, count: Int, writer: WriterID, tag: UInt8 = 0) -> [Entry] {
    var entries: [Entry] = []
    var last = previous
    for index in 0..<count {
        let data: [UInt8] = [tag, UInt8(index), 42]
        let entry = Entry(
            id: last.id + 1, writerID: writer, checksum: chainChecksum(previous: last.checksum, data: data), data: data)
        entries.append(entry)
        last = entry
    }
    return entries
}

extension Array where Element == Effect {
    var sends: [(message: Message, target: NodeID)] {
        compactMap { if case .send(let m, let t) = $0 { return (m, t) } else { return nil } }
    }

    var replies: [(requestID: RequestID, reply: Reply, target: NodeID)] {
        sends.compactMap {
            if case .response(let r, let reply) = $0.message { return (r, reply, $0.target) } else { return nil }
        }
    }

    var syncTokens: [UInt64] {
        compactMap { if case .disk(.sync(let token)) = $0 { return token } else { return nil } }
    }

    var writeCount: Int {
        filter { if case .disk(.write) = $0 { return true } else { return false } }.count
    }
}

extension Reply {
    var isOK: Bool { if case .ok = self { return true } else { return false } }

    var errorCode: WalleError.Code? { if case .failed(let e) = self { return e.code } else { return nil } }
}

/// Completes every sync `effects` asks for, and those the completions ask for in turn;
/// returns everything the core emitted meanwhile.
func settle(_ core: inout ServerCore, _ effects: [Effect], at time: Int64 = 2) -> [Effect] {
    var all: [Effect] = []
    var next = effects
    for _ in 0..<16 {
        let tokens = next.syncTokens
        if tokens.isEmpty { break }
        next = []
        for token in tokens {
            core.diskCompleted(.synced(token: token), at: at(time))
            next += core.takeEffects()
        }
        all += next
    }
    return all
}
