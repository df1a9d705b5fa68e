package dev.ferry.engine.wire;

import static dev.ferry.engine.guest.GuestMemory.PAGE_BYTES;
import static dev.ferry.engine.wire.PageBatchFixture.direct;
import static dev.ferry.engine.wire.PageBatchFixture.entries;
import static dev.ferry.engine.wire.PageBatchFixture.feed;
import static dev.ferry.engine.wire.PageBatchFixture.feedWhole;
import static dev.ferry.engine.wire.PageBatchFixture.headerBytes;
import static dev.ferry.engine.wire.PageBatchFixture.pageBytes;
import static dev.ferry.engine.wire.PageBatchFixture.pageChecksum;
import static dev.ferry.engine.wire.PageBatchFixture.randomChunks;
import static dev.ferry.engine.wire.PageBatchFixture.zeroPageChecksum;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.guest.Guest;
import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.guest.Workload;
import dev.ferry.engine.wire.PageBatchFixture.Crafted;
import dev.ferry.engine.wire.PageBatchFixture.Entry;
import dev.ferry.engine.wire.PageBatchFixture.Kind;
import dev.ferry.engine.wire.PageBatchWriter.Outcome;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.WorkloadSpec;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import net.jpountz.lz4.LZ4Factory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The page batch codec: what {@link PageBatchWriter} encodes {@link PageStreamReader} applies byte
 * for byte; a page damaged in flight is marked suspect, never silently accepted; a damaged or
 * out-of-bounds header is refused with a {@link ProtocolException}.
 */
class PageBatchCodecTest {
  private PageBatchFixture fixture;
  private GuestMemory source;
  /** Where refused batches go; they must leave it all zero. */
  private GuestMemory refusalTarget;

  @BeforeEach
  void setUp() {
    fixture = new PageBatchFixture(2024);
    source = fixture.source;
    refusalTarget = fixture.target();
  }

  @AfterEach
  void release() {
    fixture.close();
  }

  // --- Round trips ----------------------------------------------------------------------------

  @Test
  void everyPageRoundTripsWithAndWithoutCompressionAndZeroSkipping() {
    for (boolean compress : new boolean[] {false, true}) {
      for (boolean skipZero : new boolean[] {false, true}) {
        String mode = "compress=" + compress + " skipZero=" + skipZero;
        GuestMemory target = fixture.target();
        if (!skipZero) {
          fillWithOnes(target); // zero markers must really zero the page
        }
        PageStreamReader reader = new PageStreamReader(target);
        Map<Outcome, Integer> outcomes = new EnumMap<>(Outcome.class);
        int page = 0;
        int batches = 0;
        while (page < source.pageCount()) {
          fixture.begin(7 + batches);
          while (page < source.pageCount() && !fixture.writer.isFull()) {
            Outcome outcome = fixture.writer.add(page, skipZero, compress);
            outcomes.merge(outcome, 1, Integer::sum);
            assertEquals(expectedOutcome(fixture.kinds[page], skipZero, compress), outcome, mode + ": page " + page);
            if (outcome == Outcome.LZ4) {
              int bytes = fixture.writer.lastEncodedBytes();
              assertTrue(bytes > 0 && bytes <= PAGE_BYTES * 7 / 8, mode + ": lz4 page of " + bytes + " bytes");
            }
            page++;
          }
          if (fixture.writer.count() == 0) {
            continue; // every page a skipped zero: nothing to send
          }
          byte[] body = fixture.finishBody();
          assertTrue(body.length <= Wire.BATCH_BODY_BYTES_MAX, mode + ": body of " + body.length);
          feedWhole(reader, body);
          batches++;
        }
        assertTrue(batches >= source.pageCount() / Wire.BATCH_PAGES_MAX / 2, mode + ": " + batches + " batches");
        PageBatchFixture.assertSameMemory(source, target, mode);
        long sent = source.pageCount() - outcomes.getOrDefault(Outcome.SKIPPED_ZERO, 0);
        assertEquals(sent, reader.pagesApplied(), mode);
        assertEquals(reader.pagesApplied(), reader.pagesZero() + reader.pagesRaw() + reader.pagesLz4(), mode);
        assertEquals(outcomes.getOrDefault(Outcome.LZ4, 0), (int) reader.pagesLz4(), mode);
        assertEquals(outcomes.getOrDefault(Outcome.ZERO, 0), (int) reader.pagesZero(), mode);
        assertEquals(outcomes.getOrDefault(Outcome.RAW, 0) + outcomes.getOrDefault(Outcome.RAW_INCOMPRESSIBLE, 0),
            (int) reader.pagesRaw(), mode);
        assertTrue(outcomes.getOrDefault(skipZero ? Outcome.SKIPPED_ZERO : Outcome.ZERO, 0) > 1000, mode + outcomes);
        assertEquals(0, reader.suspectPages(), mode);
        assertEquals(-1, reader.aSuspectPage(), mode);
        assertFalse(reader.inBatch(), mode);
      }
    }
  }

