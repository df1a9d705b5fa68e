package dev.ferry.agent.wire;

import dev.ferry.agent.guest.GuestMemory;
import java.nio.ByteBuffer;
import java.util.zip.CRC32C;
import net.jpountz.lz4.LZ4Exception;

/**
 * Checks and applies a page batch to the target guest's memory. Every length and index comes
 * from the peer, so each is bounded before use; decompression writes into one scratch page and
 * must produce exactly 4096 bytes. A bad batch throws {@link ProtocolException} naming the entry;
 * pages before it may already be applied, which is harmless: the target guest is not running and
 * a failed migration frees it.
 */
public final class PageBatchReader {
  private final GuestMemory memory;
  private final CRC32C crc = new CRC32C();
  private final ByteBuffer scratch = ByteBuffer.allocateDirect(GuestMemory.PAGE_BYTES);
  private long pagesApplied;
  private long pagesZero;
  private long pagesRaw;
  private long pagesLz4;

  public PageBatchReader(GuestMemory memory) {
    this.memory = memory;
  }

  /** Applies every page of {@code body} (its position to its limit); returns the batch's round. */
  public int apply(ByteBuffer body) {
    if (body.remaining() < Wire.BATCH_HEADER_BYTES) {
      throw new ProtocolException("page batch of " + body.remaining() + " bytes is shorter than its header");
    }
    int round = body.getInt();
    int count = Short.toUnsignedInt(body.getShort());
    if (count < 1 || count > Wire.BATCH_PAGES_MAX) {
      throw new ProtocolException("page batch count " + count + " outside 1.." + Wire.BATCH_PAGES_MAX);
    }
    for (int i = 0; i < count; i++) {
      applyEntry(body, i);
    }
    if (body.hasRemaining()) {
      throw new ProtocolException("page batch has " + body.remaining() + " bytes after its " + count + " entries");
    }
    return round;
  }

  private void applyEntry(ByteBuffer body, int entry) {
    if (body.remaining() < Wire.ENTRY_HEADER_BYTES) {
      throw new ProtocolException("page batch entry " + entry + " is truncated");
    }
    int page = body.getInt();
    byte encoding = body.get();
    int expected = body.getInt();
    if (page < 0 || page >= memory.pageCount()) {
      throw new ProtocolException("page batch entry " + entry + ": page " + Integer.toUnsignedString(page)
          + " is outside guest memory of " + memory.pageCount() + " pages");
    }
    switch (encoding) {
      case Wire.ENCODING_ZERO -> applyZero(page, expected);
      case Wire.ENCODING_RAW -> applyRaw(body, page, expected, entry);
      case Wire.ENCODING_LZ4 -> applyLz4(body, page, expected, entry);
      default -> throw new ProtocolException("page batch entry " + entry + ": unknown encoding " + encoding);
    }
    pagesApplied++;
  }

  private void applyZero(int page, int expected) {
    if (expected != PageChecksums.zeroPage(crc, page)) {
      throw checksumMismatch(page, "zero");
    }
    memory.zeroPage(page);
    pagesZero++;
  }

  private void applyRaw(ByteBuffer body, int page, int expected, int entry) {
    if (body.remaining() < GuestMemory.PAGE_BYTES) {
      throw new ProtocolException("page batch entry " + entry + ": raw page " + page + " is truncated");
    }
    if (PageChecksums.crc(crc, body, body.position(), page) != expected) {
      throw checksumMismatch(page, "raw");
    }
    memory.writePage(page, body);
    pagesRaw++;
  }

  private void applyLz4(ByteBuffer body, int page, int expected, int entry) {
    if (body.remaining() < Wire.LZ4_LENGTH_BYTES) {
      throw new ProtocolException("page batch entry " + entry + ": lz4 length is truncated");
    }
    int length = Short.toUnsignedInt(body.getShort());
    if (length < 1 || length >= GuestMemory.PAGE_BYTES || length > body.remaining()) {
      throw new ProtocolException("page batch entry " + entry + ": lz4 length " + length
          + " is outside 1..4095 or past the batch end");
    }
    int decompressed;
    try {
      decompressed = Lz4.DECOMPRESSOR.decompress(body, body.position(), length, scratch, 0, GuestMemory.PAGE_BYTES);
    } catch (LZ4Exception e) {
      throw new ProtocolException("page batch entry " + entry + ": page " + page + " is not valid lz4", e);
    }
    if (decompressed != GuestMemory.PAGE_BYTES) {
      throw new ProtocolException("page batch entry " + entry + ": page " + page + " decompressed to "
          + decompressed + " bytes, not 4096");
    }
    body.position(body.position() + length);
    if (PageChecksums.crc(crc, scratch, 0, page) != expected) {
      throw checksumMismatch(page, "lz4");
    }
    scratch.clear();
    memory.writePage(page, scratch);
    pagesLz4++;
  }

  private static ProtocolException checksumMismatch(int page, String encoding) {
    return new ProtocolException("checksum mismatch on page " + page + " (" + encoding + "): the page was corrupted in transit");
  }

  public long pagesApplied() {
    return pagesApplied;
  }

  public long pagesZero() {
    return pagesZero;
  }

  public long pagesRaw() {
    return pagesRaw;
  }

  public long pagesLz4() {
    return pagesLz4;
  }
}
