package dev.ferry.engine.precopy;

/**
 * Guest bytes per second the link moved, measured continuously from samples of the bytes the
 * link confirmed written and the time it took. The estimate covers the most recent
 * {@link #WINDOW_NANOS} of sampled time, so a tiny round (whose pages vanish into socket buffers
 * instantly) cannot inflate it much.
 */
public final class BandwidthMeter {
  static final long WINDOW_NANOS = 250_000_000L;
  private static final int SAMPLES_MAX = 256;

  private final long[] bytes = new long[SAMPLES_MAX];
  private final long[] nanos = new long[SAMPLES_MAX];
  private int next;
  private int size;

  /** Adds one sample: {@code sampleBytes} moved in {@code sampleNanos}. */
  public void record(long sampleBytes, long sampleNanos) {
    if (sampleNanos <= 0 || sampleBytes < 0) {
      return;
    }
    bytes[next] = sampleBytes;
    nanos[next] = sampleNanos;
    next = (next + 1) % SAMPLES_MAX;
    size = Math.min(size + 1, SAMPLES_MAX);
  }

  /** The estimate, or 0 before the first sample. */
  public long bytesPerSecond() {
    long totalBytes = 0;
    long totalNanos = 0;
    for (int i = 1; i <= size && totalNanos < WINDOW_NANOS; i++) {
      int at = (next - i + SAMPLES_MAX) % SAMPLES_MAX;
      totalBytes += bytes[at];
      totalNanos += nanos[at];
    }
    return totalNanos == 0 ? 0 : (long) (totalBytes * 1e9 / totalNanos);
  }
}
