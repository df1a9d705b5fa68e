package dev.ferry.engine.wire;

import static dev.ferry.engine.guest.GuestMemory.PAGE_BYTES;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.wire.PageBatchWriter.Outcome;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.IntSupplier;
import java.util.zip.CRC32C;

/**
 * Shared by the page codec tests: a 16 MiB source memory whose pages are zero, text or random, a
 * writer with its header and payload buffers, and a reading of the batch format that is
 * independent of {@link PageStreamReader} (the tests parse and craft batches from {@link Wire}'s
 * description, not from the production code).
 */
final class PageBatchFixture implements AutoCloseable {
  static final long MEMORY_BYTES = 16L << 20;
  static final int FIXED_BYTES = 6;
  static final int ENTRY_BYTES = 11;
  private static final String[] WORDS = ("page memory guest host migration round bandwidth cluster kernel "
      + "buffer socket thread the of and to in is was for on that with as by at from").split(" ");

  /** What a page of the source holds. */
  enum Kind { ZERO, TEXT, RANDOM }

  final GuestMemory source;
  final Kind[] kinds;
  final PageBatchWriter writer;
  private final List<GuestMemory> targets = new ArrayList<>();
  private final ByteBuffer header = ByteBuffer.allocateDirect(Wire.BATCH_HEADER_BYTES_MAX);
  private final ByteBuffer payload = ByteBuffer.allocateDirect(Wire.BATCH_PAYLOAD_BYTES_MAX);
  private final ByteBuffer body = ByteBuffer.allocateDirect(Wire.BATCH_BODY_BYTES_MAX);
  /** How often the writer asked for its payload buffer. */
  int payloadRequests;

  PageBatchFixture(long seed) {
    source = GuestMemory.allocate(MEMORY_BYTES);
    kinds = new Kind[source.pageCount()];
    SplittableRandom random = new SplittableRandom(seed);
    for (int p = 0; p < source.pageCount(); p++) {
      setPage(p, Kind.values()[random.nextInt(3)], random);
    }
    writer = new PageBatchWriter(source);
  }

  /** A fresh all-zero target memory, released by {@link #close}. */
  GuestMemory target() {
    GuestMemory target = GuestMemory.allocate(MEMORY_BYTES);
    targets.add(target);
    return target;
  }

  @Override
  public void close() {
    source.release();
    for (GuestMemory target : targets) {
      target.release();
    }
    targets.clear();
  }

  void setPage(int page, Kind kind, SplittableRandom random) {
    kinds[page] = kind;
    switch (kind) {
      case ZERO -> source.zeroPage(page);
      case TEXT -> source.pageView(page).put(text(random));
      case RANDOM -> {
        byte[] bytes = new byte[PAGE_BYTES];
        random.nextBytes(bytes);
        source.pageView(page).put(bytes);
      }
    }
  }

  int pageOf(Kind kind, int nth) {
    for (int p = 0; p < kinds.length; p++) {
      if (kinds[p] == kind && nth-- == 0) {
        return p;
      }
    }
    throw new AssertionError("no " + kind + " page");
  }

  // --- Encoding -------------------------------------------------------------------------------

  /** Starts a batch with the fixture's buffers; counts payload buffer requests. */
  void begin(int round) {
    writer.begin(header, () -> {
      payloadRequests++;
      return payload;
    }, round);
  }

  /** Finishes the current batch and returns its contiguous body. */
  byte[] finishBody() {
    writer.finish();
    writer.seal();
    body.clear();
    writer.copyBodyTo(body);
    assertEquals(writer.bodyBytes(), body.position(), "copyBodyTo writes bodyBytes()");
    byte[] bytes = new byte[body.flip().remaining()];
    body.get(bytes);
    return bytes;
  }

  /** One batch of {@code pages}; null if nothing was added (every page a skipped zero). */
  byte[] encode(int round, int[] pages, boolean skipZero, boolean compress) {
    begin(round);
    for (int page : pages) {
      writer.add(page, skipZero, compress);
    }
    if (writer.count() == 0) {
      return null;
    }
    return finishBody();
  }

  /** A full batch of 64 distinct random pages, zero markers included, compressed where worth it. */
  byte[] mixedBatch(long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    begin((int) seed);
    Map<Outcome, Integer> outcomes = new EnumMap<>(Outcome.class);
    Set<Integer> used = new HashSet<>();
    while (!writer.isFull()) {
      int page = random.nextInt(source.pageCount());
      if (used.add(page)) {
        outcomes.merge(writer.add(page, false, true), 1, Integer::sum);
      }
    }
    assertEquals(3, outcomes.size(), "a mixed batch has zero, lz4 and raw pages: " + outcomes);
    return finishBody();
  }

