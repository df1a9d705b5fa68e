package dev.ferry.engine.wire;

import static dev.ferry.engine.guest.GuestMemory.PAGE_BYTES;
import static dev.ferry.engine.wire.PageBatchFixture.direct;
import static dev.ferry.engine.wire.PageBatchFixture.entries;
import static dev.ferry.engine.wire.PageBatchFixture.feed;
import static dev.ferry.engine.wire.PageBatchFixture.feedWhole;
import static dev.ferry.engine.wire.PageBatchFixture.heap;
import static dev.ferry.engine.wire.PageBatchFixture.randomChunks;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.wire.PageBatchFixture.Crafted;
import dev.ferry.engine.wire.PageBatchFixture.Entry;
import dev.ferry.engine.wire.PageBatchFixture.Kind;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.IntSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link PageStreamReader} under any chunking and any input: splitting a body differently never
 * changes what it does; hostile bodies raise {@link ProtocolException} and nothing else; and a page
 * holding data the source never had there is always one the reader flags as suspect.
 */
class PageStreamReaderFuzzTest {
  private PageBatchFixture fixture;
  private GuestMemory source;
  /** Reused for direct chunks, so that thousands of cases do not each allocate a body. */
  private final ByteBuffer scratch = ByteBuffer.allocateDirect(Wire.BATCH_BODY_BYTES_MAX + 1024);

  @BeforeEach
  void setUp() {
    fixture = new PageBatchFixture(4242);
    source = fixture.source;
  }

  @AfterEach
  void release() {
    fixture.close();
  }

  // --- Chunking -------------------------------------------------------------------------------

  private enum Chunking { WHOLE, UNIFORM, SMALL, NEAR_PAGE, MIXED, ONE_BYTE }

  private enum Body { MIXED, SMALL, RAW_FLIP, LZ4_FLIP, ZEROS, RAW_RUN }

  @Test
  void anyChunkingGivesTheSameResultAsTheWholeBody() {
    Map<Chunking, Integer> chunkings = new EnumMap<>(Chunking.class);
    Map<Body, Integer> bodies = new EnumMap<>(Body.class);
    int refusals = 0;
    int suspects = 0;
    for (long seed = 1; seed <= 4; seed++) {
      SplittableRandom random = new SplittableRandom(seed);
      GuestMemory whole = fixture.target();
      GuestMemory chunked = fixture.target();
      PageStreamReader wholeReader = new PageStreamReader(whole);
      PageStreamReader chunkedReader = new PageStreamReader(chunked);
      for (int i = 0; i < 45; i++) {
        Body kind = Body.values()[random.nextInt(Body.values().length)];
        byte[] body = body(kind, random);
        Chunking chunking = i % 15 == 7 ? Chunking.ONE_BYTE : Chunking.values()[1 + random.nextInt(4)];
        boolean heapChunks = random.nextBoolean();
        String context = "seed " + seed + ", batch " + i + " (" + kind + ", " + body.length + " bytes, "
            + chunking + " chunks, " + (heapChunks ? "heap" : "direct") + ")";
        chunkings.merge(chunking, 1, Integer::sum);
        bodies.merge(kind, 1, Integer::sum);

        String wholeOutcome = apply(wholeReader, direct(body), () -> Integer.MAX_VALUE);
        String chunkedOutcome = apply(chunkedReader, heapChunks ? heap(body) : direct(body), chunks(chunking, random, body));
        assertEquals(wholeOutcome, chunkedOutcome, context + ": outcome");
        assertEquals(stats(wholeReader), stats(chunkedReader), context + ": reader state");
        for (Entry e : entries(body)) {
          if (!PageBatchFixture.samePage(whole, chunked, e.page())) {
            fail(context + ": page " + e.page() + " differs between whole and chunked feeding");
          }
        }
        if (!wholeOutcome.equals("ok")) {
          refusals++;
          wholeReader = new PageStreamReader(whole); // a refused batch ends the migration
          chunkedReader = new PageStreamReader(chunked);
        }
        suspects += wholeReader.suspectPages() > 0 ? 1 : 0;
      }
      PageBatchFixture.assertSameMemory(whole, chunked, "seed " + seed + ": whole vs chunked memory");
    }
    assertEquals(Chunking.values().length - 1, chunkings.size(), "every chunking ran: " + chunkings);
    assertEquals(Body.values().length, bodies.size(), "every kind of body ran: " + bodies);
    assertTrue(refusals > 0 && suspects > 0, "refusals " + refusals + ", batches ending with suspects " + suspects);
  }

