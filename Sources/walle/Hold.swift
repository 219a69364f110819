import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import WalleClient
import WalleEnvironment

/// `walle hold URI --socket PATH`: claims the stream and holds its writer, taking entries from
/// local scripts over a Unix socket, so many short `walle put --no-claim` calls share one claim
/// instead of each fencing the one before (docs/operating.md, "Scripts and one writer").
///
/// One line each way. The client sends `stream URI`; the holder answers `writer ID`, or
/// `error: ...` and closes. Then each line is one entry, answered `acked ID` in order once it
/// commits; a failure is answered `error: ...` and the connection closes.
struct Hold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Claim the stream and hold its writer; `walle put --no-claim` appends through it.",
        discussion: """
            Runs until SIGINT or SIGTERM, then waits for what it took to commit and removes the \
            socket. Exits 1 if the writer is fenced or fails.
            """)
    @OptionGroup var cluster: ClusterOptions
    @Argument var uri: String
    @Option(help: "The Unix socket to listen on (a stale socket file there is replaced).") var socket: String
    @Option(help: "Lease in milliseconds.") var lease: Int = 2000
    @OptionGroup var politeness: Politeness

    func run() async throws {
        let uri = try parseURI(uri)
        try await withClient(cluster) { client in
            let (writer, id, tail) = try await claimWriter(client, uri, leaseMilliseconds: lease, politeness)
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let stop = StopSignal(group.next())
            let channel: any Channel
            do {
                channel = try await ServerBootstrap(group: group)
                    .childChannelOption(.autoRead, value: true)
                    // A script ends its lines with a half close and still reads the answers.
                    .childChannelOption(.allowRemoteHalfClosure, value: true)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandlers([
                                ByteToMessageHandler(LineDecoder()),
                                HoldHandler(uri: uri, writerID: id, writer: writer, stop: stop),
                            ])
                        }
                    }
                    .bind(unixDomainSocketPath: socket, cleanupExistingSocketFile: true).get()
            } catch {
                await writer.close()
                try? await group.shutdownGracefully()
                throw WalleError(.unavailable, "cannot listen on \(socket): \(error)")
            }
            FileHandle.standardError.write(Data("writer \(id) from tail \(tail.id), holding at \(socket)\n".utf8))
            let signals = stop.onSignals([SIGINT, SIGTERM])
            let outcome = await stop.wait()
            signals.forEach { $0.cancel() }
            try? await channel.close()
            try? FileManager.default.removeItem(atPath: socket)
            try? await group.shutdownGracefully()
            if case .failure(let error) = outcome {
                await writer.close()
                throw error
            }
            do {
                try await writer.finish()
            } catch {
                await writer.close()
                throw error
            }
            await writer.close()
            FileHandle.standardError.write(Data("stopped holding \(uri)\n".utf8))
        }
    }
}

/// Ends the holder once: a signal, or a writer failure that no later entry could get past.
final class StopSignal: Sendable {
    private let promise: EventLoopPromise<Void>
    private let done = Mutex(false)

    init(_ loop: any EventLoop) { promise = loop.makePromise() }

    func stop(_ error: (any Error)? = nil) {
        let first = done.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        if let error { promise.fail(error) } else { promise.succeed(()) }
    }

    func wait() async -> Result<Void, any Error> {
        do {
            try await promise.futureResult.get()
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    /// Stops on each of `signals`, which no longer end the process by default.
    func onSignals(_ signals: [Int32]) -> [any DispatchSourceSignal] {
        signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in stop() }
            source.resume()
            return source
        }
    }
}

/// Lines of at most `Entry.dataSizeMax` bytes (an entry's limit), without their newline.
struct LineDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > Entry.dataSizeMax {
                throw WalleError(.invalidArgument, "a line longer than \(Entry.dataSizeMax) bytes, the entry limit")
            }
            return .needMoreData
        }
        let line = buffer.readSlice(length: newline - buffer.readerIndex)!
        buffer.moveReaderIndex(forwardBy: 1)
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }
}

