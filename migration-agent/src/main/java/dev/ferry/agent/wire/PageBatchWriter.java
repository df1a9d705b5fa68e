package dev.ferry.agent.wire;

import dev.ferry.agent.guest.GuestMemory;
import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * Encodes guest pages into a page batch (see {@link Wire}), reading straight from guest memory.
 * The page is first copied into the batch (or a scratch page when compressing) and the checksum
 * is taken over that copy, so a vCPU writing the page meanwhile cannot make the checksum lie: the
 * write only re-marks the page dirty for the next round. One writer per engine thread.
 */
public final class PageBatchWriter {
  private final GuestMemory memory;
  private final CRC32C crc = new CRC32C();
  private final ByteBuffer scratch = ByteBuffer.allocateDirect(GuestMemory.PAGE_BYTES);
  private ByteBuffer out;
  private int countPosition;
  private int count;
  private int lastEncodedBytes;

  /** What {@link #add} did with a page. */
  public enum Outcome { SKIPPED_ZERO, ZERO, RAW, LZ4, RAW_INCOMPRESSIBLE }

  public PageBatchWriter(GuestMemory memory) {
    this.memory = memory;
  }

  /** Starts a batch of round {@code round} at {@code out}'s position; {@code out} is direct. */
  public void begin(ByteBuffer out, int round) {
    if (out.remaining() < Wire.BATCH_BYTES_MAX) {
      throw new IllegalArgumentException("batch buffer has " + out.remaining() + " bytes, needs " + Wire.BATCH_BYTES_MAX);
    }
    this.out = out;
    out.putInt(round);
    countPosition = out.position();
    out.putShort((short) 0);
    count = 0;
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
      putHeader(page, Wire.ENCODING_ZERO, PageChecksums.zeroPage(crc, page));
      return Outcome.ZERO;
    }
    return compress ? addCompressed(page) : addRaw(page);
  }

  private Outcome addRaw(int page) {
    int header = out.position();
    out.position(header + Wire.ENTRY_HEADER_BYTES);
    int payload = out.position();
    memory.readPage(page, out);
    int checksum = PageChecksums.crc(crc, out, payload, page);
    writeHeader(header, page, Wire.ENCODING_RAW, checksum);
    return Outcome.RAW;
  }

  private Outcome addCompressed(int page) {
    scratch.clear();
    memory.readPage(page, scratch);
    int checksum = PageChecksums.crc(crc, scratch, 0, page);
    int header = out.position();
    int payload = header + Wire.ENTRY_HEADER_BYTES + Wire.LZ4_LENGTH_BYTES;
    int compressed = Lz4.COMPRESSOR.compress(scratch, 0, GuestMemory.PAGE_BYTES, out, payload, Wire.LZ4_BOUND_BYTES);
    if (compressed > Wire.LZ4_WORTH_BYTES_MAX) {
      out.position(header + Wire.ENTRY_HEADER_BYTES);
      scratch.clear();
      out.put(scratch);
      writeHeader(header, page, Wire.ENCODING_RAW, checksum);
      return Outcome.RAW_INCOMPRESSIBLE;
    }
    lastEncodedBytes = compressed;
    out.putShort(header + Wire.ENTRY_HEADER_BYTES, (short) compressed);
    out.position(payload + compressed);
    writeHeader(header, page, Wire.ENCODING_LZ4, checksum);
    return Outcome.LZ4;
  }

  private void putHeader(int page, byte encoding, int checksum) {
    int header = out.position();
    out.position(header + Wire.ENTRY_HEADER_BYTES);
    writeHeader(header, page, encoding, checksum);
  }

  private void writeHeader(int at, int page, byte encoding, int checksum) {
    out.putInt(at, page);
    out.put(at + 4, encoding);
    out.putInt(at + 5, checksum);
    count++;
  }

  /** Payload bytes of the last page compressed with LZ4. */
  public int lastEncodedBytes() {
    return lastEncodedBytes;
  }

  /** Ends the batch; returns its length in bytes. */
  public int finish() {
    out.putShort(countPosition, (short) count);
    int length = out.position() - (countPosition - 4);
    out = null;
    return length;
  }
}
