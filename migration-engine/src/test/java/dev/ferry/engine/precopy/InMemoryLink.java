package dev.ferry.engine.precopy;

import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.wire.PageBatchWriter;
import dev.ferry.engine.wire.Wire;
import dev.ferry.proto.Control;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.LongConsumer;

/**
 * A source link wired straight into a {@link TargetMigration} on the caller's thread: no socket,
 * deterministic. Time passes only through {@code waiter} (a real park, or the simulation's clock),
 * and each batch costs {@code transferCost} of it, so a simulated bandwidth is just a cost.
 */
final class InMemoryLink implements SourceLink {
  private final Clock clock;
  private final LongConsumer waiter;
  private final LongConsumer transferCost;
  private final ArrayDeque<Control> toSource = new ArrayDeque<>();
  private final List<long[]> timerDeadlines = new ArrayList<>();
  private final List<Runnable> timerTasks = new ArrayList<>();
  private final ByteBuffer headerBuffer = ByteBuffer.allocateDirect(Wire.BATCH_HEADER_BYTES_MAX);
  private final ByteBuffer payloadBuffer = ByteBuffer.allocateDirect(Wire.BATCH_PAYLOAD_BYTES_MAX);
  private final ByteBuffer bodyBuffer = ByteBuffer.allocateDirect(Wire.BATCH_BODY_BYTES_MAX);
  private int chunkBytes = Integer.MAX_VALUE;
  private TargetMigration target;
  private Consumer<ByteBuffer> corrupter = b -> { };
  private String brokenReason;
  private boolean targetClosed;
  private long guestBytes;
  private long wireBytes;

  InMemoryLink(Clock clock, LongConsumer waiter, LongConsumer transferCost) {
    this.clock = clock;
    this.waiter = waiter;
    this.transferCost = transferCost;
  }

  void connect(TargetMigration target) {
    this.target = target;
  }

  /** Delivers batch bodies in pieces of at most {@code bytes} (the transport may split them anywhere). */
  void chunkBatches(int bytes) {
    this.chunkBytes = bytes;
  }

  /** Lets a test flip bytes of every batch before the target sees it. */
  void corruptBatches(Consumer<ByteBuffer> corrupter) {
    this.corrupter = corrupter;
  }

  /** Cuts the link: both ends see it fail. */
  void breakLink(String reason) {
    if (brokenReason == null) {
      brokenReason = reason;
      target.onLinkLost(reason);
    }
  }

  boolean targetClosed() {
    return targetClosed;
  }

  // --- SourceLink (the source's end) ---

  @Override
  public void sendControl(Control message) {
    checkOpen();
    wireBytes += message.getSerializedSize() + 5;
    target.onControl(message);
  }

  @Override
  public Control pollControl(long timeoutNanos) {
    runDueTimers();
    if (toSource.isEmpty() && timeoutNanos > 0) {
      waiter.accept(timeoutNanos);
      runDueTimers();
    }
    if (!toSource.isEmpty()) {
      return toSource.poll();
    }
    if (brokenReason != null || targetClosed) {
      throw new LinkException(brokenReason != null ? brokenReason : "target closed the connection");
    }
    return null;
  }

  @Override
  public OutboundBatch newBatch() {
    checkOpen();
    headerBuffer.clear();
    payloadBuffer.clear();
    return new OutboundBatch() {
      @Override
      public ByteBuffer header() {
        return headerBuffer;
      }

      @Override
      public ByteBuffer payload() {
        return payloadBuffer;
      }

      @Override
      public void discard() {
        headerBuffer.clear();
      }
    };
  }

  @Override
  public boolean awaitWritable(long timeoutNanos) {
    checkOpen();
    return true;
  }

  @Override
  public void sendBatch(OutboundBatch batch, PageBatchWriter layout, long batchGuestBytes) {
    checkOpen();
    // Time passes before the bytes are read from guest memory, as with a real socket sending
    // raw pages in place: the guest may rewrite a page after its checksum was taken.
    int bytes = layout.bodyBytes();
    layout.seal();
    transferCost.accept(bytes);
    bodyBuffer.clear();
    layout.copyBodyTo(bodyBuffer);
    ByteBuffer body = bodyBuffer.flip();
    corrupter.accept(body);
    if (!targetClosed) {
      target.onPagesStart(bytes);
      while (body.hasRemaining() && !targetClosed) {
        int n = Math.min(chunkBytes, body.remaining());
        target.onPageBytes(body.slice(body.position(), n));
        body.position(body.position() + n);
      }
    }
    guestBytes += batchGuestBytes;
    wireBytes += bytes + 5;
  }

  @Override
  public long guestBytesFlushed() {
    return guestBytes;
  }

  @Override
  public long wireBytesFlushed() {
    return wireBytes;
  }

  @Override
  public void close() {
    if (brokenReason == null) {
      brokenReason = "source closed the connection";
      target.onLinkLost(brokenReason);
    }
  }

  private void checkOpen() {
    if (brokenReason != null) {
      throw new LinkException(brokenReason);
    }
    if (targetClosed) {
      throw new LinkException("target closed the connection");
    }
  }

  // --- ControlSink (the target's end) ---

  /** The target's end of the link. */
  final ControlSink targetEnd = new ControlSink() {
    @Override
    public void send(Control message) {
      toSource.add(message);
    }

    @Override
    public void schedule(Runnable task, long delayNanos) {
      timerDeadlines.add(new long[] {clock.nanoTime() + delayNanos});
      timerTasks.add(task);
    }

    @Override
    public void close() {
      targetClosed = true;
    }
  };

  private void runDueTimers() {
    for (int i = 0; i < timerTasks.size(); i++) {
      if (timerDeadlines.get(i)[0] <= clock.nanoTime()) {
        Runnable task = timerTasks.remove(i);
        timerDeadlines.remove(i);
        task.run();
        i = -1;
      }
    }
  }
}
