package dev.ferry.engine.precopy;

import dev.ferry.engine.wire.PageBatchWriter;
import dev.ferry.proto.Control;
import java.nio.ByteBuffer;

/**
 * The source engine's view of its connection to the target. The engine never sees a socket:
 * the Netty transport and the in-memory link of the tests both implement this.
 */
public interface SourceLink extends AutoCloseable {

  /** The buffers of one page batch being built; both direct. */
  interface OutboundBatch {
    /** Room for the batch header ({@code Wire.BATCH_HEADER_BYTES_MAX}). */
    ByteBuffer header();

    /** Room for compressed payloads ({@code Wire.BATCH_PAYLOAD_BYTES_MAX}); allocated on first use. */
    ByteBuffer payload();

    /** Gives the buffers back without sending them; again, or after a send took them, it does nothing. */
    void discard();
  }

  /** Sends a control message; throws {@link LinkException} if the link is gone. */
  void sendControl(Control message);

  /**
   * The next control message from the target, waiting up to {@code timeoutNanos}; null if none
   * came. Throws {@link LinkException} once the link is gone and nothing is left to read.
   */
  Control pollControl(long timeoutNanos) throws InterruptedException;

  /** Buffers for one batch. */
  OutboundBatch newBatch();

  /** Waits until the link takes more (back-pressure), at most {@code timeoutNanos}; true if it does. */
  boolean awaitWritable(long timeoutNanos) throws InterruptedException;

  /**
   * Queues a finished batch carrying {@code guestBytes}: {@code layout} lists its header and
   * segments (raw pages are referenced in guest memory, not copied); read it before returning.
   */
  void sendBatch(OutboundBatch batch, PageBatchWriter layout, long guestBytes);

  /** Guest bytes of the batches the link has handed to the network so far. */
  long guestBytesFlushed();

  /** Wire bytes (frames with headers) handed to the network so far. */
  long wireBytesFlushed();

  @Override
  void close();
}
