package dev.ferry.agent.transport;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.DefaultByteBufHolder;

/** The next bytes of the current page batch, a slice of a receive buffer (never a copy). */
final class PageBytes extends DefaultByteBufHolder {
  PageBytes(ByteBuf bytes) {
    super(bytes);
  }
}
