package dev.ferry.engine.wire;

import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.guest.PageBitmap;
import java.nio.ByteBuffer;
import java.util.zip.CRC32C;
import net.jpountz.lz4.LZ4Exception;

/**
 * Applies page batches to the target guest's memory as their bytes arrive, in chunks of any size:
 * a raw page's bytes are copied straight from the receive buffer to their place in guest memory
 * (nothing waits for, or copies, a whole frame).
 *
 * <p>Everything the peer says is bounded before use: the header's own checksum, the count, each
 * page number, encoding and length, and the sum of lengths against the frame's length. A page
 * whose checksum does not match is marked suspect (the sender's vCPU may have rewritten it while it
 * was on the wire, and then it is sent again); one received intact later clears the mark.
 * {@link #suspectPages()} must be zero before the guest may resume.
 */
public final class PageStreamReader {
  private enum State { FIXED, HEADER, PAYLOAD }

  private final GuestMemory memory;
  private final CRC32C crc = new CRC32C();
  private final CRC32C pageCrc = new CRC32C();
  private final byte[] headerBytes = new byte[Wire.BATCH_HEADER_BYTES_MAX];
  private final ByteBuffer compressed = ByteBuffer.allocateDirect(GuestMemory.PAGE_BYTES);
  private final ByteBuffer decompressed = ByteBuffer.allocateDirect(GuestMemory.PAGE_BYTES);
  private final int[] page = new int[Wire.BATCH_PAGES_MAX];
  private final byte[] encoding = new byte[Wire.BATCH_PAGES_MAX];
  private final int[] checksum = new int[Wire.BATCH_PAGES_MAX];
  private final int[] length = new int[Wire.BATCH_PAGES_MAX];
  private final PageBitmap suspect;
  private State state = State.FIXED;
  private long bodyLeft;
  private long bodyTotal;
  private int headerFill;
  private int headerNeed;
  private int count;
  private int entry;
  private int entryFill;
  private int suspectPages;
  private int firstSuspect = -1;
  private long pagesApplied;
  private long pagesZero;
  private long pagesRaw;
  private long pagesLz4;
  private long bytesPlaced;

  public PageStreamReader(GuestMemory memory) {
    this.memory = memory;
    this.suspect = new PageBitmap(memory.pageCount());
  }

  /** A batch body of {@code bodyBytes} starts; the previous one must be complete. */
  public void beginBatch(int bodyBytes) {
    if (bodyLeft != 0 || state != State.FIXED || headerFill != 0) {
      throw new ProtocolException("a page batch started before the previous one ended");
    }
    if (bodyBytes < Wire.headerBytes(1) || bodyBytes > Wire.BATCH_BODY_BYTES_MAX) {
      throw new ProtocolException("page batch of " + bodyBytes + " bytes is outside "
          + Wire.headerBytes(1) + ".." + Wire.BATCH_BODY_BYTES_MAX);
    }
    bodyLeft = bodyBytes;
    bodyTotal = bodyBytes;
    headerNeed = Wire.BATCH_FIXED_BYTES;
  }

  /** True between {@link #beginBatch} and the batch's last byte. */
  public boolean inBatch() {
    return bodyLeft > 0;
  }

  /** Consumes all of {@code chunk}, which must not run past the current batch's end. */
  public void consume(ByteBuffer chunk) {
    if (chunk.remaining() > bodyLeft) {
      throw new ProtocolException("page batch data runs " + (chunk.remaining() - bodyLeft) + " bytes past its frame");
    }
    while (chunk.hasRemaining()) {
      int before = chunk.remaining();
      switch (state) {
        case FIXED, HEADER -> readHeader(chunk);
        case PAYLOAD -> readPayload(chunk);
        default -> throw new IllegalStateException();
      }
      bodyLeft -= before - chunk.remaining();
    }
    if (bodyLeft == 0 && state == State.PAYLOAD && entry == count) {
      state = State.FIXED;
    }
  }

