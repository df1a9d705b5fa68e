package dev.ferry.storage;

import java.nio.ByteBuffer;

/**
 * Receives a checkpoint's memory as {@link CheckpointReader} verifies it, one chunk at a time and
 * in memory order. {@code pages} is a read-only view of the reader's buffer holding a whole number
 * of pages that start at guest-physical byte {@code memoryOffset}; it is valid only during the
 * call, so copy what you keep. If the read then fails (a later chunk or the trailer is bad),
 * everything delivered must be discarded: the checkpoint as a whole did not load.
 */
@FunctionalInterface
public interface PageSink {
  void accept(long memoryOffset, ByteBuffer pages);
}