  @Test
  void aGuestsOwnTextPagesCompressAndItsRandomPagesDoNot() {
    for (String content : new String[] {"text", "random"}) {
      GuestSpec spec = GuestSpec.newBuilder().setName("codec-" + content)
          .setMemoryBytes(PageBatchFixture.MEMORY_BYTES).setVcpus(1)
          .setWorkload(WorkloadSpec.newBuilder().setContent(Workload.namedMix(content)).setSeed(3)).build();
      Guest guest = Guest.manual(spec, Clock.SYSTEM, true);
      try {
        PageBatchWriter writer = new PageBatchWriter(guest.memory());
        ByteBuffer header = ByteBuffer.allocateDirect(Wire.BATCH_HEADER_BYTES_MAX);
        ByteBuffer payload = ByteBuffer.allocateDirect(Wire.BATCH_PAYLOAD_BYTES_MAX);
        ByteBuffer body = ByteBuffer.allocateDirect(Wire.BATCH_BODY_BYTES_MAX);
        GuestMemory target = fixture.target();
        PageStreamReader reader = new PageStreamReader(target);
        Outcome expected = content.equals("text") ? Outcome.LZ4 : Outcome.RAW_INCOMPRESSIBLE;
        for (int first = 0; first < guest.memory().pageCount(); first += Wire.BATCH_PAGES_MAX) {
          writer.begin(header, () -> payload, 0);
          for (int p = first; p < first + Wire.BATCH_PAGES_MAX; p++) {
            assertEquals(expected, writer.add(p, true, true), content + " page " + p);
          }
          writer.finish();
          writer.seal();
          body.clear();
          writer.copyBodyTo(body);
          reader.beginBatch(writer.bodyBytes());
          reader.consume(body.flip());
        }
        PageBatchFixture.assertSameMemory(guest.memory(), target, content);
        assertEquals(0, reader.suspectPages(), content);
      } finally {
        guest.destroy();
      }
    }
  }

  @Test
  void theBodyIsTheDocumentedFormat() {
    // Parsed here from Wire's description alone: header (round, count, entries, CRC32C), then the
    // payloads in entry order; a page checksum is CRC32C over the page then its number.
    byte[] body = fixture.mixedBatch(11);
    ByteBuffer b = ByteBuffer.wrap(body);
    assertEquals(11, b.getInt(0), "round");
    assertEquals(Wire.BATCH_PAGES_MAX, PageBatchFixture.count(body));
    List<Entry> entries = entries(body);
    assertEquals(Wire.BATCH_HEADER_BYTES_MAX, headerBytes(entries.size()));
    int expectedPayloadAt = headerBytes(entries.size());
    for (Entry e : entries) {
      String context = "entry " + e.index() + " (page " + e.page() + ", " + Wire.encodingName(e.encoding()) + ")";
      assertEquals(expectedPayloadAt, e.payloadAt(), context);
      assertEquals(pageChecksum(source.pageView(e.page()), e.page()), e.checksum(), context);
      byte[] payload = Arrays.copyOfRange(body, e.payloadAt(), e.payloadAt() + e.length());
      switch (e.encoding()) {
        case Wire.ENCODING_ZERO -> {
          assertTrue(source.isZeroPage(e.page()), context);
          assertEquals(0, e.length(), context);
        }
        case Wire.ENCODING_RAW -> assertArrayEquals(pageBytes(source, e.page()), payload, context);
        case Wire.ENCODING_LZ4 -> {
          assertTrue(e.length() <= PAGE_BYTES * 7 / 8, context + ": " + e.length() + " bytes");
          byte[] page = LZ4Factory.safeInstance().safeDecompressor().decompress(payload, PAGE_BYTES);
          assertArrayEquals(pageBytes(source, e.page()), page, context);
        }
        default -> fail(context);
      }
      expectedPayloadAt += e.length();
    }
    assertEquals(body.length, expectedPayloadAt);
  }