  private void readHeader(ByteBuffer chunk) {
    int n = Math.min(chunk.remaining(), headerNeed - headerFill);
    chunk.get(headerBytes, headerFill, n);
    headerFill += n;
    if (headerFill < headerNeed) {
      return;
    }
    if (state == State.FIXED) {
      count = ((headerBytes[4] & 0xFF) << 8) | (headerBytes[5] & 0xFF);
      if (count < 1 || count > Wire.BATCH_PAGES_MAX) {
        throw new ProtocolException("page batch count " + count + " outside 1.." + Wire.BATCH_PAGES_MAX);
      }
      headerNeed = Wire.headerBytes(count);
      state = State.HEADER;
      if (headerNeed > bodyTotal) {
        throw new ProtocolException("page batch header of " + count + " entries does not fit its "
            + bodyTotal + "-byte frame");
      }
      return;
    }
    parseEntries();
    headerFill = 0;
    entry = 0;
    entryFill = 0;
    state = State.PAYLOAD;
    startEntries();
  }

  private void parseEntries() {
    ByteBuffer h = ByteBuffer.wrap(headerBytes, 0, headerNeed);
    crc.reset();
    crc.update(headerBytes, 0, headerNeed - Wire.HEADER_CRC_BYTES);
    if ((int) crc.getValue() != h.getInt(headerNeed - Wire.HEADER_CRC_BYTES)) {
      throw new ProtocolException("page batch header checksum mismatch: the header was corrupted in transit");
    }
    h.position(Wire.BATCH_FIXED_BYTES);
    long payloads = 0;
    for (int i = 0; i < count; i++) {
      page[i] = h.getInt();
      encoding[i] = h.get();
      checksum[i] = h.getInt();
      length[i] = Short.toUnsignedInt(h.getShort());
      validateEntry(i);
      payloads += length[i];
    }
    if (payloads != bodyTotal - headerNeed) {
      throw new ProtocolException("page batch entries announce " + payloads + " payload bytes, the frame has "
          + (bodyTotal - headerNeed));
    }
  }

  private void validateEntry(int i) {
    int p = page[i];
    if (p < 0 || p >= memory.pageCount()) {
      throw new ProtocolException("page batch entry " + i + ": page " + Integer.toUnsignedString(p)
          + " is outside guest memory of " + memory.pageCount() + " pages");
    }
    int len = length[i];
    boolean ok = switch (encoding[i]) {
      case Wire.ENCODING_ZERO -> len == 0;
      case Wire.ENCODING_RAW -> len == GuestMemory.PAGE_BYTES;
      case Wire.ENCODING_LZ4 -> len >= 1 && len < GuestMemory.PAGE_BYTES;
      default -> throw new ProtocolException("page batch entry " + i + ": unknown encoding " + encoding[i]);
    };
    if (!ok) {
      throw new ProtocolException("page batch entry " + i + ": length " + len + " is wrong for a "
          + Wire.encodingName(encoding[i]) + " page");
    }
  }

  /** Applies entries that carry no payload (zero pages) until the next one that does. */
  private void startEntries() {
    while (entry < count && length[entry] == 0) {
      applyZero(entry);
      entry++;
    }
    pageCrc.reset();
    compressed.clear();
  }

  private void readPayload(ByteBuffer chunk) {
    if (entry >= count) {
      throw new ProtocolException("page batch has bytes after its last page");
    }
    int need = length[entry] - entryFill;
    int n = Math.min(need, chunk.remaining());
    // The piece is chunk itself with its limit moved in: no buffer allocated per page.
    int at = chunk.position();
    int end = chunk.limit();
    chunk.limit(at + n);
    if (encoding[entry] == Wire.ENCODING_RAW) {
      pageCrc.update(chunk);
      chunk.position(at);
      if (memory.writeBytes(page[entry], entryFill, chunk)) {
        bytesPlaced += n;
      }
    } else {
      compressed.put(chunk);
    }
    chunk.limit(end).position(at + n);
    entryFill += n;
    if (entryFill == length[entry]) {
      finishEntry(entry);
      entry++;
      entryFill = 0;
      startEntries();
    }
  }