  @Test
  void heapChunksApplyLikeDirectOnes() {
    GuestMemory target = fixture.target();
    PageStreamReader reader = new PageStreamReader(target);
    SplittableRandom random = new SplittableRandom(9);
    List<Integer> pages = new ArrayList<>();
    for (long seed = 0; seed < 20; seed++) {
      byte[] body = fixture.mixedBatch(seed);
      entries(body).forEach(e -> pages.add(e.page()));
      feed(reader, heap(body), seed < 2 ? () -> 1 : randomChunks(random, 70_000));
    }
    assertEquals(20 * Wire.BATCH_PAGES_MAX, reader.pagesApplied());
    assertTrue(reader.pagesRaw() > 0 && reader.pagesLz4() > 0 && reader.pagesZero() > 0);
    assertEquals(0, reader.suspectPages());
    fixture.assertPagesEqualSource(target, pages, "heap chunks");
  }

  // --- Fuzz -----------------------------------------------------------------------------------

  @Test
  void randomBodiesRaiseOnlyProtocolExceptionsAndNeverLandAnUnflaggedWrongPage() {
    GuestMemory target = fixture.target();
    Map<String, Integer> outcomes = new TreeMap<>();
    int cases = 3_000;
    for (long seed = 0; seed < cases; seed++) {
      SplittableRandom random = new SplittableRandom(seed);
      byte[] data = switch (random.nextInt(4)) {
        case 0 -> randomBytes(random, random.nextBoolean() ? 64 : 3 * PAGE_BYTES);
        case 1 -> plausibleHeader(random);
        default -> sealedHeader(random);
      };
      int bodyBytes = data.length;
      switch (random.nextInt(10)) {
        case 0 -> data = Arrays.copyOf(data, random.nextInt(data.length + 1)); // the stream stops early
        case 1 -> bodyBytes = Math.max(0, data.length - 1 - random.nextInt(16)); // more bytes than the frame
        default -> { }
      }
      String context = "seed " + seed + ": " + data.length + " random bytes as a body of " + bodyBytes;
      outcomes.merge(check(target, data, bodyBytes, random, context), 1, Integer::sum);
      if (seed % 100 == 99) {
        assertAllZero(target, context);
      }
    }
    assertAllZero(target, "after all random bodies");
    assertTrue(outcomes.getOrDefault("refused", 0) > cases / 2, "outcomes " + outcomes);
    assertTrue(outcomes.getOrDefault("complete, suspect", 0) > 50, "outcomes " + outcomes);
    assertTrue(outcomes.getOrDefault("complete", 0) > 20, "outcomes " + outcomes);
    assertTrue(outcomes.getOrDefault("incomplete", 0) > 20, "outcomes " + outcomes);
  }

  @Test
  void mutatedValidBodiesRaiseOnlyProtocolExceptionsAndNeverLandAnUnflaggedWrongPage() {
    byte[][] valid = {fixture.mixedBatch(400), fixture.mixedBatch(401), fixture.mixedBatch(402),
        fixture.encode(403, new int[] {fixture.pageOf(Kind.TEXT, 0), fixture.pageOf(Kind.RANDOM, 0),
            fixture.pageOf(Kind.ZERO, 0)}, false, true)};
    GuestMemory target = fixture.target();
    Map<String, Integer> outcomes = new TreeMap<>();
    int cases = 2_000;
    for (long seed = 0; seed < cases; seed++) {
      SplittableRandom random = new SplittableRandom(seed);
      byte[] bytes = valid[random.nextInt(valid.length)];
      StringBuilder mutations = new StringBuilder();
      for (int i = 0, n = 1 + random.nextInt(4); i < n; i++) {
        bytes = mutate(bytes, random, mutations);
      }
      String context = "seed " + seed + ":" + mutations;
      String outcome = check(target, bytes, bytes.length, random, context);
      outcomes.merge(outcome, 1, Integer::sum);
      if (seed % 100 == 99) {
        assertAllZero(target, context);
      }
    }
    assertAllZero(target, "after all mutations");
    int undetected = outcomes.getOrDefault("complete", 0);
    assertTrue(undetected < cases / 20, "too many mutated batches passed unnoticed: " + outcomes);
    assertTrue(outcomes.getOrDefault("complete, suspect", 0) > 100, "outcomes " + outcomes);
  }

