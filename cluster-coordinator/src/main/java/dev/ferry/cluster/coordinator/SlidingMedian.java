package dev.ferry.cluster.coordinator;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.OptionalDouble;

/**
 * The last few samples of one measured value (a host's or a VM's CPU use, a dirty rate), each with
 * the time it was reported, and their median: one spike among them moves nothing, a change that
 * lasts for more than half the window does. Samples older than the window's age limit are
 * dropped, so a value that stopped being reported fades out. Pure; not thread-safe.
 */
final class SlidingMedian {
  private final int size;
  private final long maxAgeMillis;
  private final ArrayDeque<long[]> samples = new ArrayDeque<>();

  /**
   * @param size the samples kept (the last {@code size} reports)
   * @param maxAgeMillis samples older than this are not counted
   */
  SlidingMedian(int size, long maxAgeMillis) {
    if (size < 1 || maxAgeMillis < 1) {
      throw new IllegalArgumentException("window of " + size + " samples, " + maxAgeMillis + " ms");
    }
    this.size = size;
    this.maxAgeMillis = maxAgeMillis;
  }

  /**
   * Adds a sample reported at {@code atMillis}; one no newer than the last sample is the same report
   * seen again (or an older one), and is ignored. Non-finite or negative values are ignored too.
   */
  void add(long atMillis, double value) {
    if (!Double.isFinite(value) || value < 0) {
      return;
    }
    long[] last = samples.peekLast();
    if (last != null && atMillis <= last[0]) {
      return;
    }
    samples.addLast(new long[] {atMillis, Double.doubleToRawLongBits(value)});
    while (samples.size() > size) {
      samples.removeFirst();
    }
  }

  /** The median of the samples no older than the age limit at {@code nowMillis}; empty if none. */
  OptionalDouble median(long nowMillis) {
    double[] values = samples.stream().filter(s -> nowMillis - s[0] <= maxAgeMillis)
        .mapToDouble(s -> Double.longBitsToDouble(s[1])).sorted().toArray();
    if (values.length == 0) {
      return OptionalDouble.empty();
    }
    int mid = values.length / 2;
    return OptionalDouble.of(values.length % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2);
  }

  /** True once every sample is older than the age limit: the window can be forgotten. */
  boolean expired(long nowMillis) {
    long[] last = samples.peekLast();
    return last == null || nowMillis - last[0] > maxAgeMillis;
  }

  int samples() {
    return samples.size();
  }

  @Override
  public String toString() {
    return Arrays.toString(samples.stream().mapToDouble(s -> Double.longBitsToDouble(s[1])).toArray());
  }
}