  @Test
  void theWriterSendsRawPagesFromGuestMemoryWithoutCopyingThem() {
    SplittableRandom random = new SplittableRandom(5);
    Kind[] layout = {Kind.RANDOM, Kind.RANDOM, Kind.RANDOM, Kind.TEXT, Kind.TEXT, Kind.ZERO, Kind.RANDOM, Kind.TEXT};
    for (int i = 0; i < layout.length; i++) {
      fixture.setPage(100 + i, layout[i], random);
    }
    fixture.begin(1);
    for (int i = 0; i < layout.length; i++) {
      fixture.writer.add(100 + i, false, i != 1 && i != 2); // 101, 102 raw without trying lz4
    }
    fixture.writer.finish();
    fixture.writer.seal();
    // 100..102 raw and consecutive: one guest range; 103, 104 lz4: one payload range; 105 zero:
    // nothing; 106 raw; 107 lz4.
    PageBatchWriter w = fixture.writer;
    assertEquals(4, w.segmentCount());
    assertTrue(w.segmentInGuest(0));
    assertEquals(100L * PAGE_BYTES, w.segmentStart(0));
    assertEquals(3 * PAGE_BYTES, w.segmentLength(0));
    assertFalse(w.segmentInGuest(1));
    assertEquals(0, w.segmentStart(1));
    assertTrue(w.segmentInGuest(2));
    assertEquals(106L * PAGE_BYTES, w.segmentStart(2));
    assertEquals(PAGE_BYTES, w.segmentLength(2));
    assertFalse(w.segmentInGuest(3));
    assertEquals(w.segmentLength(1), w.segmentStart(3), "payloads follow each other in the payload buffer");
    assertEquals(headerBytes(8) + 4 * PAGE_BYTES + w.segmentLength(1) + w.segmentLength(3), w.bodyBytes());

    // The raw pages are read when the body is copied (the socket sends), not when they were added:
    // a vCPU write in between reaches the wire, and the receiver flags the page as suspect.
    source.pageView(101).put(7, (byte) (source.pageView(101).get(7) + 1));
    source.pageView(103).put(9, (byte) (source.pageView(103).get(9) + 1)); // lz4: already compressed
    ByteBuffer body = ByteBuffer.allocateDirect(w.bodyBytes());
    w.copyBodyTo(body);
    byte[] bytes = new byte[body.flip().remaining()];
    body.get(bytes);
    GuestMemory target = fixture.target();
    PageStreamReader reader = new PageStreamReader(target);
    feedWhole(reader, bytes);
    assertEquals(1, reader.suspectPages());
    assertEquals(101, reader.aSuspectPage());
    assertTrue(PageBatchFixture.samePage(source, target, 101), "the page as it was when sent");
    assertFalse(PageBatchFixture.samePage(source, target, 103), "the compressed copy predates the write");
    for (int page : new int[] {100, 102, 104, 105, 106, 107}) {
      assertTrue(PageBatchFixture.samePage(source, target, page), "page " + page);
    }
    // The next round resends both dirty pages; they arrive intact.
    feedWhole(reader, fixture.encode(2, new int[] {101, 103}, false, true));
    assertEquals(0, reader.suspectPages());
    assertEquals(-1, reader.aSuspectPage());
    fixture.assertPagesEqualSource(target, List.of(100, 101, 102, 103, 104, 105, 106, 107), "after the resend");
  }

  @Test
  void thePayloadBufferIsRequestedOnlyWhenAPageIsCompressed() {
    fixture.begin(0);
    fixture.writer.add(fixture.pageOf(Kind.TEXT, 0), false, false);
    fixture.writer.add(fixture.pageOf(Kind.ZERO, 0), false, true);
    fixture.writer.add(fixture.pageOf(Kind.ZERO, 1), true, true);
    fixture.writer.finish();
    assertEquals(0, fixture.payloadRequests, "no page compressed, no payload buffer");
    fixture.begin(0);
    fixture.writer.add(fixture.pageOf(Kind.TEXT, 0), false, true);
    fixture.writer.add(fixture.pageOf(Kind.TEXT, 1), false, true);
    fixture.writer.add(fixture.pageOf(Kind.RANDOM, 0), false, true);
    fixture.writer.finish();
    assertEquals(1, fixture.payloadRequests, "one payload buffer per batch");
  }