  /**
   * Feeds {@code data} as a batch of {@code bodyBytes} in random chunks to a fresh reader over
   * {@code target} (all zero), checks the invariants, and returns {@code target} to all zero.
   * Returns what happened: refused, incomplete, complete, or complete with suspect pages.
   */
  private String check(GuestMemory target, byte[] data, int bodyBytes, SplittableRandom random, String context) {
    PageStreamReader reader = new PageStreamReader(target);
    boolean heapChunks = random.nextBoolean();
    IntSupplier chunks = random.nextInt(8) == 0 ? randomChunks(random, 16) : randomChunks(random, 70_000);
    ByteBuffer chunkSource = heapChunks ? heap(data) : load(data);
    String outcome;
    try {
      reader.beginBatch(bodyBytes);
      while (chunkSource.hasRemaining()) {
        int n = Math.min(chunkSource.remaining(), chunks.getAsInt());
        reader.consume(chunkSource.slice(chunkSource.position(), n));
        chunkSource.position(chunkSource.position() + n);
      }
      outcome = reader.inBatch() ? "incomplete" : reader.suspectPages() > 0 ? "complete, suspect" : "complete";
    } catch (ProtocolException e) {
      if (e.getMessage() == null || e.getMessage().isEmpty()) {
        throw new AssertionError(context + ": a ProtocolException without a message", e);
      }
      outcome = "refused";
    } catch (RuntimeException | Error e) {
      throw new AssertionError(context + ": " + e.getClass().getName() + " instead of ProtocolException", e);
    }
    context += " (" + outcome + ", " + (heapChunks ? "heap" : "direct") + " chunks)";
    if (outcome.startsWith("complete")) {
      assertEquals(data.length, bodyBytes, context + ": a batch completed on a different number of bytes");
    }

    // The only pages the reader may write are those a header it accepts names.
    Set<Integer> named = namedPages(data, target.pageCount());
    List<Integer> wrong = fixture.wrongPages(target, named);
    // A refused or cut-off batch may leave the page it was writing half done and unflagged (the
    // migration ends there); every other wrong page must be flagged.
    int unflaggedAllowed = outcome.startsWith("complete") ? 0 : 1;
    if (wrong.size() > reader.suspectPages() + unflaggedAllowed) {
      fail(context + ": pages " + wrong + " hold data the source never had there, but only "
          + reader.suspectPages() + " pages are suspect");
    }
    if (outcome.startsWith("complete")) {
      assertEquals(reader.pagesApplied(), reader.pagesZero() + reader.pagesRaw() + reader.pagesLz4(), context);
      // Each wrong page is among the suspects: resending it intact takes one off the count.
      for (int page : wrong) {
        int before = reader.suspectPages();
        feedWhole(reader, fixture.encode(0, new int[] {page}, false, false));
        if (reader.suspectPages() != before - 1) {
          fail(context + ": page " + page + " holds wrong data but was not suspect (" + before + " -> "
              + reader.suspectPages() + " suspects after an intact resend)");
        }
      }
      fixture.assertPagesEqualSource(target, wrong, context + ": after the resend");
    }
    for (int page : named) {
      target.zeroPage(page);
    }
    return outcome;
  }

  /** The pages named by {@code data}'s header if its count and checksum are ones a reader accepts. */
  private static Set<Integer> namedPages(byte[] data, int pageCount) {
    Set<Integer> pages = new TreeSet<>();
    if (data.length < PageBatchFixture.headerBytes(1)) {
      return pages;
    }
    int count = PageBatchFixture.count(data);
    if (count < 1 || count > Wire.BATCH_PAGES_MAX || PageBatchFixture.headerBytes(count) > data.length) {
      return pages;
    }
    ByteBuffer b = ByteBuffer.wrap(data);
    int crcAt = PageBatchFixture.headerBytes(count) - 4;
    if (b.getInt(crcAt) != PageBatchFixture.crc32c(data, 0, crcAt)) {
      return pages;
    }
    for (int i = 0; i < count; i++) {
      int page = b.getInt(PageBatchFixture.FIXED_BYTES + i * PageBatchFixture.ENTRY_BYTES);
      if (page >= 0 && page < pageCount) {
        pages.add(page);
      }
    }
    return pages;
  }

  private static void assertAllZero(GuestMemory target, String context) {
    for (int p = 0; p < target.pageCount(); p++) {
      if (!target.isZeroPage(p)) {
        fail(context + ": page " + p + " was written although no accepted header named it");
      }
    }
  }

  // --- Generators -----------------------------------------------------------------------------

  private static byte[] randomBytes(SplittableRandom random, int lengthMax) {
    byte[] bytes = new byte[random.nextInt(lengthMax)];
    random.nextBytes(bytes);
    return bytes;
  }

  /** Random bytes with a count in range, so that the header checksum is what refuses them. */
  private static byte[] plausibleHeader(SplittableRandom random) {
    byte[] bytes = randomBytes(random, 3 * PAGE_BYTES);
    if (bytes.length >= 6) {
      int count = 1 + random.nextInt(Wire.BATCH_PAGES_MAX);
      bytes[4] = (byte) (count >>> 8);
      bytes[5] = (byte) count;
    }
    return bytes;
  }

