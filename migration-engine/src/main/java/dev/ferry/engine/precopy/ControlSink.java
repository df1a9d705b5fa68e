package dev.ferry.engine.precopy;

import dev.ferry.proto.Control;

/** The target engine's way back to the source, and its timer; Netty or in-memory. */
public interface ControlSink {
  void send(Control message);

  /** Runs {@code task} on the target's thread after {@code delayNanos}. */
  void schedule(Runnable task, long delayNanos);

  /** Closes the link after what was sent is flushed. */
  void close();
}
