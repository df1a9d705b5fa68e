package dev.ferry.bench.jmh;

import dev.ferry.engine.guest.Guest;
import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.wire.PageBatchWriter;
import dev.ferry.engine.wire.PageStreamReader;
import dev.ferry.engine.wire.Wire;
import java.nio.ByteBuffer;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.zip.CRC32C;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4JNIFastResetCompressor;
import net.jpountz.lz4.LZ4SafeDecompressor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The page codec, per 4 KiB page (zero check, CRC32C, LZ4 both ways) and per 64-page batch
 * ({@link PageBatchWriter} on the source, {@link PageStreamReader} on the target).
 *
 * <p>Pages come from 64 MiB guests filled with the guest's own text-like or random content, and
 * each operation takes the next page (or batch) in address order, wrapping: 64 MiB is more than
 * the last-level cache, so pages are read from DRAM as a pre-copy round reads them. Bytes per
 * operation are fixed (4096 per page, 262144 per batch), so GB/s = bytes / (ns/op).
 */
public class PageCodecBenchmark extends FerryBenchmark {
  static final int PAGE = GuestMemory.PAGE_BYTES;
  /** LZ4_compressBound(4096), the destination the writer gives the compressor. */
  static final int LZ4_BOUND = PAGE + PAGE / 255 + 16;

  /** Per-page work: two guests' worth of pages, plus committed zero pages. */
  @State(Scope.Thread)
  public static class Pages {
    Guest text;
    Guest random;
    GuestMemory zeros;
    GuestMemory randomMemory;
    ByteBuffer[] textViews;
    ByteBuffer[] randomViews;
    final CRC32C crc = new CRC32C();
    LZ4JNIFastResetCompressor compressor;
    LZ4SafeDecompressor decompressor;
    ByteBuffer compressOut;
    ByteBuffer compressedTexts;
    int[] compressedAt;
    int[] compressedLength;
    ByteBuffer decompressed;
    int cursor;

    @Setup(Level.Trial)
    public void setUp() {
      FerryJvm.check();
      text = BenchGuests.manual("text", 11);
      random = BenchGuests.manual("random", 12);
      randomMemory = random.memory();
      zeros = GuestMemory.allocate(BenchGuests.MEMORY_BYTES);
      for (int p = 0; p < zeros.pageCount(); p++) {
        zeros.zeroPage(p); // committed pages full of zeros, not the kernel's shared zero page
      }
      textViews = views(text.memory());
      randomViews = views(randomMemory);
      LZ4Factory lz4 = LZ4Factory.fastestInstance();
      compressor = lz4.fastResetCompressor();
      decompressor = lz4.safeDecompressor();
      compressOut = ByteBuffer.allocateDirect(LZ4_BOUND);
      decompressed = ByteBuffer.allocateDirect(PAGE);
      // Every text page compressed once, for the decompression benchmark.
      compressedTexts = ByteBuffer.allocateDirect(BenchGuests.PAGES * LZ4_BOUND);
      compressedAt = new int[BenchGuests.PAGES];
      compressedLength = new int[BenchGuests.PAGES];
      int at = 0;
      long randomBytes = 0;
      for (int p = 0; p < BenchGuests.PAGES; p++) {
        int n = compressor.compress(textViews[p], 0, PAGE, compressedTexts, at, LZ4_BOUND);
        compressedAt[p] = at;
        compressedLength[p] = n;
        at += n;
        randomBytes += compressor.compress(randomViews[p], 0, PAGE, compressOut, 0, LZ4_BOUND);
      }
      System.out.printf(Locale.ROOT, "%n# LZ4 of a page: text %.0f bytes (%.2fx), random %.0f bytes (%.3fx)%n",
          at / (double) BenchGuests.PAGES, PAGE * (double) BenchGuests.PAGES / at,
          randomBytes / (double) BenchGuests.PAGES, PAGE * (double) BenchGuests.PAGES / randomBytes);
    }

    static ByteBuffer[] views(GuestMemory memory) {
      ByteBuffer[] views = new ByteBuffer[memory.pageCount()];
      for (int p = 0; p < views.length; p++) {
        views[p] = memory.pageView(p);
      }
      return views;
    }

    int next() {
      cursor = (cursor + 1) & (BenchGuests.PAGES - 1);
      return cursor;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (compressor != null) {
        compressor.close();
      }
      if (zeros != null) {
        zeros.release();
      }
      if (text != null) {
        text.destroy();
      }
      if (random != null) {
        random.destroy();
      }
    }
  }

  @Benchmark
  public boolean zeroCheckZeroPage(Pages s) {
    return s.zeros.isZeroPage(s.next());
  }

  /** Returns at the first non-zero word: the cost is mostly fetching the page's first line. */
  @Benchmark
  public boolean zeroCheckRandomPage(Pages s) {
    return s.randomMemory.isZeroPage(s.next());
  }

  @Benchmark
  public long crc32cPage(Pages s) {
    ByteBuffer page = s.textViews[s.next()];
    page.clear();
    s.crc.reset();
    s.crc.update(page);
    return s.crc.getValue();
  }