  /**
   * A header with a correct checksum over mostly plausible, sometimes wrong, entries, followed by
   * payloads that are random, or real pages under right or wrong checksums: the reader's entry
   * checks, lz4 decoding and suspect marking all see hostile input.
   */
  private byte[] sealedHeader(SplittableRandom random) {
    Crafted crafted = new Crafted(random.nextInt());
    int count = random.nextInt(4) == 0 ? 1 + random.nextInt(Wire.BATCH_PAGES_MAX) : 1 + random.nextInt(6);
    for (int i = 0; i < count; i++) {
      int page = random.nextInt(50) == 0 ? random.nextInt() : random.nextInt(source.pageCount());
      byte encoding = (byte) (random.nextInt(40) == 0 ? random.nextInt(256) : random.nextInt(3));
      boolean rightChecksum = random.nextBoolean();
      int checksum = random.nextInt();
      switch (encoding) {
        case Wire.ENCODING_ZERO -> {
          if (rightChecksum) {
            checksum = PageBatchFixture.zeroPageChecksum(page);
          }
          crafted.entry(page, encoding, checksum, random.nextInt(30) == 0 ? random.nextInt(1 << 16) : 0);
        }
        case Wire.ENCODING_RAW -> {
          int from = random.nextInt(source.pageCount());
          if (rightChecksum && page >= 0 && page < source.pageCount()) {
            from = page;
            checksum = fixture.sourceChecksum(page);
          }
          crafted.entry(page, encoding, checksum, PAGE_BYTES);
          if (random.nextBoolean()) {
            crafted.payload(source.pageView(from));
          } else {
            crafted.payload(randomBytes(random, PAGE_BYTES + 1, PAGE_BYTES));
          }
        }
        case Wire.ENCODING_LZ4 -> {
          byte[] payload;
          if (random.nextBoolean()) {
            int from = fixture.pageOf(Kind.TEXT, random.nextInt(50));
            if (rightChecksum && page >= 0 && page < source.pageCount() && fixture.kinds[page] == Kind.TEXT) {
              from = page;
              checksum = fixture.sourceChecksum(page);
            }
            payload = compress(source.pageView(from));
          } else {
            payload = randomBytes(random, PAGE_BYTES, 1);
          }
          crafted.entry(page, encoding, checksum, payload.length).payload(payload);
        }
        default -> crafted.entry(page, encoding, checksum, random.nextInt(1 << 16));
      }
    }
    byte[] bytes = crafted.bytes();
    if (random.nextInt(8) == 0) {
      bytes = Arrays.copyOf(bytes, Math.max(0, bytes.length + random.nextInt(33) - 16));
    }
    return bytes;
  }

  /** {@code min..max-1} random bytes. */
  private static byte[] randomBytes(SplittableRandom random, int max, int min) {
    byte[] bytes = new byte[min + random.nextInt(max - min)];
    random.nextBytes(bytes);
    return bytes;
  }

  private static byte[] mutate(byte[] bytes, SplittableRandom random, StringBuilder log) {
    if (bytes.length == 0) {
      log.append(" grow");
      return new byte[] {(byte) random.nextInt()};
    }
    int at = random.nextInt(bytes.length);
    switch (random.nextInt(6)) {
      case 0, 1 -> {
        int bit = random.nextInt(8);
        log.append(" flip(").append(at).append(',').append(bit).append(')');
        byte[] copy = bytes.clone();
        copy[at] ^= (byte) (1 << bit);
        return copy;
      }
      case 2 -> {
        log.append(" truncate(").append(at).append(')');
        return Arrays.copyOf(bytes, at);
      }
      case 3 -> {
        int length = 1 + random.nextInt(16);
        log.append(" insert(").append(at).append(',').append(length).append(')');
        byte[] inserted = new byte[length];
        random.nextBytes(inserted);
        byte[] copy = new byte[bytes.length + length];
        System.arraycopy(bytes, 0, copy, 0, at);
        System.arraycopy(inserted, 0, copy, at, length);
        System.arraycopy(bytes, at, copy, at + length, bytes.length - at);
        return copy;
      }
      case 4 -> {
        int length = Math.min(1 + random.nextInt(16), bytes.length - at);
        log.append(" delete(").append(at).append(',').append(length).append(')');
        byte[] copy = new byte[bytes.length - length];
        System.arraycopy(bytes, 0, copy, 0, at);
        System.arraycopy(bytes, at + length, copy, at, bytes.length - at - length);
        return copy;
      }
      default -> {
        // A boundary value in a 16-bit field: count or payload length, when it lands on one.
        int[] values = {0, 1, 64, 65, 4095, 4096, 0xFFFF};
        int value = values[random.nextInt(values.length)];
        at = Math.min(at, bytes.length - 2);
        if (at < 0) {
          return bytes;
        }
        log.append(" u16(").append(at).append(',').append(value).append(')');
        byte[] copy = bytes.clone();
        copy[at] = (byte) (value >>> 8);
        copy[at + 1] = (byte) value;
        return copy;
      }
    }
  }

