package dev.ferry.engine.wire;

import dev.ferry.engine.guest.GuestMemory;
import java.nio.ByteBuffer;
import java.util.function.Supplier;
import java.util.zip.CRC32C;
import net.jpountz.lz4.LZ4JNIFastResetCompressor;

/**
 * Encodes guest pages into a page batch (see {@link Wire}) without copying raw pages: the batch is
 * a header plus a list of segments, each either a range of guest memory (consecutive raw pages
 * merge into one) or a range of the batch's payload buffer (compressed pages). The transport hands
 * guest ranges to the socket directly.
 *
 * <p>The checksums of raw pages are taken by {@link Sealer#seal}, on the thread that hands the
 * batch to the socket, just before it does: the page is then in that core's cache when the kernel
 * copies it, and the thread that picks pages does not read them at all (measured: raw page
 * checksums were most of the engine thread's work, and each page crossed memory twice). The socket
 * may still copy a page after its checksum was taken (the batch can wait in the outbound queue).
 * A vCPU that writes the page in between makes the copy on the wire differ from its checksum; the
 * receiver then marks the page suspect, and since that write also marked the page dirty, a later
 * round sends it again. With the guest paused (the last round) nothing can change, so a page still
 * suspect at the end is real corruption and fails the migration.
 */
public final class PageBatchWriter {
  private final GuestMemory memory;
  private final CRC32C crc = new CRC32C();
  private LZ4JNIFastResetCompressor compressor;
  private final long[] segmentStart = new long[Wire.BATCH_PAGES_MAX];
  private final int[] segmentLength = new int[Wire.BATCH_PAGES_MAX];
  private final boolean[] segmentInGuest = new boolean[Wire.BATCH_PAGES_MAX];
  private ByteBuffer header;
  private Supplier<ByteBuffer> payloadSupplier;
  private ByteBuffer payload;
  private int count;
  private int segments;
  private int payloadBytes;
  private int lastEncodedBytes;
  private Sealer sealer;
  private boolean sealed;

  /** What {@link #add} did with a page. */
  public enum Outcome { SKIPPED_ZERO, ZERO, RAW, LZ4, RAW_INCOMPRESSIBLE }

  public PageBatchWriter(GuestMemory memory) {
    this.memory = memory;
  }

  /**
   * Starts a batch of round {@code round}. {@code header} (at least {@link Wire#BATCH_HEADER_BYTES_MAX})
   * receives the header from position 0; {@code payload} is asked for only if a page is compressed.
   */
  public void begin(ByteBuffer header, Supplier<ByteBuffer> payload, int round) {
    if (header.capacity() < Wire.BATCH_HEADER_BYTES_MAX) {
      throw new IllegalArgumentException("header buffer of " + header.capacity() + " bytes, needs " + Wire.BATCH_HEADER_BYTES_MAX);
    }
    this.header = header;
    this.payloadSupplier = payload;
    this.payload = null;
    header.clear();
    header.putInt(round);
    header.putShort((short) 0);
    count = 0;
    segments = 0;
    payloadBytes = 0;
    sealed = false;
  }

  public boolean isFull() {
    return count >= Wire.BATCH_PAGES_MAX;
  }

  public int count() {
    return count;
  }

  /**
   * Adds {@code page}. A zero page is skipped when {@code skipZero} (round 0: the target starts
   * zeroed) and otherwise sent as a marker; other pages go raw, or LZ4 when {@code compress}
   * and it saves at least 1/8.
   */
  public Outcome add(int page, boolean skipZero, boolean compress) {
    if (isFull()) {
      throw new IllegalStateException("batch is full");
    }
    if (memory.isZeroPage(page)) {
      if (skipZero) {
        return Outcome.SKIPPED_ZERO;
      }
      putEntry(page, Wire.ENCODING_ZERO, PageChecksums.zeroPage(crc, page), 0);
      return Outcome.ZERO;
    }
    if (compress) {
      return addCompressed(page);
    }
    putEntry(page, Wire.ENCODING_RAW, 0, GuestMemory.PAGE_BYTES); // checksum taken by the sealer
    addGuestPage(page);
    return Outcome.RAW;
  }

  private Outcome addCompressed(int page) {
    // Compressed straight from guest memory, like raw pages: a vCPU write in between only makes
    // the page suspect on the target, and the write itself makes the page go again.
    ByteBuffer source = memory.pageView(page);
    if (payload == null) {
      payload = payloadSupplier.get();
      if (payload.capacity() < Wire.BATCH_PAYLOAD_BYTES_MAX) {
        throw new IllegalArgumentException("payload buffer of " + payload.capacity() + " bytes, needs "
            + Wire.BATCH_PAYLOAD_BYTES_MAX);
      }
    }
    if (compressor == null) {
      compressor = Lz4.newCompressor();
    }
    int compressed = compressor.compress(source, 0, GuestMemory.PAGE_BYTES, payload, payloadBytes, Wire.LZ4_BOUND_BYTES);
    lastEncodedBytes = compressed;
    if (compressed > Wire.LZ4_WORTH_BYTES_MAX) {
      putEntry(page, Wire.ENCODING_RAW, 0, GuestMemory.PAGE_BYTES);
      addGuestPage(page);
      return Outcome.RAW_INCOMPRESSIBLE;
    }
    putEntry(page, Wire.ENCODING_LZ4, PageChecksums.crc(crc, source, 0, page), compressed);
    addSegment(false, payloadBytes, compressed);
    payloadBytes += compressed;
    return Outcome.LZ4;
  }

