package dev.ferry.agent.transport;

import dev.ferry.agent.wire.ProtocolException;
import dev.ferry.agent.wire.Wire;
import dev.ferry.proto.Control;
import com.google.protobuf.InvalidProtocolBufferException;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufInputStream;
import io.netty.buffer.ByteBufOutputStream;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.codec.LengthFieldPrepender;
import io.netty.handler.codec.MessageToByteEncoder;
import io.netty.handler.codec.MessageToMessageDecoder;
import java.io.IOException;
import java.util.List;

/**
 * The frame layer of the agent protocol, built from Netty's codecs: a 4-byte length prefix
 * (bounded by {@link Wire#FRAME_BYTES_MAX}), then a kind byte. Control frames decode to
 * {@link Control}; page frames to {@link PageFrame} whose body is never copied.
 */
final class Frames {
  static final String FRAME_DECODER = "frame-decoder";
  static final String KIND_DECODER = "kind-decoder";

  private Frames() {}

  static void install(ChannelPipeline pipeline) {
    pipeline.addLast(FRAME_DECODER, new LengthFieldBasedFrameDecoder(Wire.FRAME_BYTES_MAX, 0, 4, 0, 4));
    pipeline.addLast(KIND_DECODER, new KindDecoder());
    pipeline.addLast("length-prepender", new LengthFieldPrepender(4));
    pipeline.addLast("control-encoder", new ControlEncoder());
  }

  /** Splits frames by their kind byte. */
  static final class KindDecoder extends MessageToMessageDecoder<ByteBuf> {
    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf frame, List<Object> out) {
      if (!frame.isReadable()) {
        throw new ProtocolException("empty frame");
      }
      byte kind = frame.readByte();
      switch (kind) {
        case Wire.KIND_CONTROL -> out.add(parseControl(frame));
        case Wire.KIND_PAGES -> out.add(new PageFrame(frame.retain()));
        default -> throw new ProtocolException("unknown frame kind " + kind);
      }
    }

    private static Control parseControl(ByteBuf frame) {
      try (ByteBufInputStream in = new ByteBufInputStream(frame)) {
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
      out.writeByte(Wire.KIND_CONTROL);
      try (ByteBufOutputStream stream = new ByteBufOutputStream(out)) {
        message.writeTo(stream);
      }
    }
  }
}
