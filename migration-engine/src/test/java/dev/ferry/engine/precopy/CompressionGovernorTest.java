package dev.ferry.engine.precopy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.proto.CompressionMode;
import org.junit.jupiter.api.Test;

/**
 * The compression decision on synthetic links: a pure state machine fed time, bytes, waiting and
 * compressor samples, as the engine feeds it.
 */
class CompressionGovernorTest {
  private static final long MS = 1_000_000L;

  /** A simulated sender: raw pages move at {@code linkBytesPerSecond}; LZ4 runs at the given speed and ratio. */
  private static final class Link {
    final CompressionGovernor governor;
    final double linkBytesPerSecond;
    final double compressorBytesPerSecond;
    final double ratio;
    long now;
    long guestBytes;
    long blocked;
    int compressedPages;
    int pages;

    Link(CompressionMode mode, double link, double compressor, double ratio) {
      this.governor = new CompressionGovernor(mode);
      this.linkBytesPerSecond = link;
      this.compressorBytesPerSecond = compressor;
      this.ratio = ratio;
    }

    /** Sends {@code n} pages, one 64-page batch at a time. */
    void send(int n) {
      for (int i = 0; i < n; i++) {
        boolean compress = governor.compressNext();
        double wire = compress ? GuestMemory.PAGE_BYTES * ratio : GuestMemory.PAGE_BYTES;
        long linkNanos = (long) (wire * 1e9 / linkBytesPerSecond);
        long cpuNanos = compress ? (long) (GuestMemory.PAGE_BYTES * 1e9 / compressorBytesPerSecond) : 0;
        if (compress) {
          compressedPages++;
          governor.recordAttempt(cpuNanos, (int) wire);
        }
        // The engine waits for the link when the link is slower than its own work.
        long step = Math.max(linkNanos, cpuNanos);
        blocked += step - cpuNanos;
        now += step;
        guestBytes += GuestMemory.PAGE_BYTES;
        pages++;
        if (pages % 64 == 0) {
          governor.tick(now, guestBytes, blocked);
        }
      }
    }

    double seconds() {
      return now / 1e9;
    }
  }

  @Test
  void aSlowLinkWithCompressibleDataEndsUpCompressing() {
    Link link = new Link(CompressionMode.COMPRESSION_AUTO, 100 * (1 << 20), 300e6, 0.45);
    link.send(262_144);
    assertEquals(CompressionGovernor.Mode.COMPRESS, link.governor.mode());
    assertTrue(link.compressedPages > 0.8 * link.pages, link.compressedPages + " of " + link.pages);
    Link off = new Link(CompressionMode.COMPRESSION_OFF, 100 * (1 << 20), 300e6, 0.45);
    off.send(262_144);
    assertTrue(link.seconds() <= 0.7 * off.seconds(), link.seconds() + " s vs " + off.seconds() + " s uncompressed");
  }

  @Test
  void aFastLinkStaysRawAndProbingCostsAlmostNothing() {
    Link auto = new Link(CompressionMode.COMPRESSION_AUTO, 3e9, 300e6, 0.45);
    auto.send(262_144);
    Link off = new Link(CompressionMode.COMPRESSION_OFF, 3e9, 300e6, 0.45);
    off.send(262_144);
    assertEquals(CompressionGovernor.Mode.RAW, auto.governor.mode());
    assertTrue(auto.compressedPages < 0.01 * auto.pages, auto.compressedPages + " probe pages");
    assertTrue(auto.seconds() <= 1.05 * off.seconds(), auto.seconds() + " s vs " + off.seconds() + " s");
  }

  @Test
  void incompressibleDataIsNotCompressedEvenOnASlowLink() {
    Link link = new Link(CompressionMode.COMPRESSION_AUTO, 100 * (1 << 20), 1e9, 1.0);
    link.send(262_144);
    assertFalse(link.governor.compressing());
    assertTrue(link.compressedPages < 0.02 * link.pages, link.compressedPages + " attempts");
  }

  @Test
  void onAndOffAreObeyed() {
    assertTrue(new CompressionGovernor(CompressionMode.COMPRESSION_ON).compressNext());
    assertFalse(new CompressionGovernor(CompressionMode.COMPRESSION_OFF).compressNext());
    assertFalse(new CompressionGovernor(CompressionMode.COMPRESSION_AUTO).compressNext(), "auto starts raw");
  }
}
