package dev.ferry.agent.precopy;

import dev.ferry.proto.Control;
import java.nio.ByteBuffer;

/**
 * The source engine's view of its connection to the target. The engine never sees a socket:
 * the Netty transport and the in-memory link of the tests both implement this.
 */
public interface SourceLink extends AutoCloseable {

  /** One page batch being filled; {@link #buffer()} is direct and positioned at the batch start. */
  interface OutboundBatch {
    ByteBuffer buffer();

    /** Gives the buffer back without sending it. */
    void discard();
  }

  /** Sends a control message; throws {@link LinkException} if the link is gone. */
  void sendControl(Control message);

  /**
   * The next control message from the target, waiting up to {@code timeoutNanos}; null if none
   * came. Throws {@link LinkException} once the link is gone and nothing is left to read.
   */
  Control pollControl(long timeoutNanos) throws InterruptedException;

  /** A buffer for one batch of at most {@code Wire.BATCH_BYTES_MAX} bytes. */
  OutboundBatch newBatch();

  /** Waits until the link takes more (back-pressure), at most {@code timeoutNanos}; true if it does. */
  boolean awaitWritable(long timeoutNanos) throws InterruptedException;

  /** Queues a finished batch (its buffer's position marks the end) carrying {@code guestBytes}. */
  void sendBatch(OutboundBatch batch, long guestBytes);

  /** Guest bytes of the batches the link has handed to the network so far. */
  long guestBytesFlushed();

  /** Wire bytes (frames with headers) handed to the network so far. */
  long wireBytesFlushed();

  @Override
  void close();
}
