package dev.ferry.storage;

import dev.ferry.storage.StorageException.Problem;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * What a memory checkpoint holds: whose memory ({@code vmName}), how much ({@code memoryBytes},
 * a whole number of {@code pageBytes} pages), how it was cut into checksummed chunks
 * ({@code chunkBytes}, a whole number of pages) and when it was written.
 *
 * <p>The file ({@code checkpoint/NAME.ckpt}) is, in order:
 *
 * <pre>
 *   envelope     {@link Envelope} header; payload: VM name (length byte + ASCII), memory bytes (8),
 *                page bytes (4), chunk bytes (4), created wall-clock millis (8)
 *   chunks       ceil(memory / chunk) times: index (4), CRC32C of the data then the index (4),
 *                data (chunk bytes; the last chunk may be shorter)
 *   trailer      magic "FCKE" (4), chunk count (4), machine state length (4), machine state
 *                (vCPU and device state, opaque here), CRC32C of every byte before it (4)
 * </pre>
 *
 * All lengths are bounded below; the whole file's size follows from the header and the trailer's
 * state length, so a truncated or padded file is refused before any page is delivered.
 */
public record CheckpointHeader(String vmName, long memoryBytes, int pageBytes, int chunkBytes, long createdMillis) {
  public static final int PAGE_BYTES_MIN = 4096;
  public static final int PAGE_BYTES_MAX = 2 << 20;
  /** The chunk this Ferry writes (or one page, if pages are larger): also its I/O buffer size. */
  public static final int CHUNK_BYTES_DEFAULT = 1 << 20;
  static final int CHUNK_BYTES_MIN = 64 << 10;
  /** The largest chunk a reader accepts, hence the largest buffer a file can make it allocate. */
  static final int CHUNK_BYTES_MAX = 4 << 20;
  public static final long MEMORY_BYTES_MAX = 16L << 40;
  /** The bound on the opaque vCPU and device state in the trailer (it is read onto the heap). */
  public static final int MACHINE_STATE_BYTES_MAX = 16 << 20;

  static final int CHUNK_HEADER_BYTES = 8;
  static final int TRAILER_MAGIC = FileKind.magicOf("FCKE");
  /** Trailer magic, chunk count, state length. */
  static final int TRAILER_FIXED_BYTES = 12;
  static final int FILE_CRC_BYTES = 4;

  /** How many chunks the memory is cut into (at most 256 Mi, by the bounds). */
  public int chunkCount() {
    return (int) ((memoryBytes + chunkBytes - 1) / chunkBytes);
  }

  /** The header's fields checked against the bounds; {@code problem} says how to report a violation. */
  static CheckpointHeader check(String file, Problem problem, CheckpointHeader h) {
    String what = problem == Problem.CORRUPT ? "field " : "";
    if (Integer.bitCount(h.pageBytes) != 1 || h.pageBytes < PAGE_BYTES_MIN || h.pageBytes > PAGE_BYTES_MAX) {
      throw new StorageException(problem, file, what + "page bytes " + h.pageBytes
          + " is not a power of two from " + PAGE_BYTES_MIN + " to " + PAGE_BYTES_MAX);
    }
    if (h.chunkBytes < CHUNK_BYTES_MIN || h.chunkBytes > CHUNK_BYTES_MAX || h.chunkBytes % h.pageBytes != 0) {
      throw new StorageException(problem, file, what + "chunk bytes " + h.chunkBytes
          + " is not a whole number of pages from " + CHUNK_BYTES_MIN + " to " + CHUNK_BYTES_MAX);
    }
    if (h.memoryBytes <= 0 || h.memoryBytes > MEMORY_BYTES_MAX || h.memoryBytes % h.pageBytes != 0) {
      throw new StorageException(problem, file, what + "memory bytes " + h.memoryBytes
          + " is not a whole number of " + h.pageBytes + "-byte pages up to 16 TiB");
    }
    return h;
  }

  byte[] encode() {
    byte[] name = vmName.getBytes(StandardCharsets.US_ASCII);
    return ByteBuffer.allocate(1 + name.length + 24).put((byte) name.length).put(name)
        .putLong(memoryBytes).putInt(pageBytes).putInt(chunkBytes).putLong(createdMillis).array();
  }

  static CheckpointHeader decode(String file, byte[] payload) {
    Fields in = new Fields(file, payload);
    CheckpointHeader h = new CheckpointHeader(in.name("VM name"), in.i64("memory bytes"), in.i32("page bytes"),
        in.i32("chunk bytes"), in.i64("created"));
    in.end();
    return check(file, Problem.CORRUPT, h);
  }

  /** Where the trailer starts: after the envelope and every chunk. */
  long trailerOffset() {
    return Envelope.HEADER_BYTES + encode().length + (long) chunkCount() * CHUNK_HEADER_BYTES + memoryBytes;
  }
}
