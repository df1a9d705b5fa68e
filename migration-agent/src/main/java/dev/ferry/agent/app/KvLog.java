package dev.ferry.agent.app;

import dev.ferry.storage.LeasedWriter;
import dev.ferry.storage.VmDirectory;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * The key-value profile's log on the guest's disk: records appended one after another from byte
 * 0, each {@code magic, length, key length, key, value, CRC32C}. Replay reads records until the
 * first that is not whole and valid (zeros past the end, or a write torn by a crash): that is
 * the end, and the next append overwrites it. Appends go through the lease-checked writer and are
 * forced to stable storage before they count, so an acknowledged write survives any crash, and
 * a fenced old owner cannot append at all.
 */
public final class KvLog {
  static final int MAGIC = 0x464b5631; // "FKV1"
  static final int KEY_BYTES_MAX = 256;
  static final int VALUE_BYTES_MAX = 4096;
  private static final int HEADER_BYTES = 4 + 4 + 2;
  private static final int TRAILER_BYTES = 4;

  private final VmDirectory dir;
  private final long capacity;
  private long end;

  private KvLog(VmDirectory dir, long capacity) {
    this.dir = dir;
    this.capacity = capacity;
  }

  /** Replays the log into {@code into}; the returned log appends after its last valid record. */
  public static KvLog replay(VmDirectory dir, Map<String, String> into) {
    KvLog log = new KvLog(dir, dir.diskCapacityBytes(0));
    ByteBuffer header = ByteBuffer.allocate(HEADER_BYTES);
    long position = 0;
    while (position + HEADER_BYTES + TRAILER_BYTES <= log.capacity) {
      header.clear();
      dir.readDisk(0, position, header);
      header.flip();
      int magic = header.getInt();
      int length = header.getInt();
      int keyLength = Short.toUnsignedInt(header.getShort());
      if (magic != MAGIC || length < 0 || keyLength == 0 || keyLength > KEY_BYTES_MAX
          || length - keyLength > VALUE_BYTES_MAX || length < keyLength
          || position + HEADER_BYTES + length + TRAILER_BYTES > log.capacity) {
        break;
      }
      ByteBuffer body = ByteBuffer.allocate(length + TRAILER_BYTES);
      dir.readDisk(0, position + HEADER_BYTES, body);
      body.flip();
      CRC32C crc = new CRC32C();
      crc.update(header.array(), 0, HEADER_BYTES);
      crc.update(body.array(), 0, length);
      if ((int) crc.getValue() != body.getInt(length)) {
        break;
      }
      String key = new String(body.array(), 0, keyLength, StandardCharsets.UTF_8);
      String value = new String(body.array(), keyLength, length - keyLength, StandardCharsets.UTF_8);
      into.put(key, value);
      position += HEADER_BYTES + length + TRAILER_BYTES;
    }
    log.end = position;
    return log;
  }

  /** Appends {@code key = value} and forces it to stable storage; throws if fenced or full. */
  public synchronized void append(LeasedWriter writer, String key, String value) {
    byte[] k = key.getBytes(StandardCharsets.UTF_8);
    byte[] v = value.getBytes(StandardCharsets.UTF_8);
    if (k.length == 0 || k.length > KEY_BYTES_MAX || v.length > VALUE_BYTES_MAX) {
      throw new IllegalArgumentException("key must be 1-" + KEY_BYTES_MAX + " bytes and value at most "
          + VALUE_BYTES_MAX);
    }
    int length = k.length + v.length;
    ByteBuffer record = ByteBuffer.allocate(HEADER_BYTES + length + TRAILER_BYTES);
    record.putInt(MAGIC).putInt(length).putShort((short) k.length).put(k).put(v);
    CRC32C crc = new CRC32C();
    crc.update(record.array(), 0, HEADER_BYTES + length);
    record.putInt((int) crc.getValue()).flip();
    if (end + record.remaining() > capacity) {
      throw new IllegalStateException("the disk is full (" + capacity + " bytes of log)");
    }
    writer.writeDiskBlockDurably(0, end, record);
    end += HEADER_BYTES + length + TRAILER_BYTES;
  }

  public synchronized long sizeBytes() {
    return end;
  }
}