  private void putEntry(int page, byte encoding, int checksum, int length) {
    header.putInt(page);
    header.put(encoding);
    header.putInt(checksum);
    header.putShort((short) length);
    count++;
  }

  /** A raw page: guest bytes at the page's offset; consecutive pages merge unless a view boundary lies between. */
  private void addGuestPage(int page) {
    long offset = (long) page << GuestMemory.PAGE_SHIFT;
    int last = segments - 1;
    if (last >= 0 && segmentInGuest[last] && segmentStart[last] + segmentLength[last] == offset
        && !GuestMemory.isViewBoundary(offset)) {
      segmentLength[last] += GuestMemory.PAGE_BYTES;
      return;
    }
    addSegment(true, offset, GuestMemory.PAGE_BYTES);
  }

  private void addSegment(boolean inGuest, long start, int length) {
    int last = segments - 1;
    if (last >= 0 && !inGuest && !segmentInGuest[last] && segmentStart[last] + segmentLength[last] == start) {
      segmentLength[last] += length;
      return;
    }
    segmentInGuest[segments] = inGuest;
    segmentStart[segments] = start;
    segmentLength[segments] = length;
    segments++;
  }

  /** Frees the compressor's native state. */
  public void close() {
    if (compressor != null) {
      compressor.close();
      compressor = null;
    }
  }

  /** Payload bytes of the last page given to LZ4. */
  public int lastEncodedBytes() {
    return lastEncodedBytes;
  }

  /**
   * Ends the batch: writes the count and flips the header buffer (room left for the header
   * checksum). The raw pages' checksums and the header checksum are still missing: {@link
   * #seal()} or a {@link Sealer} adds them.
   */
  public void finish() {
    header.putShort(4, (short) count);
    header.position(header.position() + Wire.HEADER_CRC_BYTES);
    header.flip();
    if (payload != null) {
      payload.position(0).limit(payloadBytes);
    }
  }

  /** Seals the finished batch on this thread (tests and the in-memory link). */
  public void seal() {
    if (sealer == null) {
      sealer = new Sealer(memory);
    }
    sealer.seal(header);
    sealed = true;
  }

  /**
   * Completes finished batch headers: the checksum of every raw page, read from guest memory
   * now, then the header's own checksum. One per sending thread (it keeps a CRC32C).
   */
  public static final class Sealer {
    private final GuestMemory.PageCursor pages;
    private final CRC32C crc = new CRC32C();

    public Sealer(GuestMemory memory) {
      this.pages = memory.newCursor();
    }

    /** {@code header}: a finished batch header, position 0 to limit; only its contents change. */
    public void seal(ByteBuffer header) {
      int count = Short.toUnsignedInt(header.getShort(4));
      int at = Wire.BATCH_FIXED_BYTES;
      for (int i = 0; i < count; i++, at += Wire.ENTRY_BYTES) {
        if (header.get(at + 4) == Wire.ENCODING_RAW) {
          int page = header.getInt(at);
          header.putInt(at + 5, PageChecksums.crc(crc, pages.page(page), page));
        }
      }
      int crcAt = header.limit() - Wire.HEADER_CRC_BYTES;
      crc.reset();
      crc.update(header.slice(0, crcAt));
      header.putInt(crcAt, (int) crc.getValue());
    }
  }

  /** Body bytes of the finished batch: header plus payloads. */
  public int bodyBytes() {
    int total = header.limit();
    for (int i = 0; i < segments; i++) {
      total += segmentLength[i];
    }
    return total;
  }

  public int segmentCount() {
    return segments;
  }

  /** True if segment {@code i} is guest memory (its start a byte offset in it), else the payload buffer. */
  public boolean segmentInGuest(int i) {
    return segmentInGuest[i];
  }

  public long segmentStart(int i) {
    return segmentStart[i];
  }

  public int segmentLength(int i) {
    return segmentLength[i];
  }

  /** Copies the sealed batch body into {@code out} (tests and the in-memory link). */
  public void copyBodyTo(ByteBuffer out) {
    if (!sealed) {
      throw new IllegalStateException("copyBodyTo before seal");
    }
    out.put(header.duplicate());
    for (int i = 0; i < segments; i++) {
      if (segmentInGuest[i]) {
        out.put(memory.view(segmentStart[i], segmentLength[i]));
      } else {
        out.put(payload.slice((int) segmentStart[i], segmentLength[i]));
      }
    }
  }
}