  // --- The format, read independently ----------------------------------------------------------

  /** One header entry; {@code payloadAt} is where its payload starts in the body. */
  record Entry(int index, int page, byte encoding, int checksum, int length, int entryAt, int payloadAt) {}

  static int headerBytes(int count) {
    return FIXED_BYTES + count * ENTRY_BYTES + 4;
  }

  static int count(byte[] body) {
    return ((body[4] & 0xFF) << 8) | (body[5] & 0xFF);
  }

  /** The entries of a well-formed body; fails the test if the body is not well-formed. */
  static List<Entry> entries(byte[] body) {
    List<Entry> entries = entriesIfAccepted(body, Integer.MAX_VALUE);
    if (entries == null) {
      fail("not a well-formed page batch body of " + body.length + " bytes");
    }
    return entries;
  }

  /**
   * The entries of {@code body} if its header is one a correct reader accepts (checksum right,
   * every field in bounds, payload lengths summing to the rest of the body), else null.
   */
  static List<Entry> entriesIfAccepted(byte[] body, int pageCount) {
    if (body.length < headerBytes(1)) {
      return null;
    }
    int count = count(body);
    if (count < 1 || count > Wire.BATCH_PAGES_MAX || headerBytes(count) > body.length) {
      return null;
    }
    ByteBuffer b = ByteBuffer.wrap(body);
    int crcAt = headerBytes(count) - 4;
    if (b.getInt(crcAt) != crc32c(body, 0, crcAt)) {
      return null;
    }
    List<Entry> entries = new ArrayList<>();
    int payloadAt = headerBytes(count);
    for (int i = 0; i < count; i++) {
      int at = FIXED_BYTES + i * ENTRY_BYTES;
      int page = b.getInt(at);
      byte encoding = b.get(at + 4);
      int checksum = b.getInt(at + 5);
      int length = Short.toUnsignedInt(b.getShort(at + 9));
      boolean lengthOk = switch (encoding) {
        case Wire.ENCODING_ZERO -> length == 0;
        case Wire.ENCODING_RAW -> length == PAGE_BYTES;
        case Wire.ENCODING_LZ4 -> length >= 1 && length < PAGE_BYTES;
        default -> false;
      };
      if (page < 0 || page >= pageCount || !lengthOk) {
        return null;
      }
      entries.add(new Entry(i, page, encoding, checksum, length, at, payloadAt));
      payloadAt += length;
    }
    return payloadAt == body.length ? entries : null;
  }

  static int crc32c(byte[] bytes, int from, int to) {
    CRC32C crc = new CRC32C();
    crc.update(bytes, from, to - from);
    return (int) crc.getValue();
  }

  /** CRC32C of the page's 4096 bytes, then its number as a big-endian u32. */
  static int pageChecksum(ByteBuffer content, int page) {
    CRC32C crc = new CRC32C();
    crc.update(content.duplicate());
    crc.update(new byte[] {(byte) (page >>> 24), (byte) (page >>> 16), (byte) (page >>> 8), (byte) page});
    return (int) crc.getValue();
  }

  static int zeroPageChecksum(int page) {
    return pageChecksum(ByteBuffer.allocate(PAGE_BYTES), page);
  }

  int sourceChecksum(int page) {
    return pageChecksum(source.pageView(page), page);
  }

  /** Rewrites the header checksum of a body whose count field is in range, after a test edited the header. */
  static byte[] resealHeader(byte[] body) {
    int crcAt = headerBytes(count(body)) - 4;
    ByteBuffer.wrap(body).putInt(crcAt, crc32c(body, 0, crcAt));
    return body;
  }

  /** Builds a body from explicit fields; the header checksum is computed unless {@link #badHeaderCrc}. */
  static final class Crafted {
    private final ByteBuffer header = ByteBuffer.allocate(4096);
    private final ByteBuffer payloads = ByteBuffer.allocate(Wire.BATCH_BODY_BYTES_MAX + 2 * PAGE_BYTES);
    private int entries;
    private Integer count;
    private boolean badHeaderCrc;

    Crafted(int round) {
      header.putInt(round).putShort((short) 0);
    }

    Crafted entry(int page, byte encoding, int checksum, int length) {
      header.putInt(page).put(encoding).putInt(checksum).putShort((short) length);
      entries++;
      return this;
    }

    Crafted payload(byte[] bytes) {
      payloads.put(bytes);
      return this;
    }