  @Test
  void writerRefusesSmallBuffersAndFullBatches() {
    PageBatchWriter writer = new PageBatchWriter(source);
    ByteBuffer payload = ByteBuffer.allocateDirect(Wire.BATCH_PAYLOAD_BYTES_MAX);
    assertThrows(IllegalArgumentException.class,
        () -> writer.begin(ByteBuffer.allocateDirect(Wire.BATCH_HEADER_BYTES_MAX - 1), () -> payload, 0));
    writer.begin(ByteBuffer.allocateDirect(Wire.BATCH_HEADER_BYTES_MAX),
        () -> ByteBuffer.allocateDirect(Wire.BATCH_PAYLOAD_BYTES_MAX - 1), 0);
    assertThrows(IllegalArgumentException.class, () -> writer.add(fixture.pageOf(Kind.TEXT, 0), false, true));

    fixture.begin(0);
    for (int i = 0; i < Wire.BATCH_PAGES_MAX; i++) {
      fixture.writer.add(fixture.pageOf(Kind.RANDOM, i), false, false);
    }
    assertTrue(fixture.writer.isFull());
    assertThrows(IllegalStateException.class, () -> fixture.writer.add(fixture.pageOf(Kind.TEXT, 0), false, true));
    assertEquals(Wire.BATCH_PAGES_MAX, fixture.writer.count());
    byte[] body = fixture.finishBody();
    assertEquals(Wire.BATCH_BODY_BYTES_MAX, body.length, "64 raw pages: the largest body");
    GuestMemory target = fixture.target();
    feedWhole(new PageStreamReader(target), body);
    fixture.assertPagesEqualSource(target, entries(body).stream().map(Entry::page).toList(), "largest batch");
  }

  // --- Damage in flight -----------------------------------------------------------------------

  @Test
  void aFlippedBitInARawPageMarksItSuspectAndAnIntactResendClearsIt() {
    GuestMemory target = fixture.target();
    for (long seed = 0; seed < 200; seed++) {
      SplittableRandom random = new SplittableRandom(seed);
      byte[] intact = fixture.mixedBatch(seed);
      List<Entry> entries = entries(intact);
      Entry raw = entryOf(entries, Wire.ENCODING_RAW, random);
      int at = raw.payloadAt() + random.nextInt(PAGE_BYTES);
      int bit = random.nextInt(8);
      byte[] damaged = intact.clone();
      damaged[at] ^= (byte) (1 << bit);
      String context = "seed " + seed + ": bit " + bit + " of byte " + at + " (raw page " + raw.page() + ")";

      PageStreamReader reader = new PageStreamReader(target);
      feed(reader, direct(damaged), randomChunks(random, 70_000)); // no exception
      assertEquals(1, reader.suspectPages(), context);
      assertEquals(raw.page(), reader.aSuspectPage(), context);
      assertEquals(Wire.BATCH_PAGES_MAX, reader.pagesApplied(), context);
      assertArrayEquals(Arrays.copyOfRange(damaged, raw.payloadAt(), raw.payloadAt() + PAGE_BYTES),
          pageBytes(target, raw.page()), context + ": the copy as it arrived");
      for (Entry e : entries) {
        if (e != raw) {
          fixture.assertPagesEqualSource(target, List.of(e.page()), context);
        }
      }
      // The same damage again counts once.
      feed(reader, direct(damaged), () -> Integer.MAX_VALUE);
      assertEquals(1, reader.suspectPages(), context + ": damaged twice");
      // An intact copy of that page alone (the next round) clears the mark.
      feedWhole(reader, fixture.encode(1000, new int[] {raw.page()}, false, random.nextBoolean()));
      assertEquals(0, reader.suspectPages(), context + ": after the resend");
      assertEquals(-1, reader.aSuspectPage(), context);
      fixture.assertPagesEqualSource(target, List.of(raw.page()), context + ": after the resend");
    }
  }

  @Test
  void suspectPagesAreCountedAndNamedUntilEachIsResent() {
    byte[] intact = fixture.mixedBatch(77);
    List<Entry> raws = entries(intact).stream().filter(e -> e.encoding() == Wire.ENCODING_RAW).toList();
    assertTrue(raws.size() >= 3, "raw pages: " + raws.size());
    byte[] damaged = intact.clone();
    for (int i = 0; i < 3; i++) {
      damaged[raws.get(i).payloadAt() + 100 * i] ^= 0x10;
    }
    GuestMemory target = fixture.target();
    PageStreamReader reader = new PageStreamReader(target);
    feedWhole(reader, damaged);
    assertEquals(3, reader.suspectPages());
    assertEquals(raws.get(0).page(), reader.aSuspectPage(), "the first page found suspect");
    feedWhole(reader, fixture.encode(1, new int[] {raws.get(0).page()}, false, false));
    assertEquals(2, reader.suspectPages());
    int named = reader.aSuspectPage();
    assertTrue(named == raws.get(1).page() || named == raws.get(2).page(), "a page still suspect: " + named);
    // The vCPU cleared page 2 since: it is resent as a zero marker, which clears the mark too.
    source.zeroPage(raws.get(2).page());
    feedWhole(reader, fixture.encode(2, new int[] {raws.get(2).page()}, false, true));
    assertEquals(1, reader.suspectPages());
    assertEquals(raws.get(1).page(), reader.aSuspectPage());
    assertTrue(target.isZeroPage(raws.get(2).page()));
    feedWhole(reader, fixture.encode(3, new int[] {raws.get(1).page()}, false, true));
    assertEquals(0, reader.suspectPages());
    assertEquals(-1, reader.aSuspectPage());
    fixture.assertPagesEqualSource(target, raws.stream().map(Entry::page).toList(), "after the resends");
  }

