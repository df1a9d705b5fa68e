package dev.ferry.agent.transport;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.ferry.engine.wire.ProtocolException;
import dev.ferry.engine.wire.Wire;
import dev.ferry.proto.Control;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufInputStream;
import io.netty.buffer.ByteBufOutputStream;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.LengthFieldPrepender;
import io.netty.handler.codec.MessageToByteEncoder;
import java.io.IOException;
import java.util.List;

/**
 * The frame layer of the agent protocol: a 4-byte length prefix (bounded by
 * {@link Wire#FRAME_BYTES_MAX}), a kind byte, the body. Outbound, Netty's
 * {@link LengthFieldPrepender} writes the prefix. Inbound, {@link FrameDecoder} decodes control
 * frames whole (to {@link Control}) but streams page frames: a {@link PageBatchStart}, then the
 * body as {@link PageBytes} slices of the receive buffers as they arrive.
 */
final class Frames {
  static final String FRAME_DECODER = "frame-decoder";
  /**
   * The largest frame a peer may send before it has authenticated: a Hello, an Auth or an admin
   * request fits many times over, and an unauthenticated connection can make the agent hold no
   * more than this.
   */
  static final int UNAUTHENTICATED_FRAME_BYTES_MAX = 4096;

  private Frames() {}

  /** Frames up to {@link Wire#FRAME_BYTES_MAX} (a peer this side connected to). */
  static void install(ChannelPipeline pipeline) {
    install(pipeline, Wire.FRAME_BYTES_MAX);
  }

  /** Frames up to {@code frameBytesMax} until {@link FrameDecoder#authenticated()}. */
  static void install(ChannelPipeline pipeline, int frameBytesMax) {
    pipeline.addLast(FRAME_DECODER, new FrameDecoder(frameBytesMax));
    pipeline.addLast("length-prepender", new LengthFieldPrepender(4));
    pipeline.addLast("control-encoder", new ControlEncoder());
  }

  /**
   * Splits the byte stream into frames. Why not {@code LengthFieldBasedFrameDecoder}: it holds each
   * frame contiguous, so a 256 KiB page batch spread over several reads is copied once more into
   * its cumulation (measured: a quarter of the loopback throughput). Streaming the page bytes,
   * as {@code HttpObjectDecoder} streams content, leaves the cumulation empty after every read and
   * lets the target copy each page once, straight into guest memory.
   */
  static final class FrameDecoder extends ByteToMessageDecoder {
    private static final int PREFIX_BYTES = 5;
    private int frameBytesMax;
    private int controlBytes = -1;
    private int pageBytesLeft;
    private boolean failed;

    FrameDecoder() {
      this(Wire.FRAME_BYTES_MAX);
    }

    FrameDecoder(int frameBytesMax) {
      this.frameBytesMax = frameBytesMax;
    }

    /** The peer proved who it is: full-size frames from now on. */
    void authenticated() {
      frameBytesMax = Wire.FRAME_BYTES_MAX;
    }

    private boolean limited() {
      return frameBytesMax < Wire.FRAME_BYTES_MAX;
    }

    /** Bytes of the current page frame still to come (0 when not inside one). */
    int pageBytesLeft() {
      return failed ? 0 : pageBytesLeft;
    }

    /** True between frames (the next bytes are a frame's length and kind). */
    boolean atFrameStart() {
      return !failed && pageBytesLeft == 0 && controlBytes < 0;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
      if (failed) {
        in.skipBytes(in.readableBytes()); // after a protocol error nothing more is trusted
        return;
      }
      try {
        decodeFrames(in, out);
      } catch (ProtocolException e) {
        failed = true;
        throw e;
      }
    }

    private void decodeFrames(ByteBuf in, List<Object> out) {
      while (in.isReadable()) {
        if (pageBytesLeft > 0) {
          int n = Math.min(in.readableBytes(), pageBytesLeft);
          out.add(new PageBytes(in.readRetainedSlice(n)));
          pageBytesLeft -= n;
        } else if (controlBytes >= 0) {
          if (in.readableBytes() < controlBytes) {
            return;
          }
          out.add(parseControl(in.readSlice(controlBytes)));
          controlBytes = -1;
          if (limited()) {
            return; // let the handler see it (an Auth lifts the limit) before the next frame is sized
          }
        } else if (!readPrefix(in, out)) {
          return;
        }
      }
    }

    /** Reads a frame's length and kind; false if they have not all arrived. */
    private boolean readPrefix(ByteBuf in, List<Object> out) {
      if (in.readableBytes() < PREFIX_BYTES) {
        return false;
      }
      long length = in.readUnsignedInt();
      byte kind = in.readByte();
      if (length < 1 || length > frameBytesMax) {
        throw new ProtocolException("frame length " + length + " outside 1.." + frameBytesMax
            + (limited() ? " (before authentication)" : ""));
      }
      int body = (int) length - 1;
      switch (kind) {
        case Wire.KIND_CONTROL -> {
          if (body == 0) {
            throw new ProtocolException("empty control frame");
          }
          controlBytes = body;
        }
        case Wire.KIND_PAGES -> {
          if (body == 0) {
            throw new ProtocolException("empty page batch frame");
          }
          out.add(new PageBatchStart(body));
          pageBytesLeft = body;
        }
        default -> throw new ProtocolException("unknown frame kind " + Byte.toUnsignedInt(kind));
      }
      return true;
    }

    private static Control parseControl(ByteBuf body) {
      try (ByteBufInputStream in = new ByteBufInputStream(body)) {
        return Control.parseFrom(in);
      } catch (InvalidProtocolBufferException e) {
        throw new ProtocolException("malformed control message: " + e.getMessage(), e);
      } catch (IOException e) {
        throw new ProtocolException("unreadable control message: " + e.getMessage(), e);
      }
    }
  }

  /** Writes a control message as kind byte plus protobuf. */
  @ChannelHandler.Sharable
  static final class ControlEncoder extends MessageToByteEncoder<Control> {
    ControlEncoder() {
      super(Control.class);
    }

    @Override
    protected void encode(ChannelHandlerContext ctx, Control message, ByteBuf out) throws IOException {
      int size = message.getSerializedSize();
      if (size + 1 > Wire.FRAME_BYTES_MAX) {
        throw new ProtocolException("control message " + message.getBodyCase() + " of " + size
            + " bytes exceeds the frame limit of " + Wire.FRAME_BYTES_MAX);
      }
      out.writeByte(Wire.KIND_CONTROL);
      try (ByteBufOutputStream stream = new ByteBufOutputStream(out)) {
        message.writeTo(stream);
      }
    }
  }
}
