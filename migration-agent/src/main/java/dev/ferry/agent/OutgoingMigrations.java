package dev.ferry.agent;

import dev.ferry.engine.precopy.SourceMigration;
import java.util.ArrayList;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The migrations this host sends, each on its own thread, at most {@code limit} at once. A
 * migration is registered before its engine exists, so a cancel can never miss it.
 */
final class OutgoingMigrations {
  /** One outgoing migration: its thread, and its engine once that exists. */
  static final class Outgoing {
    final Thread thread;
    volatile SourceMigration engine;
    volatile String cancelReason;

    Outgoing(Thread thread) {
      this.thread = thread;
    }

    /** False if the migration is past its commit and can no longer be cancelled. */
    boolean cancel(String reason) {
      cancelReason = reason;
      SourceMigration e = engine;
      return e == null || e.cancel(reason);
    }

    /** Hands the engine over; a cancel that came before it reaches it now. */
    void started(SourceMigration migration) {
      engine = migration;
      if (cancelReason != null) {
        migration.cancel(cancelReason);
      }
    }
  }

  private final String hostId;
  private final int limit;
  private final Map<String, Outgoing> running = new ConcurrentHashMap<>();

  OutgoingMigrations(String hostId, int limit) {
    this.hostId = hostId;
    this.limit = limit;
  }

  /** Throws if migration {@code id} cannot start now (limit reached, id taken). */
  void checkRoom(String id) {
    if (running.size() >= limit) {
      throw new IllegalStateException("host " + hostId + " already sends " + running.size()
          + " migrations (limit " + limit + ")");
    }
    if (running.containsKey(id)) {
      throw new IllegalStateException("a migration named " + id + " already runs");
    }
  }

  /** Registers migration {@code id} with its (not yet started) daemon thread running {@code body}. */
  Outgoing add(String id, Runnable body) {
    Thread thread = new Thread(body, "migrate-" + id);
    thread.setDaemon(true);
    Outgoing handle = new Outgoing(thread);
    running.put(id, handle);
    return handle;
  }

  /** Migration {@code id}, or null if it does not run here. */
  Outgoing get(String id) {
    return running.get(id);
  }

  void remove(String id) {
    running.remove(id);
  }

  Set<String> ids() {
    return Set.copyOf(running.keySet());
  }

  /** Cancels every migration (their guests resume here) and waits up to {@code waitMillis} for them. */
  void cancelAllAndWait(String reason, long waitMillis) {
    running.values().forEach(m -> m.cancel(reason));
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(waitMillis);
    for (Outgoing m : new ArrayList<>(running.values())) {
      try {
        m.thread.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
  }
}