  @Benchmark
  public int lz4CompressTextPage(Pages s) {
    return s.compressor.compress(s.textViews[s.next()], 0, PAGE, s.compressOut, 0, LZ4_BOUND);
  }

  @Benchmark
  public int lz4CompressRandomPage(Pages s) {
    return s.compressor.compress(s.randomViews[s.next()], 0, PAGE, s.compressOut, 0, LZ4_BOUND);
  }

  @Benchmark
  public int lz4DecompressTextPage(Pages s) {
    int p = s.next();
    return s.decompressor.decompress(s.compressedTexts, s.compressedAt[p], s.compressedLength[p],
        s.decompressed, 0, PAGE);
  }

  /**
   * Whole batches of 64 consecutive pages of one content: the writer encoding them, the reader
   * applying bodies the writer produced beforehand (one per batch of the guest) to a target.
   */
  @State(Scope.Thread)
  public static class Batches {
    @Param({"text", "random"})
    public String content;

    Guest source;
    GuestMemory target;
    PageBatchWriter writer;
    PageStreamReader reader;
    ByteBuffer header;
    ByteBuffer payload;
    Supplier<ByteBuffer> payloadSupplier;
    ByteBuffer[] rawBodies;
    ByteBuffer[] lz4Bodies;
    int batches;
    int cursor;

    @Setup(Level.Trial)
    public void setUp() {
      FerryJvm.check();
      source = BenchGuests.manual(content, 21);
      writer = new PageBatchWriter(source.memory());
      header = ByteBuffer.allocateDirect(Wire.BATCH_HEADER_BYTES_MAX);
      payload = ByteBuffer.allocateDirect(Wire.BATCH_PAYLOAD_BYTES_MAX);
      payloadSupplier = () -> payload;
      batches = BenchGuests.PAGES / Wire.BATCH_PAGES_MAX;
      rawBodies = encodeAll(false);
      lz4Bodies = encodeAll(true);
      target = GuestMemory.allocate(BenchGuests.MEMORY_BYTES);
      target.populate(0, target.pageCount());
      reader = new PageStreamReader(target);
    }

    private ByteBuffer[] encodeAll(boolean compress) {
      ByteBuffer scratch = ByteBuffer.allocateDirect(Wire.BATCH_BODY_BYTES_MAX);
      ByteBuffer[] bodies = new ByteBuffer[batches];
      for (int b = 0; b < batches; b++) {
        encode(b, compress);
        scratch.clear();
        writer.copyBodyTo(scratch);
        bodies[b] = ByteBuffer.allocateDirect(scratch.position()).put(scratch.flip());
      }
      return bodies;
    }

    int encode(int batch, boolean compress) {
      int first = batch * Wire.BATCH_PAGES_MAX;
      writer.begin(header, payloadSupplier, 1);
      for (int p = first; p < first + Wire.BATCH_PAGES_MAX; p++) {
        writer.add(p, false, compress);
      }
      writer.finish();
      return writer.bodyBytes();
    }

    long apply(ByteBuffer body) {
      body.clear();
      reader.beginBatch(body.remaining());
      reader.consume(body);
      return reader.pagesApplied();
    }

    int next() {
      cursor = cursor + 1 == batches ? 0 : cursor + 1;
      return cursor;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      try {
        if (reader != null && reader.pagesApplied() >= BenchGuests.PAGES) {
          // Every batch was applied at least once: the target must now equal the source.
          if (reader.suspectPages() != 0) {
            throw new IllegalStateException(reader.suspectPages() + " pages failed their checksum");
          }
          ByteBuffer a = source.memory().view(0, (int) BenchGuests.MEMORY_BYTES);
          ByteBuffer b = target.view(0, (int) BenchGuests.MEMORY_BYTES);
          if (a.mismatch(b) != -1) {
            throw new IllegalStateException("target differs from source at byte " + a.mismatch(b));
          }
        }
      } finally {
        if (writer != null) {
          writer.close();
        }
        if (target != null) {
          target.release();
        }
        if (source != null) {
          source.destroy();
        }
      }
    }
  }

  /** Zero check and CRC32C of 64 pages; raw pages are not copied (the socket sends them from guest memory). */
  @Benchmark
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public int batchEncodeRaw(Batches s) {
    return s.encode(s.next(), false);
  }

  /** Zero check, CRC32C and LZ4 of 64 pages (random pages go raw after LZ4 fails to save 1/8). */
  @Benchmark
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public int batchEncodeLz4(Batches s) {
    return s.encode(s.next(), true);
  }

  /** Copies 64 raw pages into target memory and checks their CRC32C. */
  @Benchmark
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public long batchApplyRaw(Batches s) {
    return s.apply(s.rawBodies[s.next()]);
  }

  /** Decompresses 64 LZ4 pages into target memory and checks their CRC32C (random: all raw). */
  @Benchmark
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public long batchApplyLz4(Batches s) {
    return s.apply(s.lz4Bodies[s.next()]);
  }
}