/// One script's connection: the greeting, then an entry per line, answered in order.
final class HoldHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let uri: StreamURI
    private let writerID: WriterID
    private let writer: StreamWriter
    private let stop: StopSignal
    private var greeted = false
    private var closed = false
    /// Entries taken and not yet answered. Past the bound the connection stops reading until
    /// half have committed, so a fast script holds at most this many entries in the holder.
    private var inFlight = 0
    static let inFlightMax = 1024
    /// The last answer in order: each waits for its entry and for every answer before it.
    private var answers: EventLoopFuture<Void>?

    init(uri: StreamURI, writerID: WriterID, writer: StreamWriter, stop: StopSignal) {
        self.uri = uri
        self.writerID = writerID
        self.writer = writer
        self.stop = stop
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        let line = unwrapInboundIn(data)
        guard greeted else {
            let asked = String(buffer: line)
            guard asked == "stream \(uri)" else {
                refuse(context, "this holder holds \(uri); the client asked for \"\(asked.prefix(200))\"")
                return
            }
            greeted = true
            send(context, "writer \(writerID)")
            return
        }
        take(context, Array(line.readableBytesView))
    }

    /// The script sent its last line: answer what it sent, then close.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        (answers ?? context.eventLoop.makeSucceededVoidFuture()).whenSuccess { bound.value.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        refuse(context, "\(error)")
    }

    private func take(_ context: ChannelHandlerContext, _ data: [UInt8]) {
        inFlight += 1
        if inFlight == Self.inFlightMax { context.channel.setOption(.autoRead, value: false).whenFailure { _ in } }
        let loop = context.eventLoop
        let committed = writer.submit(data).hop(to: loop)
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let answer = (answers ?? loop.makeSucceededVoidFuture()).flatMap { committed }.map { entry in
            let (handler, context) = bound.value
            handler.answered(context, entry)
        }
        answer.whenFailure { error in
            let (handler, context) = bound.value
            handler.failed(context, error)
        }
        answers = answer
    }

    private func answered(_ context: ChannelHandlerContext, _ entry: Entry) {
        inFlight -= 1
        send(context, "acked \(entry.id)")
        if inFlight == Self.inFlightMax / 2 { context.channel.setOption(.autoRead, value: true).whenFailure { _ in } }
    }

    /// An entry failed. A writer that was fenced or closed takes nothing more: the holder ends.
    /// Too much pending (other scripts) or a bad entry ends only this connection.
    private func failed(_ context: ChannelHandlerContext, _ error: any Error) {
        let code = (error as? WalleError)?.code
        if code != .resourceExhausted && code != .invalidArgument { stop.stop(error) }
        refuse(context, "\(error)")
    }

    private func refuse(_ context: ChannelHandlerContext, _ reason: String) {
        guard !closed else { return }
        closed = true
        send(context, "error: \(reason)")
        context.close(promise: nil)
    }

    private func send(_ context: ChannelHandlerContext, _ line: String) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: line + "\n")), promise: nil)
    }
}

/// `walle put --no-claim --socket PATH`: appends `lines` through the writer a `walle hold` of
/// `uri` holds there, printing `acked ID` as each commits. Throws when the holder is missing,
/// holds another stream, or refuses an entry.
func putThroughHolder(_ uri: StreamURI, socket path: String, lines: AnySequence<String>) throws {
    let connection = try HolderConnection(path)
    defer { close(connection.descriptor) }
    try connection.send("stream \(uri)")
    let greeting = connection.readLine() ?? "error: the holder closed the connection"
    guard greeting.hasPrefix("writer ") else { throw holderError(greeting, path) }
    FileHandle.standardError.write(Data("through \(greeting) held at \(path)\n".utf8))
    // Answers are read as they come while the lines go out: a script's pipe never waits on
    // the holder's replies filling the socket.
    let answers = DispatchSemaphore(value: 0)
    let outcome = Mutex<(acked: Int, error: String?)>((0, nil))
    Thread.detachNewThread {
        while let answer = connection.readLine() {
            if answer.hasPrefix("acked ") {
                printLine(answer)
                outcome.withLock { $0.acked += 1 }
            } else {
                outcome.withLock { $0.error = answer }
                break
            }
        }
        answers.signal()
    }
    var sent = 0
    for line in lines {
        guard (try? connection.send(line)) != nil else { break }  // the holder closed: its answer says why
        sent += 1
    }
    shutdown(connection.descriptor, Int32(SHUT_WR))
    answers.wait()
    let (acked, error) = outcome.withLock { $0 }
    if let error { throw holderError(error, path) }
    guard acked == sent else {
        throw WalleError(.unavailable, "the holder at \(path) acknowledged \(acked) of \(sent) entries, then closed")
    }
}

private func holderError(_ answer: String, _ path: String) -> WalleError {
    let reason = answer.hasPrefix("error: ") ? String(answer.dropFirst("error: ".count)) : answer
    return WalleError(.unavailable, "the holder at \(path): \(reason)")
}

/// A blocking Unix-socket connection to a holder, read and written a line at a time.
final class HolderConnection: Sendable {
    let descriptor: Int32
    /// Bytes read past the last line; touched only by the one reading thread.
    private let pending = Mutex<[UInt8]>([])
    static let lineBytesMax = 64 << 10

    init(_ path: String) throws {
        signal(SIGPIPE, SIG_IGN)  // a holder that closes is an error to report, not a kill
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            throw ValidationError("--socket \(path) is longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: bytes + [0]) }
        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw WalleError(.internal, "no socket: \(String(cString: strerror(errno)))") }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw WalleError(.unavailable, "no holder at \(path) (\(reason)); start one with walle hold")
        }
    }

    func send(_ line: String) throws {
        let bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw WalleError(.unavailable, "the holder closed the connection") }
            offset += written
        }
    }

    /// The next line without its newline; nil at the end of the connection.
    func readLine() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let line = pending.withLock { pending -> String? in
                guard let newline = pending.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
                defer { pending.removeFirst(newline + 1) }
                return String(decoding: pending[..<newline], as: UTF8.self)
            }
            if let line { return line }
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            // A holder's lines are short; one this long without an end is not a holder's.
            let overlong = pending.withLock { pending in
                pending += buffer[..<count]
                return pending.count > Self.lineBytesMax
            }
            if overlong { return "error: a line of over \(Self.lineBytesMax) bytes" }
        }
    }
}
