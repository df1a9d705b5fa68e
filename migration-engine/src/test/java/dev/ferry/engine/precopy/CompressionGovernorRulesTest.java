package dev.ferry.engine.precopy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.engine.precopy.CompressionGovernor.Mode;
import dev.ferry.proto.CompressionMode;
import org.junit.jupiter.api.Test;

/**
 * The compression governor's rules one at a time, fed exact windows (time, guest bytes, time spent
 * waiting for the link) and exact probe samples, where {@link CompressionGovernorTest} runs it on
 * simulated links. Rates here are guest bytes per second: 2 MB in a 20 ms window is 100 MB/s.
 */
class CompressionGovernorRulesTest {
  private static final long MS = 1_000_000L;
  private static final long WINDOW = CompressionGovernor.WINDOW_NANOS;
  private static final int PAGE = 4096;

  /** Feeds one governor as the engine does: running totals of time, bytes and waiting. */
  private static final class Feed {
    final CompressionGovernor governor;
    long now = 1_000 * MS;
    long bytes;
    long blocked;

    Feed(CompressionMode mode) {
      governor = new CompressionGovernor(mode);
      tick(); // the first tick only starts a window
    }

    void tick() {
      governor.tick(now, bytes, blocked);
    }

    /** Time passes and bytes move, without a tick. */
    void advance(long nanos, long guestBytes, long blockedNanos) {
      now += nanos;
      bytes += guestBytes;
      blocked += blockedNanos;
    }

    /** One 20 ms window moving {@code guestBytes}, waiting for the link {@code blockedFraction} of it. */
    void window(long guestBytes, double blockedFraction) {
      advance(WINDOW, guestBytes, (long) (WINDOW * blockedFraction));
      tick();
    }

    /** A link-bound window at 100 MB/s. */
    void linkBound() {
      window(2_000_000, 0.5);
    }

    /** {@code pages} probe attempts, each taking {@code nanos} and producing {@code outBytes}. */
    void attempts(int pages, long nanos, int outBytes) {
      for (int i = 0; i < pages; i++) {
        governor.recordAttempt(nanos, outBytes);
      }
    }

    /**
     * A probe whose compressor is fast and halves pages (worth it on a 100 MB/s link), then the
     * next batch's tick, which starts the first window after the probe.
     */
    void goodProbe() {
      attempts(CompressionGovernor.PROBE_PAGES, 1_000, PAGE / 2);
      tick();
    }

    /** A probe whose compressor runs at 4 MB/s (never worth it), then the next batch's tick. */
    void slowProbe() {
      attempts(CompressionGovernor.PROBE_PAGES, MS, PAGE / 2);
      tick();
    }

    /** Link-bound windows until the governor probes; how many it took. */
    int windowsUntilProbe() {
      for (int n = 1; n <= 1000; n++) {
        linkBound();
        if (mode() == Mode.PROBE) {
          return n;
        }
      }
      throw new AssertionError("no probe within 1000 link-bound windows");
    }

    /** From RAW on a 100 MB/s link into COMPRESS; the next tick starts the first compressed window. */
    void compressAfterProbe() {
      assertEquals(1, windowsUntilProbe());
      goodProbe();
      assertEquals(Mode.COMPRESS, mode());
    }

    Mode mode() {
      return governor.mode();
    }
  }

  @Test
  void onAndOffNeverChangeWhateverTheLinkDoes() {
    for (CompressionMode fixed : new CompressionMode[] {CompressionMode.COMPRESSION_ON, CompressionMode.COMPRESSION_OFF}) {
      Feed feed = new Feed(fixed);
      boolean on = fixed == CompressionMode.COMPRESSION_ON;
      for (int i = 0; i < 50; i++) {
        feed.linkBound();
        feed.slowProbe();
        assertEquals(on, feed.governor.compressNext(), fixed.toString());
        assertEquals(on, feed.governor.compressing(), fixed.toString());
      }
      assertEquals(Mode.RAW, feed.mode(), fixed + " keeps no state of its own");
    }
  }

