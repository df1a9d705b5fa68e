package dev.ferry.engine.guest;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.zip.CRC32C;

/**
 * A whole-memory digest: SHA-256 over the memory size and every page's CRC32C in page order.
 * Equal digests mean equal memory up to a CRC32C collision on some page; the in-process tests
 * compare bytes directly as well.
 */
public final class MemoryDigest {
  private final MessageDigest sha;
  private final CRC32C crc = new CRC32C();
  private final byte[] crcBytes = new byte[4];

  MemoryDigest(long sizeBytes) {
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
    sha.update("ferry-memory-v1".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    sha.update(ByteBuffer.allocate(8).putLong(sizeBytes).array());
  }

  /** Adds the next page (in page order). */
  void addPage(ByteBuffer page) {
    crc.reset();
    crc.update(page);
    int value = (int) crc.getValue();
    crcBytes[0] = (byte) (value >>> 24);
    crcBytes[1] = (byte) (value >>> 16);
    crcBytes[2] = (byte) (value >>> 8);
    crcBytes[3] = (byte) value;
    sha.update(crcBytes);
  }

  byte[] finish() {
    return sha.digest();
  }

  /** The digest of memory that nobody writes while it runs (a paused or frozen guest). */
  public static byte[] of(GuestMemory memory) {
    MemoryDigest digest = new MemoryDigest(memory.sizeBytes());
    for (int page = 0; page < memory.pageCount(); page++) {
      digest.addPage(memory.pageView(page));
    }
    return digest.finish();
  }

  public static String hex(byte[] digest) {
    return digest == null || digest.length == 0 ? "-" : HexFormat.of().formatHex(digest);
  }
}
