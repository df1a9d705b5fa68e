package dev.ferry.agent.transport;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.DefaultByteBufHolder;

/** A decoded frame of kind PAGES: its body is a page batch (see {@code Wire}). */
final class PageFrame extends DefaultByteBufHolder {
  PageFrame(ByteBuf body) {
    super(body);
  }
}
