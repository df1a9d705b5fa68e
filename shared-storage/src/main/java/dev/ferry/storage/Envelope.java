package dev.ferry.storage;

import dev.ferry.storage.StorageException.Problem;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;

/**
 * The header every file Ferry writes starts with, and its checks. Twenty bytes, big-endian:
 *
 * <pre>
 *   0  magic            4 ASCII characters naming the kind of file ({@link FileKind})
 *   4  format version   of the payload (and of whatever follows it in the file)
 *   8  payload length   bytes after the header, bounded per kind
 *  12  payload CRC32C
 *  16  header CRC32C    over bytes 0..15, so a damaged version or length reads as corrupt
 * </pre>
 *
 * This layout never changes; a new format changes only the version and what follows. Reading
 * checks, in order: size, magic, header checksum, version (a newer one is refused by name),
 * length bound, size against the length, payload checksum. Only then is the payload returned.
 */
final class Envelope {
  static final int HEADER_BYTES = 20;

  private Envelope() {}

  /** The header and payload of a {@code kind} file at the current format. */
  static ByteBuffer seal(FileKind kind, String file, byte[] payload) {
    if (payload.length > kind.payloadBytesMax) {
      throw new StorageException(Problem.OVERSIZED, file, "a " + kind.description + " of " + payload.length
          + " bytes is over the limit of " + kind.payloadBytesMax + " bytes");
    }
    return encode(kind.magic, kind.formatVersion, payload);
  }

  /** The header and payload with any magic and version; unchecked, so tests can forge files. */
  static ByteBuffer encode(int magic, int version, byte[] payload) {
    CRC32C crc = new CRC32C();
    crc.update(payload);
    ByteBuffer out = ByteBuffer.allocate(HEADER_BYTES + payload.length);
    out.putInt(magic).putInt(version).putInt(payload.length).putInt((int) crc.getValue());
    crc.reset();
    crc.update(out.array(), 0, 16);
    out.putInt((int) crc.getValue()).put(payload).flip();
    return out;
  }

  /**
   * The payload of a file that is exactly one envelope ({@code vm.conf}, {@code lease}).
   * {@code file} names it in errors.
   */
  static byte[] readFile(Path path, String file, FileKind kind) {
    try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
      long size = channel.size();
      Header header = readHeader(channel, file, kind, size);
      long expected = HEADER_BYTES + (long) header.payloadBytes;
      if (size < expected) {
        throw truncated(file, size, expected);
      }
      if (size > expected) {
        throw new StorageException(Problem.OVERSIZED, file, "is " + size + " bytes; its header says " + expected);
      }
      return readPayload(channel, file, header);
    } catch (NoSuchFileException e) {
      throw new StorageException(Problem.NOT_FOUND, file, "does not exist", e);
    } catch (IOException e) {
      throw new StorageException(Problem.IO, file, "cannot be read: " + e, e);
    }
  }

  /**
   * The payload of the envelope at the start of a file that continues after it (disk images,
   * checkpoints); the caller checks the rest of the file against the payload.
   */
  static byte[] readPrefix(FileChannel channel, String file, FileKind kind) throws IOException {
    long size = channel.size();
    Header header = readHeader(channel, file, kind, size);
    long expected = HEADER_BYTES + (long) header.payloadBytes;
    if (size < expected) {
      throw truncated(file, size, expected);
    }
    return readPayload(channel, file, header);
  }

  private record Header(int payloadBytes, int payloadCrc) {}

  private static Header readHeader(FileChannel channel, String file, FileKind kind, long size) throws IOException {
    if (size < HEADER_BYTES) {
      throw new StorageException(Problem.TRUNCATED, file, size == 0 ? "is empty"
          : "is " + size + " bytes, shorter than the " + HEADER_BYTES + "-byte header");
    }
    ByteBuffer bytes = ByteBuffer.allocate(HEADER_BYTES);
    readFully(channel, bytes, 0, file);
    int magic = bytes.getInt(0);
    if (magic != kind.magic) {
      throw new StorageException(Problem.NOT_A_FERRY_FILE, file, String.format(
          "is not a Ferry %s (magic 0x%08x, expected 0x%08x)", kind.description, magic, kind.magic));
    }
    CRC32C crc = new CRC32C();
    crc.update(bytes.array(), 0, 16);
    if ((int) crc.getValue() != bytes.getInt(16)) {
      throw new StorageException(Problem.CORRUPT, file, "header checksum mismatch");
    }
    int version = bytes.getInt(4);
    if (version == 0) {
      throw new StorageException(Problem.CORRUPT, file, "format version 0 is impossible");
    }
    if (Integer.compareUnsigned(version, kind.formatVersion) > 0) {
      throw new StorageException(Problem.NEWER_FORMAT, file, "written by format "
          + Integer.toUnsignedString(version) + "; this Ferry reads up to " + kind.formatVersion);
    }
    int length = bytes.getInt(8);
    if (length < 0 || length > kind.payloadBytesMax) {
      throw new StorageException(Problem.OVERSIZED, file, "header says the payload is "
          + Integer.toUnsignedString(length) + " bytes; a " + kind.description + " is at most " + kind.payloadBytesMax);
    }
    return new Header(length, bytes.getInt(12));
  }

  private static byte[] readPayload(FileChannel channel, String file, Header header) throws IOException {
    ByteBuffer payload = ByteBuffer.allocate(header.payloadBytes);
    readFully(channel, payload, HEADER_BYTES, file);
    CRC32C crc = new CRC32C();
    crc.update(payload.array());
    if ((int) crc.getValue() != header.payloadCrc) {
      throw new StorageException(Problem.CORRUPT, file, String.format(
          "checksum mismatch (stored 0x%08x, computed 0x%08x)", header.payloadCrc, (int) crc.getValue()));
    }
    return payload.array();
  }

  /** Fills {@code into} from {@code position}; a file that ends first is truncated. */
  static void readFully(FileChannel channel, ByteBuffer into, long position, String file) throws IOException {
    long at = position;
    while (into.hasRemaining()) {
      int n = channel.read(into, at);
      if (n < 0) {
        throw new StorageException(Problem.TRUNCATED, file, "ends at byte " + at + "; "
            + into.remaining() + " more bytes were expected");
      }
      at += n;
    }
  }

  static StorageException truncated(String file, long size, long expected) {
    return new StorageException(Problem.TRUNCATED, file, "is " + size + " bytes; its header says " + expected);
  }
}
