package dev.ferry.engine.precopy;

import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.proto.CompressionMode;

/**
 * Decides, window by window, whether pages go LZ4-compressed — for {@code auto}, only when that
 * moves guest bytes faster. LZ4 compresses text at ~0.3 GB/s per core while loopback TCP moves
 * ~3 GB/s, so compressing everything would make a fast link several times slower; on a link
 * slower than the compressor it multiplies the throughput.
 *
 * <p>While sending raw, a window in which the engine spent at least a quarter of its time waiting
 * for the link (the link, not the CPU, is the bottleneck) triggers a short probe: the next
 * {@value #PROBE_PAGES} pages are compressed and timed. From the compressor's speed C (median page), the ratio r
 * and the raw rate L, compressed throughput is min(C, L / r); if that beats L by 20 % the engine
 * compresses, else it backs off (doubling up to {@value #BACKOFF_WINDOWS_MAX} windows) before
 * probing again. While compressing, a window slower than the last raw rate returns to raw, and
 * every {@value #REFRESH_EVERY_WINDOWS} windows one raw window refreshes L.
 *
 * <p>Pure: time and byte counts come from the caller.
 */
public final class CompressionGovernor {
  static final long WINDOW_NANOS = 20_000_000L;
  static final int PROBE_PAGES = 64;
  static final double LINK_BOUND_FRACTION = 0.25;
  static final double GAIN_REQUIRED = 1.2;
  static final int BACKOFF_WINDOWS_MIN = 4;
  static final int BACKOFF_WINDOWS_MAX = 256;
  static final int REFRESH_EVERY_WINDOWS = 25;

  enum Mode { RAW, PROBE, COMPRESS, REFRESH }

  private final CompressionMode setting;
  private Mode mode = Mode.RAW;
  private long windowStartNanos = Long.MIN_VALUE;
  private long windowStartBytes;
  private long windowStartBlocked;
  private double rawBytesPerSecond;
  private double compressedBytesPerSecond;
  private int backoffWindows = BACKOFF_WINDOWS_MIN;
  private int windowsUntilProbe;
  private int windowsInMode;
  private int probeAttempts;
  private final long[] probeNanos = new long[PROBE_PAGES];
  private long probeOutBytes;

  public CompressionGovernor(CompressionMode setting) {
    this.setting = setting;
  }

  /** Whether the next page should be compressed. */
  public boolean compressNext() {
    return switch (setting) {
      case COMPRESSION_ON -> true;
      case COMPRESSION_OFF -> false;
      default -> mode == Mode.PROBE || mode == Mode.COMPRESS;
    };
  }

  /** True while compressing for real (not probing). */
  public boolean compressing() {
    return setting == CompressionMode.COMPRESSION_ON
        || (setting == CompressionMode.COMPRESSION_AUTO && mode == Mode.COMPRESS);
  }

  /** Reports one compression attempt: how long it took and how many bytes it produced. */
  public void recordAttempt(long nanos, int outBytes) {
    if (mode != Mode.PROBE) {
      return;
    }
    probeNanos[probeAttempts++] = nanos;
    probeOutBytes += outBytes;
    if (probeAttempts >= PROBE_PAGES) {
      concludeProbe();
    }
  }

  private void concludeProbe() {
    // The median page, not the mean: one descheduled or first (library-loading) call must not
    // make the compressor look slow.
    java.util.Arrays.sort(probeNanos, 0, probeAttempts);
    double compressorBytesPerSecond = GuestMemory.PAGE_BYTES * 1e9 / Math.max(1, probeNanos[probeAttempts / 2]);
    double ratio = probeOutBytes / (probeAttempts * (double) GuestMemory.PAGE_BYTES);
    double predicted = Math.min(compressorBytesPerSecond, rawBytesPerSecond / Math.max(ratio, 0.01));
    org.slf4j.LoggerFactory.getLogger(CompressionGovernor.class).debug(
        "probe: compressor {} MB/s, ratio {}, raw {} MB/s, predicted {} MB/s", (long) (compressorBytesPerSecond / 1e6),
        String.format("%.2f", ratio), (long) (rawBytesPerSecond / 1e6), (long) (predicted / 1e6));
    probeAttempts = 0;
    probeOutBytes = 0;
    windowStartNanos = Long.MIN_VALUE; // the next window measures the new mode only
    if (predicted > rawBytesPerSecond * GAIN_REQUIRED) {
      enter(Mode.COMPRESS);
      backoffWindows = BACKOFF_WINDOWS_MIN;
    } else {
      backOff();
    }
  }

  /**
   * Called after every batch with the totals so far: guest bytes sent and nanos spent waiting for
   * the link. Closes a window every {@link #WINDOW_NANOS}.
   */
  public void tick(long nowNanos, long guestBytesTotal, long blockedNanosTotal) {
    if (setting != CompressionMode.COMPRESSION_AUTO) {
      return;
    }
    if (windowStartNanos == Long.MIN_VALUE) {
      startWindow(nowNanos, guestBytesTotal, blockedNanosTotal);
      return;
    }
    long elapsed = nowNanos - windowStartNanos;
    if (elapsed < WINDOW_NANOS || mode == Mode.PROBE) {
      return;
    }
    double rate = (guestBytesTotal - windowStartBytes) * 1e9 / elapsed;
    double blockedFraction = (blockedNanosTotal - windowStartBlocked) / (double) elapsed;
    closeWindow(rate, blockedFraction);
    startWindow(nowNanos, guestBytesTotal, blockedNanosTotal);
  }

  private void closeWindow(double rate, double blockedFraction) {
    windowsInMode++;
    switch (mode) {
      case RAW -> {
        rawBytesPerSecond = rate;
        if (blockedFraction >= LINK_BOUND_FRACTION && --windowsUntilProbe <= 0) {
          enter(Mode.PROBE);
        }
      }
      case REFRESH -> {
        rawBytesPerSecond = rate;
        if (blockedFraction >= LINK_BOUND_FRACTION && compressedBytesPerSecond > rate * GAIN_REQUIRED) {
          enter(Mode.COMPRESS);
        } else {
          backOff();
        }
      }
      case COMPRESS -> {
        compressedBytesPerSecond = rate;
        if (rate < rawBytesPerSecond * 1.05) {
          backOff();
        } else if (windowsInMode >= REFRESH_EVERY_WINDOWS) {
          enter(Mode.REFRESH);
        }
      }
      default -> { }
    }
  }

  private void backOff() {
    enter(Mode.RAW);
    windowsUntilProbe = backoffWindows;
    backoffWindows = Math.min(BACKOFF_WINDOWS_MAX, backoffWindows * 2);
  }

  private void enter(Mode next) {
    mode = next;
    windowsInMode = 0;
  }

  private void startWindow(long nowNanos, long guestBytesTotal, long blockedNanosTotal) {
    windowStartNanos = nowNanos;
    windowStartBytes = guestBytesTotal;
    windowStartBlocked = blockedNanosTotal;
  }

  Mode mode() {
    return mode;
  }
}