  @Test
  void everySingleBitFlipInTheHeaderIsRefused() {
    byte[] intact = fixture.mixedBatch(100);
    List<Entry> entries = entries(intact);
    int headerBytes = headerBytes(entries.size());
    GuestMemory target = fixture.target();
    SplittableRandom chunking = new SplittableRandom(100);
    for (int at = 0; at < headerBytes; at++) {
      for (int bit = 0; bit < 8; bit++) {
        byte[] damaged = intact.clone();
        damaged[at] ^= (byte) (1 << bit);
        String context = "bit " + bit + " of header byte " + at;
        PageStreamReader reader = new PageStreamReader(target);
        assertThrows(ProtocolException.class,
            () -> feed(reader, direct(damaged), randomChunks(chunking, 2 * headerBytes)), context);
        assertEquals(0, reader.pagesApplied(), context);
        assertUntouched(target, entries, context);
      }
    }
  }

  @Test
  void scrambledHeaderBytesAreRefused() {
    byte[] intact = fixture.mixedBatch(101);
    List<Entry> entries = entries(intact);
    int headerBytes = headerBytes(entries.size());
    GuestMemory target = fixture.target();
    for (long seed = 0; seed < 500; seed++) {
      SplittableRandom random = new SplittableRandom(seed);
      byte[] damaged = intact.clone();
      StringBuilder changes = new StringBuilder();
      for (int i = 0, n = 2 + random.nextInt(7); i < n; i++) {
        int at = random.nextInt(headerBytes);
        byte value = (byte) (damaged[at] ^ (1 + random.nextInt(255)));
        damaged[at] = value;
        changes.append(' ').append(at).append('=').append(value);
      }
      String context = "seed " + seed + ": header bytes" + changes;
      PageStreamReader reader = new PageStreamReader(target);
      assertThrows(ProtocolException.class, () -> feed(reader, direct(damaged), randomChunks(random, 70_000)), context);
      assertUntouched(target, entries, context);
    }
  }

  @Test
  void aFlippedBitInAnLz4PageIsRefusedOrSuspectButNeverSilentlyWrong() {
    // A flip in a match offset can point at equal bytes, so the page may decompress unchanged;
    // what must never happen is a wrong page that is not flagged.
    GuestMemory target = fixture.target();
    int refused = 0;
    int suspect = 0;
    int seeds = 400;
    for (long seed = 0; seed < seeds; seed++) {
      SplittableRandom random = new SplittableRandom(seed);
      byte[] intact = fixture.mixedBatch(200 + seed % 8);
      List<Entry> entries = entries(intact);
      Entry lz4 = entryOf(entries, Wire.ENCODING_LZ4, random);
      int at = lz4.payloadAt() + random.nextInt(lz4.length());
      int bit = random.nextInt(8);
      byte[] damaged = intact.clone();
      damaged[at] ^= (byte) (1 << bit);
      String context = "seed " + seed + ": bit " + bit + " of byte " + at + " in lz4 page " + lz4.page();
      for (Entry e : entries) {
        target.zeroPage(e.page());
      }
      PageStreamReader reader = new PageStreamReader(target);
      try {
        feed(reader, direct(damaged), randomChunks(random, 70_000));
      } catch (ProtocolException e) {
        refused++;
        assertTrue(e.getMessage().contains("page " + lz4.page()), context + ": " + e.getMessage());
        assertTrue(target.isZeroPage(lz4.page()), context + ": a page that failed to decode is not written");
        continue;
      }
      if (reader.suspectPages() == 0) {
        fixture.assertPagesEqualSource(target, entries.stream().map(Entry::page).toList(), context + ": accepted");
      } else {
        suspect++;
        assertEquals(1, reader.suspectPages(), context);
        assertEquals(lz4.page(), reader.aSuspectPage(), context);
        assertFalse(PageBatchFixture.samePage(source, target, lz4.page()), context + ": suspect, yet intact");
        for (Entry e : entries) {
          if (e != lz4) {
            fixture.assertPagesEqualSource(target, List.of(e.page()), context);
          }
        }
      }
    }
    assertTrue(refused > 0 && suspect > 0, "both outcomes occur: refused " + refused + ", suspect " + suspect);
    assertTrue(refused + suspect > seeds * 9 / 10,
        "only " + (refused + suspect) + " of " + seeds + " flips were detected");
  }