    Crafted payload(ByteBuffer bytes) {
      payloads.put(bytes.duplicate());
      return this;
    }

    /** Writes {@code value} into the count field instead of the number of entries. */
    Crafted count(int value) {
      this.count = value;
      return this;
    }

    Crafted badHeaderCrc() {
      this.badHeaderCrc = true;
      return this;
    }

    byte[] bytes() {
      header.putShort(4, (short) (count != null ? count : entries));
      int headerEnd = header.position();
      int crc = crc32c(header.array(), 0, headerEnd);
      byte[] out = new byte[headerEnd + 4 + payloads.position()];
      System.arraycopy(header.array(), 0, out, 0, headerEnd);
      ByteBuffer.wrap(out).putInt(headerEnd, badHeaderCrc ? ~crc : crc);
      System.arraycopy(payloads.array(), 0, out, headerEnd + 4, payloads.position());
      return out;
    }
  }

  // --- Feeding --------------------------------------------------------------------------------

  static ByteBuffer direct(byte[] bytes) {
    ByteBuffer b = ByteBuffer.allocateDirect(Math.max(1, bytes.length));
    b.put(bytes).flip();
    return b;
  }

  /** A heap buffer over a copy of {@code bytes} that does not start at its array's index 0. */
  static ByteBuffer heap(byte[] bytes) {
    byte[] padded = new byte[bytes.length + 13];
    System.arraycopy(bytes, 0, padded, 7, bytes.length);
    return ByteBuffer.wrap(padded, 7, bytes.length).slice();
  }

  /**
   * Feeds a whole batch body: {@code beginBatch}, then chunks of the sizes {@code chunkSize} gives
   * (clamped to 1..remaining). Checks that each chunk is consumed whole and that the reader is in
   * the batch exactly until its last byte.
   */
  static void feed(PageStreamReader reader, ByteBuffer body, IntSupplier chunkSize) {
    reader.beginBatch(body.remaining());
    assertTrue(reader.inBatch(), "in a batch after beginBatch");
    while (body.hasRemaining()) {
      int n = Math.max(1, Math.min(body.remaining(), chunkSize.getAsInt()));
      ByteBuffer chunk = body.slice(body.position(), n);
      reader.consume(chunk);
      assertFalse(chunk.hasRemaining(), "consume takes the whole chunk");
      body.position(body.position() + n);
      assertEquals(body.hasRemaining(), reader.inBatch(), "inBatch() until the batch's last byte");
    }
  }

  static void feedWhole(PageStreamReader reader, byte[] body) {
    feed(reader, direct(body), () -> Integer.MAX_VALUE);
  }

  /** Chunk sizes of 1..{@code max} bytes. */
  static IntSupplier randomChunks(SplittableRandom random, int max) {
    return () -> 1 + random.nextInt(max);
  }

  // --- Checks ---------------------------------------------------------------------------------

  static boolean samePage(GuestMemory a, GuestMemory b, int page) {
    return a.pageView(page).equals(b.pageView(page));
  }

  void assertPagesEqualSource(GuestMemory target, Collection<Integer> pages, String context) {
    for (int page : pages) {
      if (!samePage(source, target, page)) {
        fail(context + ": page " + page + " differs from the source");
      }
    }
  }

  static void assertSameMemory(GuestMemory expected, GuestMemory actual, String context) {
    for (int p = 0; p < expected.pageCount(); p++) {
      if (!samePage(expected, actual, p)) {
        fail(context + ": page " + p + " differs");
      }
    }
  }

  /** Pages of {@code target} that are neither zero nor the source's page. */
  List<Integer> wrongPages(GuestMemory target, Collection<Integer> pages) {
    List<Integer> wrong = new ArrayList<>();
    for (int page : pages) {
      if (!target.isZeroPage(page) && !samePage(source, target, page)) {
        wrong.add(page);
      }
    }
    return wrong;
  }

  static byte[] pageBytes(GuestMemory memory, int page) {
    byte[] bytes = new byte[PAGE_BYTES];
    memory.pageView(page).get(bytes);
    return bytes;
  }

  static byte[] text(SplittableRandom random) {
    StringBuilder s = new StringBuilder(PAGE_BYTES + 16);
    while (s.length() < PAGE_BYTES) {
      s.append(WORDS[random.nextInt(WORDS.length)]).append(random.nextInt(10) == 0 ? ". " : " ");
    }
    return s.substring(0, PAGE_BYTES).getBytes(StandardCharsets.US_ASCII);
  }
}
