package dev.ferry.engine.precopy;

import java.nio.ByteBuffer;

/** Damages a page batch body the way a bad link would: one bit of the first page payload. */
public final class PageCorruption {
  private PageCorruption() {}

  /** Flips the low bit of the first payload byte of the batch body at {@code body}'s position, if it has one. */
  public static void flipFirstPayloadByte(ByteBuffer body) {
    int start = body.position();
    int count = Short.toUnsignedInt(body.getShort(start + 4));
    int at = start + 6 + 11 * count + 4;
    if (at < body.limit()) {
      body.put(at, (byte) (body.get(at) ^ 1));
    }
  }
}
