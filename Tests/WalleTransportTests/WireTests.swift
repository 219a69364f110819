import Testing
import WalleEnvironment
@testable import WalleWire

/// One of every message and reply, with every field set to something other than zero.
func sampleMessages() throws -> [Message] {
    let uri = try StreamURI("/orders/eu_1")
    let writer = WriterID(ts: 1_700_000_000_000, id: 0xDEAD_BEEF)
    let entry = Entry(id: 42, writerID: writer, checksum: 0x1234_5678_9ABC_DEF0, data: Array("payload".utf8))
    let header = InternalHeader(requestID: 9, stream: uri, target: NodeID(3), streamVersion: 4)
    let info = WriterInfo(
        writerID: writer, writerAddress: "client-1", leaseMilliseconds: 2000, remainingLeaseMilliseconds: -5,
        streamVersion: 4, server: NodeID(2), committedID: 40, tailID: 42, tailWriterID: writer, hasGap: true)
    let replies: [Reply] = [
        .ok, .claimed(writer, tail: entry), .writerInfo(info), .streamStatus([info, info]),
        .putAcknowledged(servers: [NodeID(1), NodeID(3)]), .entry(entry), .entries([entry, .zero]),
        .failed(WalleError(.outOfRange, "committed id 3 is below 5")),
    ]
    return [
        .claimWriter(1, uri, writerAddress: "client-1", leaseMilliseconds: 1500),
        .writerStatus(2, uri),
        .putEntry(3, uri, committedID: 41, committedChecksum: 77, entry),
        .pollStream(4, uri, pollEntryID: 43),
        .streamEntries(5, uri, start: 1, end: 100),
        .streamStatus(6, uri),
        .topologyRequest(7, .fetch),
        .topologyRequest(8, .createStream(uri, members: [NodeID(1), NodeID(2), NodeID(5)])),
        .topologyRequest(9, .addMember(uri, NodeID(4))),
        .topologyRequest(10, .removeMember(uri, NodeID(2))),
        .topologyRequest(11, .registerServer(NodeID(4), address: "db4.example.com:7004")),
        .newWriter(header, writer, writerAddress: "client-1", leaseMilliseconds: 1500),
        .writerInfo(header),
        .putEntryInternal(header, .claimCommit, entry, committedID: 41, committedChecksum: 77),
        .tailEntries(header),
        .restampEntries(header, [entry, entry.stamped(WriterID(ts: 2, id: 3))]),
        .readEntries(header, start: 10, end: 20),
    ] + replies.enumerated().map { .response(RequestID(100 + $0.offset), $0.element) }
}

@Suite("Wire format")
struct WireTests {
    @Test("Every message survives encode and decode unchanged")
    func roundTrip() throws {
        for message in try sampleMessages() {
            let bytes = Wire.encode(.message(message))
            let length = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
            #expect(length == bytes.count - 4, "\(message): length prefix")
            guard case .message(let decoded) = try Wire.decode(Array(bytes.dropFirst(4))) else {
                Issue.record("\(message) decoded as a hello")
                continue
            }
            // Messages are compared by their encoding and their trace line: both cover every field.
            #expect(Wire.encode(.message(decoded)) == bytes, "\(message)")
            #expect(decoded.description == message.description)
        }
    }

    @Test("The hello carries the node id, the magic and the version")
    func hello() throws {
        let bytes = Wire.encode(.hello(NodeID(77)))
        #expect(Array(bytes.prefix(5)) == [15, 0, 0, 0, 1])
        guard case .hello(let id) = try Wire.decode(Array(bytes.dropFirst(4))) else {
            Issue.record("not a hello")
            return
        }
        #expect(id == NodeID(77))
        var wrongVersion = Array(bytes.dropFirst(4))
        wrongVersion[5] = 9
        #expect(throws: WireError.self) { try Wire.decode(wrongVersion) }
    }

    @Test("Every truncation of every message is refused with a typed error, never a crash")
    func truncations() throws {
        for message in try sampleMessages() {
            let body = Array(Wire.encode(.message(message)).dropFirst(4))
            for length in 0..<body.count {
                do {
                    _ = try Wire.decode(Array(body.prefix(length)))
                    Issue.record("\(message) cut to \(length) bytes decoded")
                } catch {
                    #expect(error.kind == .malformed || error.kind == .unknownType)
                }
            }
            #expect(throws: WireError.self) { try Wire.decode(body + [0]) }
        }
    }

    @Test("Unknown types, bad names, impossible counts and oversized entries are refused by name")
    func badFields() throws {
        #expect(throws: WireError(.unknownType, "frame type 99 is unknown")) { try Wire.decode([99]) }
        let bad = Array(Wire.encode(.message(.writerStatus(1, try StreamURI("/ab")))).dropFirst(4))
        var upper = bad
        upper[upper.count - 1] = UInt8(ascii: "B")
        #expect(throws: WireError.self) { try Wire.decode(upper) }
        // A reply claiming 2^32-1 entries in a few bytes is refused before anything is reserved.
        var writer = ByteWriter()
        writer.u8(FrameType.response.rawValue); writer.u64(1); writer.u8(ReplyType.entries.rawValue); writer.u32(.max)
        do {
            _ = try Wire.decode(writer.bytes)
            Issue.record("an impossible count decoded")
        } catch {
            #expect(error.message.contains("does not fit"))
        }
        var entry = ByteWriter()
        entry.u8(FrameType.response.rawValue); entry.u64(1); entry.u8(ReplyType.entry.rawValue)
        entry.u64(1); entry.u64(1); entry.u64(1); entry.u64(1); entry.u32(UInt32(Entry.dataSizeMax + 1))
        do {
            _ = try Wire.decode(entry.bytes)
            Issue.record("an oversized entry decoded")
        } catch {
            #expect(error.message.contains("limit is"))
        }
        // A topology request of an unknown kind, and one whose member count cannot fit.
        var kind = ByteWriter()
        kind.u8(FrameType.topologyRequest.rawValue); kind.u64(1); kind.u8(9)
        #expect(throws: WireError(.malformed, "topology request kind 9 is unknown")) { try Wire.decode(kind.bytes) }
        var members = ByteWriter()
        members.u8(FrameType.topologyRequest.rawValue); members.u64(1); members.u8(TopologyRequestKind.createStream)
        members.string16("/a"); members.u16(.max); members.u64(1)
        do {
            _ = try Wire.decode(members.bytes)
            Issue.record("an impossible member count decoded")
        } catch {
            #expect(error.message.contains("member count"))
        }
    }
}
