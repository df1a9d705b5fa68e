package dev.ferry.engine.wire;

import static dev.ferry.engine.guest.GuestMemory.PAGE_BYTES;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.wire.PageBatchWriter.Outcome;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The page codec at its thresholds: a page that saves exactly an eighth, the first page of memory, payload segments. */
class PageCodecEdgesTest {
  private final GuestMemory source = GuestMemory.allocate(GuestMemory.MEMORY_BYTES_MIN);
  private final GuestMemory target = GuestMemory.allocate(GuestMemory.MEMORY_BYTES_MIN);
  private final PageBatchWriter writer = new PageBatchWriter(source);
  private final ByteBuffer header = ByteBuffer.allocateDirect(Wire.BATCH_HEADER_BYTES_MAX);
  private final ByteBuffer payload = ByteBuffer.allocateDirect(Wire.BATCH_PAYLOAD_BYTES_MAX);

  @AfterEach
  void release() {
    writer.close();
    source.release();
    target.release();
  }

  /** {@code randomBytes} random bytes, then zeros: LZ4 output grows with the random part. */
  private void fill(int page, int randomBytes, long seed) {
    byte[] bytes = new byte[PAGE_BYTES];
    byte[] random = new byte[randomBytes];
    new SplittableRandom(seed).nextBytes(random);
    System.arraycopy(random, 0, bytes, 0, randomBytes);
    source.pageView(page).put(bytes);
  }

  private Outcome addCompressed(int page) {
    writer.begin(header, () -> payload, 1);
    return writer.add(page, false, true);
  }

  /** A page must save at least an eighth (512 bytes) to go compressed: 3584 bytes of LZ4 do, 3585 do not. */
  @Test
  void aPageThatSavesExactlyAnEighthGoesCompressed() {
    int limit = PAGE_BYTES * 7 / 8;
    boolean sawLimit = false;
    boolean sawOver = false;
    for (int randomBytes = limit - 64; randomBytes < limit + 16 && !(sawLimit && sawOver); randomBytes++) {
      fill(1, randomBytes, randomBytes);
      Outcome outcome = addCompressed(1);
      int size = writer.lastEncodedBytes();
      if (size == limit) {
        assertEquals(Outcome.LZ4, outcome, randomBytes + " random bytes compress to " + size);
        sawLimit = true;
      } else if (size == limit + 1) {
        assertEquals(Outcome.RAW_INCOMPRESSIBLE, outcome, randomBytes + " random bytes compress to " + size);
        sawOver = true;
      }
    }
    assertTrue(sawLimit && sawOver, "no page compressed to exactly " + limit + " and " + (limit + 1) + " bytes");
  }

  /** Compressed pages next to each other in the payload buffer go out as one segment. */
  @Test
  void adjacentCompressedPagesShareASegment() {
    byte[] text = "guest page memory migration round ".repeat(PAGE_BYTES / 20).substring(0, PAGE_BYTES).getBytes();
    for (int page : new int[] {2, 3, 9}) {
      source.pageView(page).put(text);
    }
    fill(5, PAGE_BYTES, 5);
    writer.begin(header, () -> payload, 1);
    assertEquals(Outcome.LZ4, writer.add(2, false, true));
    assertEquals(Outcome.LZ4, writer.add(3, false, true));
    assertEquals(1, writer.segmentCount(), "two compressed pages, one payload range");
    assertEquals(Outcome.RAW, writer.add(5, false, false));
    assertEquals(Outcome.LZ4, writer.add(9, false, true));
    assertEquals(3, writer.segmentCount(), "payload, guest page 5, payload");
    assertEquals(false, writer.segmentInGuest(0));
    assertEquals(true, writer.segmentInGuest(1));
    assertEquals(5L * PAGE_BYTES, writer.segmentStart(1));
    writer.finish();
    writer.seal();
    ByteBuffer body = ByteBuffer.allocateDirect(writer.bodyBytes());
    writer.copyBodyTo(body);
    PageStreamReader reader = new PageStreamReader(target);
    reader.beginBatch(body.flip().remaining());
    reader.consume(body);
    for (int page : new int[] {2, 3, 5, 9}) {
      assertEquals(source.pageView(page), target.pageView(page), "page " + page);
    }
  }

  /** Page 0 is a page like any other: accepted, and named when it is the first suspect. */
  @Test
  void theFirstPageOfMemoryIsNamedWhenSuspect() {
    fill(0, PAGE_BYTES, 1);
    fill(9, PAGE_BYTES, 2);
    writer.begin(header, () -> payload, 1);
    writer.add(0, false, false);
    writer.add(9, false, false);
    writer.finish();
    writer.seal();
    ByteBuffer body = ByteBuffer.allocateDirect(writer.bodyBytes());
    writer.copyBodyTo(body);
    int payloadAt = PageBatchFixture.headerBytes(2);
    body.put(payloadAt + 10, (byte) (body.get(payloadAt + 10) ^ 1));
    body.put(payloadAt + PAGE_BYTES + 10, (byte) (body.get(payloadAt + PAGE_BYTES + 10) ^ 1));
    PageStreamReader reader = new PageStreamReader(target);
    reader.beginBatch(body.flip().remaining());
    reader.consume(body);
    assertEquals(2, reader.suspectPages());
    assertEquals(0, reader.aSuspectPage(), "the first page found suspect");
  }

  /** One byte is a length an LZ4 page may have; it is then refused for what it decodes to, not for its length. */
  @Test
  void aOneByteLz4PageIsCheckedAsLz4() {
    byte[] body = new PageBatchFixture.Crafted(1).entry(5, Wire.ENCODING_LZ4, 0, 1).payload(new byte[] {0}).bytes();
    PageStreamReader reader = new PageStreamReader(target);
    reader.beginBatch(body.length);
    ProtocolException e = assertThrows(ProtocolException.class, () -> reader.consume(ByteBuffer.wrap(body)));
    assertTrue(e.getMessage().startsWith("page batch entry 0: page 5 "), "the length passed, the content did not: "
        + e.getMessage());
  }
}
