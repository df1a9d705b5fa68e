package dev.ferry.engine.precopy;

import java.util.ArrayDeque;
import java.util.Arrays;

/**
 * What recent commits cost on migrations from this agent (the target's commit step, as the
 * pause steps measured it): the downtime budget's reserve for the next commit is their median,
 * rounded up to whole milliseconds. Before any commit the caller's estimate stands.
 */
public final class CommitCostHistory {
  public static final int SAMPLES_MAX = 15;
  private final ArrayDeque<Long> micros = new ArrayDeque<>();

  /** Records one commit that took {@code commitMicros} inside the pause. */
  public synchronized void record(long commitMicros) {
    micros.addLast(Math.max(0, commitMicros));
    while (micros.size() > SAMPLES_MAX) {
      micros.removeFirst();
    }
  }

  public synchronized int size() {
    return micros.size();
  }

  /** The median recent commit in whole milliseconds (rounded up), or {@code fallbackMillis} before any. */
  public synchronized long reserveMillis(long fallbackMillis) {
    if (micros.isEmpty()) {
      return fallbackMillis;
    }
    return ceilMillis(medianMicros(micros.stream().mapToLong(Long::longValue).toArray()));
  }

  /** The median of {@code values} (the upper of the two middle ones for an even count). */
  static long medianMicros(long[] values) {
    long[] sorted = values.clone();
    Arrays.sort(sorted);
    return sorted[sorted.length / 2];
  }

  static long ceilMillis(long micros) {
    return (micros + 999) / 1000;
  }
}
