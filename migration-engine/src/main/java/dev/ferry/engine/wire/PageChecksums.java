package dev.ferry.engine.wire;

import dev.ferry.engine.guest.GuestMemory;
import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * The checksum a page carries: CRC32C over its 4096 bytes followed by its page number, so a
 * page whose number was damaged in transit cannot land intact in the wrong place.
 */
final class PageChecksums {
  private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(GuestMemory.PAGE_BYTES);

  private PageChecksums() {}

  /** The checksum of page {@code page} whose content is the 4096 bytes of {@code buffer} at {@code at}. */
  static int crc(CRC32C crc, ByteBuffer buffer, int at, int page) {
    crc.reset();
    crc.update(buffer.slice(at, GuestMemory.PAGE_BYTES));
    appendPageNumber(crc, page);
    return (int) crc.getValue();
  }

  /** The checksum of page {@code page} whose content is {@code content} (position to limit, consumed). */
  static int crc(CRC32C crc, ByteBuffer content, int page) {
    crc.reset();
    crc.update(content);
    appendPageNumber(crc, page);
    return (int) crc.getValue();
  }

  /** Ends a checksum whose 4096 content bytes {@code crc} has already seen. */
  static void appendPageNumber(CRC32C crc, int page) {
    crc.update(page >>> 24);
    crc.update(page >>> 16);
    crc.update(page >>> 8);
    crc.update(page);
  }

  /** The checksum of page {@code page} when it is all zeros. */
  static int zeroPage(CRC32C crc, int page) {
    return crc(crc, ZEROS, 0, page);
  }
}
