package dev.ferry.engine.precopy;

import dev.ferry.proto.Control;
import java.util.concurrent.Callable;
import java.util.function.BiConsumer;

/** The target engine's way back to the source, its timer and its worker; Netty or in-memory. */
public interface ControlSink {
  /** The target's steps that may block (ZooKeeper, memory allocation, fsync). */
  enum Step {
    /** Reading the cluster's records for a Hello. */
    CHECK_HELLO,
    /** Capacity, name and memory, after the source's proof. */
    ADMIT,
    /** Committing the move and resuming the guest: inside the pause. */
    COMMIT
  }

  void send(Control message);

  /** Runs {@code task} on the target's thread after {@code delayNanos}. */
  void schedule(Runnable task, long delayNanos);

  /** Closes the link after what was sent is flushed. */
  void close();

  /**
   * Runs {@code work}, which may block, away from a thread that must not (an event loop), then
   * {@code then} with its result or what it threw, on that same worker thread (no further hop:
   * the commit's worker resumes the guest right where the answer came). Until {@code then} has
   * returned the link delivers nothing more to the migration, so messages keep their order.
   * This default runs both on the caller's thread (a link whose thread may block).
   */
  default <T> void offload(Step step, Callable<T> work, BiConsumer<T, Throwable> then) {
    T result;
    try {
      result = work.call();
    } catch (Exception e) {
      then.accept(null, e);
      return;
    }
    then.accept(result, null);
  }
}
