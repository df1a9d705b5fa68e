package dev.ferry.engine.precopy;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/**
 * The link's measured speed, which decides when pre-copy switches over: bytes over time across
 * the most recent quarter second of samples.
 */
class BandwidthMeterTest {
  private static final long MS = 1_000_000L;
  private static final long MB = 1_000_000L;

  @Test
  void withoutSamplesTheBandwidthIsUnknown() {
    assertEquals(0, new BandwidthMeter().bytesPerSecond());
  }

  @Test
  void oneSampleIsItsBytesOverItsTime() {
    BandwidthMeter meter = new BandwidthMeter();
    meter.record(5 * MB, 10 * MS);
    assertEquals(500 * MB, meter.bytesPerSecond());
  }

  /** Total bytes over total time, not the mean of the samples' rates (that would be 1.25 GB/s). */
  @Test
  void samplesAddUpAsTotalBytesOverTotalTime() {
    BandwidthMeter meter = new BandwidthMeter();
    meter.record(2 * MB, 1 * MS);  // 2 GB/s
    meter.record(2 * MB, 4 * MS);  // 0.5 GB/s
    assertEquals(800 * MB, meter.bytesPerSecond());
  }

  /** An idle sample is time the link moved nothing in: it lowers the estimate. */
  @Test
  void aSampleOfNoBytesCounts() {
    BandwidthMeter meter = new BandwidthMeter();
    meter.record(10 * MB, 100 * MS);
    meter.record(0, 100 * MS);
    assertEquals(50 * MB, meter.bytesPerSecond());
  }

  /**
   * A batch that vanished into socket buffers in no measurable time says nothing about the link;
   * counted, it would make the link look infinitely fast and pre-copy switch over too early.
   */
  @Test
  void samplesWithoutTimeOrWithNegativeValuesAreIgnored() {
    BandwidthMeter meter = new BandwidthMeter();
    meter.record(100 * MB, 0);
    assertEquals(0, meter.bytesPerSecond(), "a zero-time sample alone still leaves the bandwidth unknown");
    meter.record(1 * MB, 10 * MS);
    meter.record(100 * MB, 0);
    meter.record(100 * MB, -5 * MS);
    meter.record(-1, 10 * MS);
    assertEquals(100 * MB, meter.bytesPerSecond());
  }

  /** A sample that fills the window alone hides every older one. */
  @Test
  void onlyTheMostRecentWindowCounts() {
    BandwidthMeter meter = new BandwidthMeter();
    meter.record(400 * MB, 250 * MS); // 1.6 GB/s, then the link slows down
    meter.record(10 * MB, 250 * MS);  // 40 MB/s
    assertEquals(40 * MB, meter.bytesPerSecond());
  }

  /** Samples are taken newest first until they cover the window; the one that crosses it counts whole. */
  @Test
  void theWindowTakesNewestSamplesUntilItIsCovered() {
    BandwidthMeter covered = new BandwidthMeter();
    covered.record(500 * MB, 150 * MS); // older than the window: the two after it cover 250 ms
    covered.record(100 * MB, 100 * MS);
    covered.record(100 * MB, 150 * MS);
    assertEquals(800 * MB, covered.bytesPerSecond());
    BandwidthMeter notCovered = new BandwidthMeter();
    notCovered.record(500 * MB, 151 * MS); // the two after it cover only 249 ms: this one counts too
    notCovered.record(100 * MB, 100 * MS);
    notCovered.record(100 * MB, 149 * MS);
    assertEquals(1750 * MB, notCovered.bytesPerSecond(), "700 MB over 400 ms");
  }

  /** Many small samples: the ring of samples wraps and still reads the newest ones. */
  @Test
  void afterManySamplesTheNewestDecide() {
    BandwidthMeter meter = new BandwidthMeter();
    for (int i = 0; i < 1000; i++) {
      meter.record(1 * MB, 1 * MS); // 1 GB/s for a second
    }
    for (int i = 0; i < 300; i++) {
      meter.record(100_000, 1 * MS); // then 100 MB/s, for longer than the window
    }
    assertEquals(100 * MB, meter.bytesPerSecond());
    for (int i = 0; i < 100; i++) {
      meter.record(1 * MB, 1 * MS); // 100 ms back at 1 GB/s: 100 of the 250 ms window
    }
    assertEquals((100 * MB + 150 * 100_000L) * 1000 / 250, meter.bytesPerSecond());
  }
}
