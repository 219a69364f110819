import NIOCore
import WalleWire

/// The largest frame a connection may send now: a hello's size until the hello, then what the
/// peer's role may send. Shared by the connection's decoder and its handler (same loop).
final class FrameLimit {
    var bytesMax = Wire.helloFrameBytesMax
}

/// Cuts the byte stream into frame bodies: `length u32` (little-endian) then that many bytes.
/// A length over the connection's limit is refused before any of the body is buffered, so a
/// peer cannot make a node hold more than one frame's worth per connection.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = [UInt8]
    let limit: FrameLimit

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self) else {
            return .needMoreData
        }
        guard length <= limit.bytesMax else {
            throw WireError(.oversized, "frame of \(length) bytes, limit is \(limit.bytesMax) here")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let body = buffer.readBytes(length: Int(length))!
        context.fireChannelRead(Self.wrapInboundOut(body))
        return .continue
    }

    mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if seenEOF && buffer.readableBytes > 0 {
            throw WireError(.malformed, "connection ended inside a frame (\(buffer.readableBytes) bytes left)")
        }
        return .needMoreData
    }
}
