package dev.ferry.engine.wire;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.ferry.engine.guest.GuestMemory;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The reader's zero-copy path as the transport uses it: it asks how many header bytes to read,
 * then where the next run of raw pages belongs in guest memory, has the socket read that many
 * bytes straight into place, and passes the placed bytes on to be checked. The transport itself
 * (Netty) is tested in the agent; here a copy into the guest memory view stands in for the
 * socket's read.
 */
class PageStreamReaderPlacementTest {
  private static final int PAGE = GuestMemory.PAGE_BYTES;
  private static final int FIXED = 6;
  private static final int ENTRY = 11;

  private GuestMemory source;
  private GuestMemory target;

  @AfterEach
  void release() {
    source.release();
    target.release();
  }

  private void allocate(long bytes) {
    source = GuestMemory.allocate(bytes);
    target = GuestMemory.allocate(bytes);
  }

  /** Distinct content for every page: its number in every word. */
  private void fill(int page) {
    ByteBuffer view = source.pageView(page);
    while (view.hasRemaining()) {
      view.putInt(page * 31 + view.position());
    }
  }

  private void fillText(int page) {
    byte[] text = "guest page memory migration round ".repeat(PAGE / 20).substring(0, PAGE)
        .getBytes(StandardCharsets.US_ASCII);
    source.pageView(page).put(text);
  }

  /** The body of one batch of {@code pages}; those in {@code compress} go LZ4. */
  private byte[] encode(int[] pages, Set<Integer> compress) {
    PageBatchWriter writer = new PageBatchWriter(source);
    ByteBuffer payload = ByteBuffer.allocateDirect(Wire.BATCH_PAYLOAD_BYTES_MAX);
    writer.begin(ByteBuffer.allocateDirect(Wire.BATCH_HEADER_BYTES_MAX), () -> payload, 1);
    for (int page : pages) {
      writer.add(page, false, compress.contains(page));
    }
    writer.finish();
    writer.seal();
    ByteBuffer body = ByteBuffer.allocate(writer.bodyBytes());
    writer.copyBodyTo(body);
    writer.close();
    return body.array();
  }

  /** Stands in for the socket: reads {@code length} bytes of {@code body} from {@code at} into the place the reader named. */
  private static ByteBuffer place(GuestMemory memory, PageStreamReader reader, byte[] body, int at, int length) {
    ByteBuffer run = memory.view(reader.placementOffset(), length);
    run.put(body, at, length).flip();
    return run;
  }

  private static ByteBuffer copyOf(byte[] body, int at, int length) {
    return ByteBuffer.wrap(body, at, length).slice();
  }

  private void assertSamePages(int... pages) {
    for (int page : pages) {
      assertEquals(source.pageView(page), target.pageView(page), "page " + page);
    }
  }

  @Test
  void rawRunsAreNamedAndPlacedAndOtherPagesAreNot() {
    allocate(GuestMemory.MEMORY_BYTES_MIN);
    int[] pages = {10, 11, 12, 13, 20, 22, 23, 24};
    for (int page : pages) {
      if (page != 23) {
        fill(page);
      }
    }
    fillText(13);
    byte[] body = encode(pages, Set.of(13));
    int headerBytes = FIXED + pages.length * ENTRY + 4;
    int lz4Bytes = body.length - headerBytes - 6 * PAGE;
    PageStreamReader reader = new PageStreamReader(target);

    reader.beginBatch(body.length);
    assertEquals(FIXED, reader.headerBytesMissing(), "first the fixed part, which holds the count");
    assertEquals(-1, reader.placementOffset());
    assertEquals(0, reader.placementLength());
    reader.consume(copyOf(body, 0, 4));
    assertEquals(FIXED - 4, reader.headerBytesMissing());
    reader.consume(copyOf(body, 4, 2));
    assertEquals(headerBytes - FIXED, reader.headerBytesMissing(), "then the entries and the header checksum");
    assertEquals(-1, reader.placementOffset(), "no place before the header is checked");
    reader.consume(copyOf(body, FIXED, headerBytes - FIXED - 1));
    assertEquals(1, reader.headerBytesMissing());
    reader.consume(copyOf(body, headerBytes - 1, 1));
    assertEquals(0, reader.headerBytesMissing());
    int at = headerBytes;

    // Pages 10-12: one run. A first piece arrives the usual way (copied), the rest is placed.
    assertEquals(10L * PAGE, reader.placementOffset());
    assertEquals(3 * PAGE, reader.placementLength());
    reader.consume(copyOf(body, at, 1000));
    at += 1000;
    assertEquals(10L * PAGE + 1000, reader.placementOffset());
    assertEquals(3 * PAGE - 1000, reader.placementLength());
    assertEquals(0, reader.bytesPlaced(), "copied bytes are not placed ones");
    reader.consume(place(target, reader, body, at, 3 * PAGE - 1000));
    at += 3 * PAGE - 1000;
    assertEquals(3 * PAGE - 1000, reader.bytesPlaced());

    // Page 13 is LZ4: it must be decompressed, never read into place.
    assertEquals(-1, reader.placementOffset());
    assertEquals(0, reader.placementLength());
    assertEquals(0, reader.headerBytesMissing());
    reader.consume(copyOf(body, at, lz4Bytes));
    at += lz4Bytes;

    // Page 20, then 22 (not adjacent), then 24 (after zero page 23): three runs of one page.
    for (int page : new int[] {20, 22, 24}) {
      assertEquals((long) page * PAGE, reader.placementOffset(), "page " + page);
      assertEquals(PAGE, reader.placementLength(), "page " + page);
      long placed = reader.bytesPlaced();
      reader.consume(place(target, reader, body, at, PAGE));
      at += PAGE;
      assertEquals(placed + PAGE, reader.bytesPlaced());
    }
    assertEquals(body.length, at);
    assertFalse(reader.inBatch());
    assertEquals(-1, reader.placementOffset(), "nothing to place between batches");
    assertEquals(0, reader.placementLength());
    assertEquals(0, reader.suspectPages());
    assertEquals(8, reader.pagesApplied());
    assertEquals(6, reader.pagesRaw());
    assertEquals(1, reader.pagesLz4());
    assertEquals(1, reader.pagesZero());
    assertEquals(6L * PAGE - 1000, reader.bytesPlaced());
    assertSamePages(pages);
  }