  @Test
  void autoStartsRawAndAProbeCompressesWithoutCountingAsCompressing() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    assertFalse(feed.governor.compressNext());
    assertFalse(feed.governor.compressing());
    feed.linkBound();
    assertEquals(Mode.PROBE, feed.mode(), "the first link-bound window probes at once");
    assertTrue(feed.governor.compressNext(), "probe pages are compressed");
    assertFalse(feed.governor.compressing(), "but a probe is not compressing for real");
    feed.goodProbe();
    assertEquals(Mode.COMPRESS, feed.mode());
    assertTrue(feed.governor.compressNext());
    assertTrue(feed.governor.compressing());
  }

  @Test
  void aProbeEndsAfterItsPagesAndNotBefore() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.linkBound();
    feed.attempts(CompressionGovernor.PROBE_PAGES - 1, 1_000, PAGE / 2);
    assertEquals(Mode.PROBE, feed.mode());
    feed.attempts(1, 1_000, PAGE / 2);
    assertEquals(Mode.COMPRESS, feed.mode());
  }

  @Test
  void whileProbingTimePassingClosesNoWindow() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.linkBound();
    for (int i = 0; i < 10; i++) {
      feed.window(0, 1.0);
      assertEquals(Mode.PROBE, feed.mode());
    }
  }

  @Test
  void attemptsOutsideAProbeAreIgnored() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.attempts(10 * CompressionGovernor.PROBE_PAGES, 1_000, 1);
    assertEquals(Mode.RAW, feed.mode());
    feed.linkBound();
    feed.attempts(CompressionGovernor.PROBE_PAGES - 1, 1_000, PAGE / 2);
    assertEquals(Mode.PROBE, feed.mode(), "the ignored attempts did not count towards this probe");
  }

  /** The median page decides: one descheduled call must not make a fast compressor look slow. */
  @Test
  void oneSlowCallDoesNotSpoilAProbe() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.linkBound();
    feed.attempts(1, 1_000 * MS, PAGE / 2); // a whole second: the mean would be 4 MB/s
    feed.attempts(CompressionGovernor.PROBE_PAGES - 1, 1_000, PAGE / 2);
    assertEquals(Mode.COMPRESS, feed.mode());
  }

  @Test
  void aCompressorSlowerForMostPagesLosesTheProbe() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.linkBound();
    feed.attempts(31, 1_000, PAGE / 2);
    feed.attempts(33, MS, PAGE / 2); // the median page: 4 MB/s
    assertEquals(Mode.RAW, feed.mode());
  }

  /** The median is the middle of the sorted times, not the call in the middle of the probe. */
  @Test
  void theMedianIsOfTheSortedTimes() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.linkBound();
    feed.attempts(32, 1_000, PAGE / 2);
    feed.attempts(1, 1_000 * MS, PAGE / 2); // the 33rd call, in the middle, was descheduled
    feed.attempts(31, 1_000, PAGE / 2);
    assertEquals(Mode.COMPRESS, feed.mode());
  }

  /**
   * Exactly 20 % better is not enough. 12.8 MB in 30 ms is 426.7 MB/s raw; a compressor at 8 us
   * per page runs at 512 MB/s, exactly 1.2 times that (the halved pages would allow 853 MB/s).
   */
  @Test
  void aProbeExactlyTwentyPercentFasterLoses() {
    Feed exact = new Feed(CompressionMode.COMPRESSION_AUTO);
    exact.advance(30 * MS, 12_800_000, 15 * MS);
    exact.tick();
    exact.attempts(CompressionGovernor.PROBE_PAGES, 8_000, PAGE / 2);
    assertEquals(Mode.RAW, exact.mode());
    Feed faster = new Feed(CompressionMode.COMPRESSION_AUTO);
    faster.advance(30 * MS, 12_800_000, 15 * MS);
    faster.tick();
    faster.attempts(CompressionGovernor.PROBE_PAGES, 7_999, PAGE / 2);
    assertEquals(Mode.COMPRESS, faster.mode());
  }

  @Test
  void incompressiblePagesLoseTheProbe() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.linkBound();
    feed.attempts(CompressionGovernor.PROBE_PAGES, 1_000, PAGE); // no smaller: nothing to gain
    assertEquals(Mode.RAW, feed.mode());
  }

  /** 100 MB/s raw; halved pages would give 200 MB/s but the compressor manages only the given rate. */
  @Test
  void compressionMustBeatTheRawRateByAFifth() {
    Feed winning = new Feed(CompressionMode.COMPRESSION_AUTO);
    winning.linkBound();
    winning.attempts(CompressionGovernor.PROBE_PAGES, 32_768, PAGE / 2); // 125 MB/s
    assertEquals(Mode.COMPRESS, winning.mode());
    Feed losing = new Feed(CompressionMode.COMPRESSION_AUTO);
    losing.linkBound();
    losing.attempts(CompressionGovernor.PROBE_PAGES, 40_960, PAGE / 2); // 100 MB/s
    assertEquals(Mode.RAW, losing.mode());
  }

  @Test
  void onlyLinkBoundWindowsLeadToAProbe() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    for (int i = 0; i < 100; i++) {
      feed.window(2_000_000, 0.2);
    }
    assertEquals(Mode.RAW, feed.mode(), "the CPU, not the link, is the bottleneck: compression cannot help");
    feed.window(2_000_000, 0.25);
    assertEquals(Mode.PROBE, feed.mode(), "a quarter of the time waiting is link-bound");
  }

  @Test
  void aWindowClosesAfterTwentyMillisecondsAndNotBefore() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.advance(WINDOW - 1, 2_000_000, WINDOW - 1);
    feed.tick();
    assertEquals(Mode.RAW, feed.mode());
    feed.advance(1, 0, 1);
    feed.tick();
    assertEquals(Mode.PROBE, feed.mode());
  }

  /** The window's rate is its own bytes over its own time, which a compressed window compares with. */
  @Test
  void aWindowMeasuresOnlyWhatHappenedInIt() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.advance(10 * WINDOW, 500_000_000, 0); // 2.5 GB/s, CPU-bound: sets the raw rate
    feed.tick();
    feed.window(2_000_000, 0.5); // then 100 MB/s, link-bound: the raw rate is now 100 MB/s
    feed.goodProbe();
    assertEquals(Mode.COMPRESS, feed.mode(), "200 MB/s predicted beats 100 MB/s, not 2.5 GB/s");
  }

  /** The probe's own time (pages compressed one by one) is not the compressed rate. */
  @Test
  void theFirstCompressedWindowStartsAfterTheProbe() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.linkBound();
    feed.advance(1_000 * MS, CompressionGovernor.PROBE_PAGES * PAGE, 0); // a slow second of probing
    feed.tick();
    feed.goodProbe();
    feed.window(4_000_000, 0.5); // 200 MB/s compressed
    assertEquals(Mode.COMPRESS, feed.mode());
  }

  @Test
  void compressedSlowerThanRawGoesBackToRaw() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.compressAfterProbe();
    feed.window(4_000_000, 0.5); // 200 MB/s against 100 MB/s raw
    assertEquals(Mode.COMPRESS, feed.mode());
    feed.window(2_000_000, 0.5); // 100 MB/s: no better than raw
    assertEquals(Mode.RAW, feed.mode());
    assertFalse(feed.governor.compressNext());
    assertFalse(feed.governor.compressing());
  }

  /** Compressed must stay 5 % ahead of raw; exactly 5 % ahead still is. */
  @Test
  void compressedFivePercentAheadOfRawStays() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.compressAfterProbe();
    feed.window(2_100_000, 0.5); // 105 MB/s
    assertEquals(Mode.COMPRESS, feed.mode());
    feed.window(2_099_999, 0.5);
    assertEquals(Mode.RAW, feed.mode());
  }

  /** Every failed probe doubles the wait before the next, up to 256 link-bound windows. */
  @Test
  void failedProbesBackOffExponentially() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    assertEquals(1, feed.windowsUntilProbe());
    StringBuilder waits = new StringBuilder();
    for (int probe = 0; probe < 8; probe++) {
      feed.slowProbe();
      assertEquals(Mode.RAW, feed.mode());
      waits.append(feed.windowsUntilProbe()).append(' ');
    }
    assertEquals("4 8 16 32 64 128 256 256 ", waits.toString());
  }

  @Test
  void aWinningProbeResetsTheBackOff() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.windowsUntilProbe();
    feed.slowProbe();
    assertEquals(4, feed.windowsUntilProbe());
    feed.slowProbe();
    assertEquals(8, feed.windowsUntilProbe());
    feed.goodProbe();
    feed.window(1_000_000, 0.5); // compressed turned out slow: back to raw
    assertEquals(Mode.RAW, feed.mode());
    assertEquals(4, feed.windowsUntilProbe(), "the back-off starts again from its minimum");
  }

  /** Every 25 compressed windows, one raw window measures the link again. */
  @Test
  void compressingRefreshesTheRawRateEveryTwentyFiveWindows() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.compressAfterProbe();
    for (int i = 1; i < CompressionGovernor.REFRESH_EVERY_WINDOWS; i++) {
      feed.window(4_000_000, 0.5);
      assertEquals(Mode.COMPRESS, feed.mode(), "window " + i);
    }
    feed.window(4_000_000, 0.5);
    assertEquals(Mode.REFRESH, feed.mode());
    assertFalse(feed.governor.compressNext(), "the refresh window sends raw");
    assertFalse(feed.governor.compressing());
    feed.window(2_000_000, 0.5); // raw is still 100 MB/s: compressed (200 MB/s) wins
    assertEquals(Mode.COMPRESS, feed.mode());
    for (int i = 1; i <= CompressionGovernor.REFRESH_EVERY_WINDOWS; i++) {
      feed.window(4_000_000, 0.5);
    }
    assertEquals(Mode.REFRESH, feed.mode(), "the count starts again after a refresh");
  }

  @Test
  void aRefreshThatFindsRawFastEnoughStaysRaw() {
    Feed faster = refreshing();
    faster.window(3_400_000, 0.5); // 170 MB/s raw: 200 MB/s compressed is not 20 % better
    assertEquals(Mode.RAW, faster.mode());
    assertEquals(4, faster.windowsUntilProbe(), "and backs off like a failed probe");
    Feed notBound = refreshing();
    notBound.window(2_000_000, 0.24); // raw as slow as before, but the link is no longer the limit
    assertEquals(Mode.RAW, notBound.mode());
    Feed bound = refreshing();
    bound.window(2_000_000, 0.25);
    assertEquals(Mode.COMPRESS, bound.mode());
  }

  /** After a refresh, compressed must again beat raw by more than 20 %: 240 MB/s against 200 MB/s does not. */
  @Test
  void aRefreshNeedsMoreThanTwentyPercent() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.compressAfterProbe();
    for (int i = 0; i < CompressionGovernor.REFRESH_EVERY_WINDOWS; i++) {
      feed.window(4_800_000, 0.5); // 240 MB/s compressed
    }
    assertEquals(Mode.REFRESH, feed.mode());
    feed.window(4_000_000, 0.5); // 200 MB/s raw
    assertEquals(Mode.RAW, feed.mode());
  }

  @Test
  void aRefreshComparesWithTheLastCompressedWindow() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.compressAfterProbe();
    for (int i = 1; i < CompressionGovernor.REFRESH_EVERY_WINDOWS; i++) {
      feed.window(4_000_000, 0.5);
    }
    feed.window(2_500_000, 0.5); // the last compressed window: 125 MB/s
    assertEquals(Mode.REFRESH, feed.mode());
    feed.window(2_000_000, 0.5); // 100 MB/s raw: 125 MB/s is 25 % better
    assertEquals(Mode.COMPRESS, feed.mode());
  }

  /** 25 windows at 200 MB/s compressed, then the governor is about to measure raw again. */
  private static Feed refreshing() {
    Feed feed = new Feed(CompressionMode.COMPRESSION_AUTO);
    feed.compressAfterProbe();
    for (int i = 0; i < CompressionGovernor.REFRESH_EVERY_WINDOWS; i++) {
      feed.window(4_000_000, 0.5);
    }
    assertEquals(Mode.REFRESH, feed.mode());
    return feed;
  }
}