  // --- Bounds ---------------------------------------------------------------------------------

  @Test
  void batchSizeAndSequenceBounds() {
    PageStreamReader reader = new PageStreamReader(fixture.target());
    assertMessage("page batch of 20 bytes is outside 21.." + Wire.BATCH_BODY_BYTES_MAX,
        () -> reader.beginBatch(headerBytes(1) - 1));
    assertMessage("page batch of " + (Wire.BATCH_BODY_BYTES_MAX + 1) + " bytes is outside",
        () -> reader.beginBatch(Wire.BATCH_BODY_BYTES_MAX + 1));
    assertMessage("page batch of 0 bytes", () -> reader.beginBatch(0));
    assertMessage("page batch of -1 bytes", () -> reader.beginBatch(-1));
    assertFalse(reader.inBatch());
    reader.consume(ByteBuffer.allocate(0)); // nothing outside a batch is fine
    assertMessage("runs 1 bytes past its frame", () -> reader.consume(ByteBuffer.allocate(1)));

    byte[] body = fixture.encode(1, new int[] {fixture.pageOf(Kind.TEXT, 0)}, false, true);
    PageStreamReader second = new PageStreamReader(fixture.target());
    second.beginBatch(body.length);
    second.consume(ByteBuffer.wrap(body, 0, 10));
    assertMessage("a page batch started before the previous one ended", () -> second.beginBatch(body.length));
    assertMessage("runs 1 bytes past its frame",
        () -> second.consume(ByteBuffer.wrap(Arrays.copyOf(body, body.length + 1), 10, body.length - 9)));
  }

  @Test
  void headerBounds() {
    int crc5 = zeroPageChecksum(5);
    assertRefused("page batch count 0 outside 1..64", new Crafted(1).entry(5, Wire.ENCODING_ZERO, crc5, 0).count(0));
    Crafted many = new Crafted(1);
    for (int i = 0; i < 65; i++) {
      many.entry(i, Wire.ENCODING_ZERO, zeroPageChecksum(i), 0);
    }
    assertRefused("page batch count 65 outside 1..64", many);
    assertRefused("page batch count 65535 outside", new Crafted(1).entry(5, Wire.ENCODING_ZERO, crc5, 0).count(0xFFFF));
    assertRefused("page batch header of 2 entries does not fit its 21-byte frame",
        new Crafted(1).entry(5, Wire.ENCODING_ZERO, crc5, 0).count(2));
    assertRefused("page batch header checksum mismatch",
        new Crafted(1).entry(5, Wire.ENCODING_ZERO, crc5, 0).badHeaderCrc());
    assertRefused("page batch header checksum mismatch",
        new Crafted(1).entry(5, Wire.ENCODING_ZERO, crc5, 0).entry(6, Wire.ENCODING_ZERO, zeroPageChecksum(6), 0)
            .count(1).payload(new byte[11]));
  }