  /** Guest memory is viewed in 1 GiB pieces: a run of raw pages ends at a piece's end. */
  @Test
  void aRunStopsAtAViewBoundary() {
    allocate((1L << 30) + GuestMemory.MEMORY_BYTES_MIN);
    int first = (1 << 30) / PAGE - 2;
    int[] pages = {first, first + 1, first + 2, first + 3};
    for (int page : pages) {
      fill(page);
    }
    byte[] body = encode(pages, Set.of());
    int headerBytes = FIXED + pages.length * ENTRY + 4;
    PageStreamReader reader = new PageStreamReader(target);
    reader.beginBatch(body.length);
    reader.consume(copyOf(body, 0, headerBytes));
    assertEquals((long) first * PAGE, reader.placementOffset());
    assertEquals(2 * PAGE, reader.placementLength(), "the two pages before the 1 GiB boundary");
    reader.consume(place(target, reader, body, headerBytes, 2 * PAGE));
    assertEquals(1L << 30, reader.placementOffset());
    assertEquals(2 * PAGE, reader.placementLength());
    reader.consume(place(target, reader, body, headerBytes + 2 * PAGE, 2 * PAGE));
    assertEquals(4L * PAGE, reader.bytesPlaced());
    assertEquals(0, reader.suspectPages());
    assertSamePages(pages);
  }

  /** The first page of memory sits at offset 0, a place like any other. */
  @Test
  void pageZeroIsPlacedAtOffsetZero() {
    allocate(GuestMemory.MEMORY_BYTES_MIN);
    fill(0);
    fill(1);
    byte[] body = encode(new int[] {0, 1}, Set.of());
    int headerBytes = FIXED + 2 * ENTRY + 4;
    PageStreamReader reader = new PageStreamReader(target);
    reader.beginBatch(body.length);
    reader.consume(copyOf(body, 0, headerBytes));
    assertEquals(0, reader.placementOffset());
    assertEquals(2 * PAGE, reader.placementLength());
    reader.consume(place(target, reader, body, headerBytes, 2 * PAGE));
    assertEquals(2L * PAGE, reader.bytesPlaced());
    assertSamePages(0, 1);
  }

  /** A run ends with its batch, whatever a longer batch before it left behind. */
  @Test
  void aRunEndsWithItsBatch() {
    allocate(GuestMemory.MEMORY_BYTES_MIN);
    for (int page = 31; page < 35; page++) {
      fill(page);
    }
    PageStreamReader reader = new PageStreamReader(target);
    byte[] longer = encode(new int[] {31, 32, 33, 34}, Set.of());
    reader.beginBatch(longer.length);
    reader.consume(ByteBuffer.wrap(longer));
    byte[] shorter = encode(new int[] {31}, Set.of());
    reader.beginBatch(shorter.length);
    reader.consume(copyOf(shorter, 0, FIXED + ENTRY + 4));
    assertEquals(31L * PAGE, reader.placementOffset());
    assertEquals(PAGE, reader.placementLength(), "page 32 was in the batch before, not in this one");
  }

  /** Bytes placed are checked like copied ones: a page damaged on the way is suspect. */
  @Test
  void placedBytesAreStillChecked() {
    allocate(GuestMemory.MEMORY_BYTES_MIN);
    fill(3);
    byte[] body = encode(new int[] {3}, Set.of());
    int headerBytes = FIXED + ENTRY + 4;
    body[headerBytes + 77] ^= 0x40;
    PageStreamReader reader = new PageStreamReader(target);
    reader.beginBatch(body.length);
    reader.consume(copyOf(body, 0, headerBytes));
    reader.consume(place(target, reader, body, headerBytes, PAGE));
    assertEquals(PAGE, reader.bytesPlaced());
    assertEquals(1, reader.suspectPages());
    assertEquals(3, reader.aSuspectPage());
  }
}