  /** A body of the given kind; flipped ones carry one bit flip in one page's payload. */
  private byte[] body(Body kind, SplittableRandom random) {
    int round = random.nextInt(1000);
    return switch (kind) {
      case MIXED -> fixture.mixedBatch(random.nextLong());
      case SMALL -> {
        int[] pages = new int[1 + random.nextInt(6)];
        for (int i = 0; i < pages.length; i++) {
          pages[i] = random.nextInt(source.pageCount());
        }
        yield fixture.encode(round, pages, false, random.nextBoolean());
      }
      case RAW_FLIP, LZ4_FLIP -> {
        byte[] body = fixture.mixedBatch(random.nextLong());
        byte encoding = kind == Body.RAW_FLIP ? Wire.ENCODING_RAW : Wire.ENCODING_LZ4;
        List<Entry> matching = entries(body).stream().filter(e -> e.encoding() == encoding).toList();
        Entry e = matching.get(random.nextInt(matching.size()));
        body[e.payloadAt() + random.nextInt(e.length())] ^= (byte) (1 << random.nextInt(8));
        yield body;
      }
      case ZEROS -> {
        int[] pages = new int[1 + random.nextInt(Wire.BATCH_PAGES_MAX)];
        int first = random.nextInt(500);
        for (int i = 0; i < pages.length; i++) {
          pages[i] = fixture.pageOf(Kind.ZERO, first + i);
        }
        yield fixture.encode(round, pages, false, true);
      }
      case RAW_RUN -> {
        int[] pages = new int[Wire.BATCH_PAGES_MAX];
        int first = random.nextInt(source.pageCount() - pages.length);
        for (int i = 0; i < pages.length; i++) {
          pages[i] = first + i;
        }
        yield fixture.encode(round, pages, false, false);
      }
    };
  }

  private static IntSupplier chunks(Chunking chunking, SplittableRandom random, byte[] body) {
    int header = PageBatchFixture.headerBytes(PageBatchFixture.count(body));
    return switch (chunking) {
      case WHOLE -> () -> Integer.MAX_VALUE;
      case UNIFORM -> randomChunks(random, 70_000);
      case SMALL -> randomChunks(random, 32);
      case NEAR_PAGE -> {
        int[] sizes = {PAGE_BYTES - 1, PAGE_BYTES, PAGE_BYTES + 1, header, header - 1, header + 1,
            PageBatchFixture.FIXED_BYTES, PageBatchFixture.ENTRY_BYTES, 2 * PAGE_BYTES};
        yield () -> sizes[random.nextInt(sizes.length)];
      }
      case MIXED -> () -> random.nextBoolean() ? 1 + random.nextInt(16) : 1 + random.nextInt(70_000);
      case ONE_BYTE -> () -> 1;
    };
  }

  /** Feeds a whole body; "ok" or the refusal's message. */
  private static String apply(PageStreamReader reader, ByteBuffer body, IntSupplier chunks) {
    try {
      feed(reader, body, chunks);
      return "ok";
    } catch (ProtocolException e) {
      return "refused: " + e.getMessage();
    }
  }

  private static String stats(PageStreamReader r) {
    return "applied " + r.pagesApplied() + ", zero " + r.pagesZero() + ", raw " + r.pagesRaw() + ", lz4 "
        + r.pagesLz4() + ", suspect " + r.suspectPages() + " (" + r.aSuspectPage() + "), in batch " + r.inBatch();
  }

  private ByteBuffer load(byte[] data) {
    return scratch.clear().put(data).flip();
  }

  private static byte[] compress(ByteBuffer page) {
    byte[] out = new byte[Lz4.COMPRESSOR.maxCompressedLength(PAGE_BYTES)];
    int n = Lz4.COMPRESSOR.compress(page, 0, PAGE_BYTES, ByteBuffer.wrap(out), 0, out.length);
    assertFalse(n >= PAGE_BYTES, "a text page compresses");
    return Arrays.copyOf(out, n);
  }
}