  @Test
  void entryBounds() {
    int pages = (int) (PageBatchFixture.MEMORY_BYTES / PAGE_BYTES);
    assertRefused("page batch entry 0: page " + pages + " is outside guest memory of " + pages + " pages",
        new Crafted(1).entry(pages, Wire.ENCODING_ZERO, zeroPageChecksum(pages), 0));
    assertRefused("page batch entry 1: page 4294967295 is outside",
        new Crafted(1).entry(0, Wire.ENCODING_ZERO, zeroPageChecksum(0), 0).entry(-1, Wire.ENCODING_ZERO, 0, 0));
    assertRefused("page 2147483648 is outside", new Crafted(1).entry(Integer.MIN_VALUE, Wire.ENCODING_ZERO, 0, 0));
    assertRefused("page batch entry 0: unknown encoding 3",
        new Crafted(1).entry(5, (byte) 3, zeroPageChecksum(5), 0));
    assertRefused("unknown encoding -1", new Crafted(1).entry(5, (byte) -1, 0, PAGE_BYTES).payload(new byte[PAGE_BYTES]));
    assertRefused("page batch entry 0: length 1 is wrong for a zero page",
        new Crafted(1).entry(5, Wire.ENCODING_ZERO, zeroPageChecksum(5), 1).payload(new byte[1]));
    assertRefused("length 4095 is wrong for a raw page",
        new Crafted(1).entry(5, Wire.ENCODING_RAW, 0, PAGE_BYTES - 1).payload(new byte[PAGE_BYTES - 1]));
    assertRefused("length 0 is wrong for a raw page", new Crafted(1).entry(5, Wire.ENCODING_RAW, 0, 0));
    assertRefused("length 0 is wrong for a lz4 page", new Crafted(1).entry(5, Wire.ENCODING_LZ4, 0, 0));
    assertRefused("length 4096 is wrong for a lz4 page",
        new Crafted(1).entry(5, Wire.ENCODING_LZ4, 0, PAGE_BYTES).payload(new byte[PAGE_BYTES]));
    assertRefused("length 65535 is wrong for a lz4 page", new Crafted(1).entry(5, Wire.ENCODING_LZ4, 0, 0xFFFF));
    assertRefused("page batch entries announce 4096 payload bytes, the frame has 4095",
        new Crafted(1).entry(5, Wire.ENCODING_RAW, 0, PAGE_BYTES).payload(new byte[PAGE_BYTES - 1]));
    assertRefused("page batch entries announce 4096 payload bytes, the frame has 4097",
        new Crafted(1).entry(5, Wire.ENCODING_RAW, 0, PAGE_BYTES).payload(new byte[PAGE_BYTES + 1]));
    assertRefused("page batch entries announce 0 payload bytes, the frame has 1",
        new Crafted(1).entry(5, Wire.ENCODING_ZERO, zeroPageChecksum(5), 0).payload(new byte[1]));
    // A zero marker's checksum is covered by the header checksum, so a wrong one is the sender's bug.
    assertRefused("page batch entry 0: zero page 5 has a wrong checksum",
        new Crafted(1).entry(5, Wire.ENCODING_ZERO, zeroPageChecksum(6), 0));
  }

  @Test
  void rawEntries() {
    int page = fixture.pageOf(Kind.RANDOM, 0);
    int crc = fixture.sourceChecksum(page);
    GuestMemory target = fixture.target();
    PageStreamReader reader = new PageStreamReader(target);
    // A wrong checksum, or the right checksum of another page number: suspect, and the bytes land.
    for (int checksum : new int[] {crc ^ 1, pageChecksum(source.pageView(page), page + 1)}) {
      feedWhole(reader, new Crafted(1).entry(page, Wire.ENCODING_RAW, checksum, PAGE_BYTES)
          .payload(source.pageView(page)).bytes());
      assertEquals(1, reader.suspectPages());
      assertEquals(page, reader.aSuspectPage());
    }
    feedWhole(reader, new Crafted(1).entry(page, Wire.ENCODING_RAW, crc, PAGE_BYTES).payload(source.pageView(page)).bytes());
    assertEquals(0, reader.suspectPages());
    assertEquals(3, reader.pagesApplied());
    assertEquals(3, reader.pagesRaw());
    fixture.assertPagesEqualSource(target, List.of(page), "raw");
  }

  @Test
  void lz4Entries() {
    int page = fixture.pageOf(Kind.TEXT, 0);
    byte[] compressed = compress(source.pageView(page), PAGE_BYTES);
    int crc = fixture.sourceChecksum(page);
    assertRefused("page batch entry 0: page " + page + " is not valid lz4", new Crafted(1)
        .entry(page, Wire.ENCODING_LZ4, crc, 8).payload(new byte[] {(byte) 0xF0, 1, 2, 3, 4, 5, 6, 7}));
    assertRefused("page " + page + " is not valid lz4", new Crafted(1)
        .entry(page, Wire.ENCODING_LZ4, crc, compressed.length - 1).payload(Arrays.copyOf(compressed, compressed.length - 1)));
    byte[] half = compress(source.pageView(page), PAGE_BYTES / 2);
    assertRefused("page batch entry 0: page " + page + " decompressed to 2048 bytes, not 4096", new Crafted(1)
        .entry(page, Wire.ENCODING_LZ4, crc, half.length).payload(half));
    byte[] twice = compress(ByteBuffer.allocateDirect(2 * PAGE_BYTES), 2 * PAGE_BYTES);
    assertRefused("page " + page + " is not valid lz4", new Crafted(1)
        .entry(page, Wire.ENCODING_LZ4, crc, twice.length).payload(twice));

    GuestMemory target = fixture.target();
    PageStreamReader reader = new PageStreamReader(target);
    feedWhole(reader, new Crafted(1).entry(page, Wire.ENCODING_LZ4, crc ^ 0x100, compressed.length)
        .payload(compressed).bytes());
    assertEquals(1, reader.suspectPages(), "a wrong checksum makes the page suspect");
    assertEquals(page, reader.aSuspectPage());
    feedWhole(reader, new Crafted(1).entry(page, Wire.ENCODING_LZ4, crc, compressed.length).payload(compressed).bytes());
    assertEquals(0, reader.suspectPages());
    assertEquals(2, reader.pagesLz4());
    fixture.assertPagesEqualSource(target, List.of(page), "lz4");
  }

