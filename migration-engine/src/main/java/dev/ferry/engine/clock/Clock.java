package dev.ferry.engine.clock;

/**
 * The one source of time for the engine, the guest and the policies. Production uses
 * {@link #SYSTEM} (CLOCK_MONOTONIC, shared by every process on a host); the seeded simulation
 * supplies its own.
 */
public interface Clock {
  Clock SYSTEM = System::nanoTime;

  long nanoTime();

  default long millisSince(long startNanos) {
    return (nanoTime() - startNanos) / 1_000_000L;
  }
}
