import Testing
import WalleCore
import WalleEnvironment

@Suite("Checksums ([XX-*])")
struct ChecksumTests {
    @Test("XXH64 matches the reference implementation")
    func xxh64Vectors() {
        #expect(XXH64.hash([]) == 0xEF46_DB37_51D8_E999)
        #expect(XXH64.hash(Array("abc".utf8)) == 0x44BC_2CF5_AD77_0999)
        // Long enough for the 32-byte stripe loop, with a tail of every size class.
        #expect(XXH64.hash((0..<100).map { UInt8($0) }) == 0x6AC1_E580_3216_6597)
        #expect(XXH64.hash((0..<37).map { UInt8($0) }, seed: 7) == 0x69E0_C889_396A_FAF7)
    }

    @Test("The rolling checksum follows the protocol's test vectors")
    func chainVectors() {
        let first = chainChecksum(previous: 0, data: Array("d1".utf8))
        let second = chainChecksum(previous: first, data: Array("d2".utf8))
        let third = chainChecksum(previous: second, data: [])
        #expect(first == 0x67D1_E03B_3624_9690)
        #expect(second == 0xCDD9_C9E4_CEAD_2A70)
        #expect(third == 0xC4EF_6EB7_13D3_3F0A)
    }

    @Test("An entry chains only onto its own predecessor")
    func chains() {
        let entry = Entry(
            id: 1, writerID: WriterID(ts: 1, id: 1), checksum: 0x67D1_E03B_3624_9690, data: Array("d1".utf8))
        #expect(entry.chains(onto: 0))
        #expect(!entry.chains(onto: 1))
    }
}

@Suite("Validation at the boundary")
struct ValidationTests {
    @Test("Stream URIs are anchored (WS-7)", arguments: ["", "/", "x/a", "/A", "/a:b", "/a b", "/a-b", "a/b"])
    func badURIs(_ raw: String) {
        #expect(throws: WalleError.self) { try StreamURI(raw) }
    }

    @Test("A URI over 100 bytes is refused with its length")
    func longURI() {
        let raw = "/" + String(repeating: "a", count: 100)
        #expect(throws: WalleError(.invalidArgument, "stream URI is 101 bytes, limit is 100")) { try StreamURI(raw) }
    }

    @Test("Good URIs pass", arguments: ["/a", "/cluster/root", "/s_1/x/2"])
    func goodURIs(_ raw: String) throws {
        #expect(try StreamURI(raw).rawValue == raw)
    }

    @Test("Writer ids order by ts, then id ([WID-2])")
    func writerOrder() {
        #expect(WriterID(ts: 1, id: 9) < WriterID(ts: 2, id: 0))
        #expect(WriterID(ts: 2, id: 1) < WriterID(ts: 2, id: 2))
        #expect(!(WriterID(ts: 2, id: 2) < WriterID(ts: 2, id: 2)))
        #expect(WriterID.zero.isZero)
    }
}

@Suite("Lease margin")
struct LeaseMarginTests {
    @Test("The writer's window is 0.6 of the lease: rateMin / rateMax")
    func window() {
        #expect(TimeModel.exclusivityWindow(lease: .seconds(1)) == .milliseconds(600))
        #expect(TimeModel.exclusivityWindow(lease: .milliseconds(100)) == .milliseconds(60))
    }

    @Test("Worst case: a slow writer's window ends before a fast member's lease ends")
    func worstCase() {
        let lease = Duration.seconds(1)
        let window = TimeModel.exclusivityWindow(lease: lease)
        // True time the writer stays exclusive at rate 0.75 vs. the member's lease at 1.25.
        let writerTrue = Double(window.nanoseconds) / 0.75
        let memberTrue = Double(lease.nanoseconds) / 1.25
        #expect(writerTrue <= memberTrue)
        // Upstream's 0.75 would not hold under the same rates.
        #expect(Double(lease.nanoseconds) * 0.75 / 0.75 > memberTrue)
    }
}