  @Test
  void theRoundIsCoveredByTheHeaderChecksumButNotInterpreted() {
    int page = fixture.pageOf(Kind.TEXT, 3);
    GuestMemory target = fixture.target();
    PageStreamReader reader = new PageStreamReader(target);
    for (int round : new int[] {0, 1, 123_456, -1}) {
      feedWhole(reader, fixture.encode(round, new int[] {page}, false, true));
    }
    byte[] body = fixture.encode(5, new int[] {page}, false, true);
    ByteBuffer.wrap(body).putInt(0, 6);
    assertMessage("header checksum mismatch", () -> feedWhole(new PageStreamReader(target), body));
    feedWhole(reader, PageBatchFixture.resealHeader(body));
    assertEquals(5, reader.pagesApplied());
  }

  // --- Helpers --------------------------------------------------------------------------------

  private static Entry entryOf(List<Entry> entries, byte encoding, SplittableRandom random) {
    List<Entry> matching = entries.stream().filter(e -> e.encoding() == encoding).toList();
    return matching.get(random.nextInt(matching.size()));
  }

  /** The pages the batch names are still zero. */
  private static void assertUntouched(GuestMemory target, List<Entry> entries, String context) {
    for (Entry e : entries) {
      if (!target.isZeroPage(e.page())) {
        fail(context + ": page " + e.page() + " was written although the batch was refused");
      }
    }
  }

  /**
   * The crafted body is refused with {@code expected} in the message, whole and byte by byte, and
   * nothing lands in guest memory.
   */
  private void assertRefused(String expected, Crafted crafted) {
    byte[] body = crafted.bytes();
    List<String> messages = new ArrayList<>();
    for (int chunk : new int[] {Integer.MAX_VALUE, 1, 7}) {
      PageStreamReader reader = new PageStreamReader(refusalTarget);
      ProtocolException e = assertThrows(ProtocolException.class, () -> feed(reader, direct(body), () -> chunk),
          expected + " (chunks of " + chunk + ")");
      messages.add(e.getMessage());
      assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
      assertEquals(0, reader.suspectPages(), expected);
      assertEquals(0, reader.pagesApplied(), expected);
      for (int p = 0; p < 100; p++) {
        assertTrue(refusalTarget.isZeroPage(p), expected + ": page " + p + " written");
      }
    }
    assertEquals(1, messages.stream().distinct().count(), "the same refusal for any chunking: " + messages);
  }

  private static void assertMessage(String expected, Runnable action) {
    ProtocolException e = assertThrows(ProtocolException.class, action::run, expected);
    assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
  }

  private static byte[] compress(ByteBuffer src, int length) {
    byte[] out = new byte[Lz4.COMPRESSOR.maxCompressedLength(length)];
    int n = Lz4.COMPRESSOR.compress(src, 0, length, ByteBuffer.wrap(out), 0, out.length);
    return Arrays.copyOf(out, n);
  }

  private static void fillWithOnes(GuestMemory memory) {
    ByteBuffer ones = ByteBuffer.allocateDirect(PAGE_BYTES);
    while (ones.hasRemaining()) {
      ones.put((byte) 1);
    }
    for (int p = 0; p < memory.pageCount(); p++) {
      memory.writePage(p, ones.clear());
    }
  }

  private static Outcome expectedOutcome(Kind kind, boolean skipZero, boolean compress) {
    return switch (kind) {
      case ZERO -> skipZero ? Outcome.SKIPPED_ZERO : Outcome.ZERO;
      case TEXT -> compress ? Outcome.LZ4 : Outcome.RAW;
      case RANDOM -> compress ? Outcome.RAW_INCOMPRESSIBLE : Outcome.RAW;
    };
  }
}