  private void finishEntry(int i) {
    if (encoding[i] == Wire.ENCODING_RAW) {
      PageChecksums.appendPageNumber(pageCrc, page[i]);
      verdict(i, (int) pageCrc.getValue());
      pagesRaw++;
    } else {
      int produced;
      try {
        produced = Lz4.DECOMPRESSOR.decompress(compressed, 0, length[i], decompressed, 0, GuestMemory.PAGE_BYTES);
      } catch (LZ4Exception e) {
        throw new ProtocolException("page batch entry " + i + ": page " + page[i] + " is not valid lz4", e);
      }
      if (produced != GuestMemory.PAGE_BYTES) {
        throw new ProtocolException("page batch entry " + i + ": page " + page[i] + " decompressed to "
            + produced + " bytes, not 4096");
      }
      decompressed.clear();
      memory.writePage(page[i], decompressed);
      verdict(i, PageChecksums.crc(crc, decompressed, 0, page[i]));
      pagesLz4++;
    }
    pagesApplied++;
  }

  private void applyZero(int i) {
    if (checksum[i] != PageChecksums.zeroPage(crc, page[i])) {
      throw new ProtocolException("page batch entry " + i + ": zero page " + page[i] + " has a wrong checksum");
    }
    memory.zeroPage(page[i]);
    clearSuspect(page[i]);
    pagesZero++;
    pagesApplied++;
  }

  private void verdict(int i, int actual) {
    int p = page[i];
    if (actual == checksum[i]) {
      clearSuspect(p);
    } else if (!suspect.get(p)) {
      suspect.set(p);
      suspectPages++;
      if (firstSuspect < 0) {
        firstSuspect = p;
      }
    }
  }

  private void clearSuspect(int p) {
    if (suspect.get(p)) {
      suspect.clear(p);
      suspectPages--;
    }
  }

  /**
   * Where the next bytes of the current batch belong in guest memory, if they are raw pages: the
   * byte offset and length of the run of consecutive raw pages from here (within one memory view),
   * else -1. The transport may read those bytes from the socket straight into place.
   */
  public long placementOffset() {
    if (state != State.PAYLOAD || entry >= count || encoding[entry] != Wire.ENCODING_RAW) {
      return -1;
    }
    return ((long) page[entry] << GuestMemory.PAGE_SHIFT) + entryFill;
  }

  /** The length that goes with {@link #placementOffset()}. */
  public int placementLength() {
    if (placementOffset() < 0) {
      return 0;
    }
    int length = GuestMemory.PAGE_BYTES - entryFill;
    for (int j = entry + 1; j < count && encoding[j] == Wire.ENCODING_RAW && page[j] == page[j - 1] + 1
        && !GuestMemory.isViewBoundary((long) page[j] << GuestMemory.PAGE_SHIFT); j++) {
      length += GuestMemory.PAGE_BYTES;
    }
    return length;
  }

  /** Header bytes still to come before the payloads start (0 once they have). */
  public int headerBytesMissing() {
    return state == State.PAYLOAD ? 0 : headerNeed - headerFill;
  }

  /** Pages whose last copy failed its checksum (must be 0 before the guest resumes). */
  public int suspectPages() {
    return suspectPages;
  }

  /** One suspect page, for the error message (-1 if none). */
  public int aSuspectPage() {
    if (suspectPages == 0) {
      return -1;
    }
    return suspect.get(firstSuspect) ? firstSuspect : suspect.nextSet(0);
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

  /** Raw page bytes the socket had already read into place (no copy here). */
  public long bytesPlaced() {
    return bytesPlaced;
  }
}
