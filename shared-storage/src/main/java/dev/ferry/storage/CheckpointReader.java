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
 * Reads a memory checkpoint back as a stream (layout in {@link CheckpointHeader}). Opening checks
 * everything that can be checked without reading the memory: the envelope (magic, format, header
 * checksum), the header's bounds, that it is this VM's, the trailer's fixed fields, and that the
 * file is exactly as long as they say; so a truncated, padded or newer-format file is refused
 * before any page is delivered. {@link #read} then streams the chunks through one direct buffer of
 * one chunk (at most 4 MiB, whatever the file claims), verifying each chunk's checksum and index
 * before handing it to the {@link PageSink}, and the trailer and whole-file checksum at the end.
 *
 * <p>The open file is unaffected by a newer checkpoint being renamed over the same name.
 */
public final class CheckpointReader implements AutoCloseable {
  private final FileChannel channel;
  private final String file;
  private final CheckpointHeader header;
  private final long dataOffset;
  private final int machineStateBytes;

  private CheckpointReader(FileChannel channel, String file, CheckpointHeader header, long dataOffset,
      int machineStateBytes) {
    this.channel = channel;
    this.file = file;
    this.header = header;
    this.dataOffset = dataOffset;
    this.machineStateBytes = machineStateBytes;
  }

  /** Opens and checks the structure of {@code path}, which must be {@code vmName}'s checkpoint. */
  static CheckpointReader open(Path path, String file, String vmName) {
    FileChannel channel = null;
    try {
      channel = FileChannel.open(path, StandardOpenOption.READ);
      CheckpointReader reader = check(channel, file, vmName);
      channel = null;
      return reader;
    } catch (NoSuchFileException e) {
      throw new StorageException(Problem.NOT_FOUND, file, "does not exist", e);
    } catch (IOException e) {
      throw new StorageException(Problem.IO, file, "cannot be read: " + e, e);
    } finally {
      if (channel != null) {
        try {
          channel.close();
        } catch (IOException e) {
          // Read-only.
        }
      }
    }
  }

  private static CheckpointReader check(FileChannel channel, String file, String vmName) throws IOException {
    byte[] payload = Envelope.readPrefix(channel, file, FileKind.CHECKPOINT);
    CheckpointHeader header = CheckpointHeader.decode(file, payload);
    if (!header.vmName().equals(vmName)) {
      throw new StorageException(Problem.CORRUPT, file, "holds VM " + header.vmName() + "'s memory, not " + vmName + "'s");
    }
    long size = channel.size();
    long trailerOffset = header.trailerOffset();
    long minimum = trailerOffset + CheckpointHeader.TRAILER_FIXED_BYTES + CheckpointHeader.FILE_CRC_BYTES;
    if (size < minimum) {
      throw new StorageException(Problem.TRUNCATED, file, "is " + size + " bytes; " + header.memoryBytes()
          + " bytes of memory need at least " + minimum);
    }
    ByteBuffer fixed = ByteBuffer.allocate(CheckpointHeader.TRAILER_FIXED_BYTES);
    Envelope.readFully(channel, fixed, trailerOffset, file);
    if (fixed.getInt(0) != CheckpointHeader.TRAILER_MAGIC) {
      throw new StorageException(Problem.CORRUPT, file, "no trailer at byte " + trailerOffset);
    }
    if (fixed.getInt(4) != header.chunkCount()) {
      throw new StorageException(Problem.CORRUPT, file, "trailer counts " + Integer.toUnsignedString(fixed.getInt(4))
          + " chunks; the header implies " + header.chunkCount());
    }
    int stateBytes = fixed.getInt(8);
    if (stateBytes < 0 || stateBytes > CheckpointHeader.MACHINE_STATE_BYTES_MAX) {
      throw new StorageException(Problem.OVERSIZED, file, "trailer says the machine state is "
          + Integer.toUnsignedString(stateBytes) + " bytes; the limit is " + CheckpointHeader.MACHINE_STATE_BYTES_MAX);
    }
    long expected = minimum + stateBytes;
    if (size != expected) {
      throw new StorageException(size < expected ? Problem.TRUNCATED : Problem.OVERSIZED, file,
          "is " + size + " bytes; its header and trailer say " + expected);
    }
    return new CheckpointReader(channel, file, header, Envelope.HEADER_BYTES + payload.length, stateBytes);
  }

  public CheckpointHeader header() {
    return header;
  }

  /**
   * Streams the memory into {@code sink}, chunk by chunk in memory order, and returns the vCPU and
   * device state from the trailer once every checksum has matched. On a
   * {@link StorageException} the checkpoint did not load; see {@link PageSink} for what was
   * delivered before.
   */
  public byte[] read(PageSink sink) {
    try {
      return stream(sink);
    } catch (IOException e) {
      throw new StorageException(Problem.IO, file, "cannot be read: " + e, e);
    }
  }

  /** Reads and checks the whole file without delivering memory; returns the machine state. */
  public byte[] verify() {
    return read((offset, pages) -> { });
  }

  private byte[] stream(PageSink sink) throws IOException {
    CRC32C fileCrc = new CRC32C();
    ByteBuffer prefix = ByteBuffer.allocate((int) dataOffset);
    Envelope.readFully(channel, prefix, 0, file);
    fileCrc.update(prefix.flip());
    ByteBuffer chunkHeader = ByteBuffer.allocateDirect(CheckpointHeader.CHUNK_HEADER_BYTES);
    ByteBuffer chunk = ByteBuffer.allocateDirect(header.chunkBytes());
    CRC32C chunkCrc = new CRC32C();
    long position = dataOffset;
    long memoryOffset = 0;
    for (int index = 0; index < header.chunkCount(); index++) {
      int length = (int) Math.min(header.chunkBytes(), header.memoryBytes() - memoryOffset);
      chunkHeader.clear();
      Envelope.readFully(channel, chunkHeader, position, file);
      chunk.clear().limit(length);
      Envelope.readFully(channel, chunk, position + CheckpointHeader.CHUNK_HEADER_BYTES, file);
      chunkHeader.flip();
      chunk.flip();
      verifyChunk(index, chunkHeader, chunk, chunkCrc);
      fileCrc.update(chunkHeader);
      fileCrc.update(chunk.duplicate());
      sink.accept(memoryOffset, chunk.asReadOnlyBuffer());
      position += CheckpointHeader.CHUNK_HEADER_BYTES + length;
      memoryOffset += length;
    }
    return readTrailer(position, fileCrc);
  }

  private void verifyChunk(int index, ByteBuffer chunkHeader, ByteBuffer chunk, CRC32C crc) {
    int storedIndex = chunkHeader.getInt(0);
    if (storedIndex != index) {
      throw new StorageException(Problem.CORRUPT, file, "chunk " + Integer.toUnsignedString(storedIndex)
          + " found where chunk " + index + " belongs");
    }
    crc.reset();
    crc.update(chunk.duplicate());
    crc.update(index >>> 24);
    crc.update(index >>> 16);
    crc.update(index >>> 8);
    crc.update(index);
    if ((int) crc.getValue() != chunkHeader.getInt(4)) {
      throw new StorageException(Problem.CORRUPT, file, String.format(
          "chunk %d (memory bytes %d..%d) checksum mismatch", index, (long) index * header.chunkBytes(),
          (long) index * header.chunkBytes() + chunk.remaining()));
    }
  }

  private byte[] readTrailer(long position, CRC32C fileCrc) throws IOException {
    ByteBuffer trailer = ByteBuffer.allocate(CheckpointHeader.TRAILER_FIXED_BYTES + machineStateBytes
        + CheckpointHeader.FILE_CRC_BYTES);
    Envelope.readFully(channel, trailer, position, file);
    int crcAt = trailer.capacity() - CheckpointHeader.FILE_CRC_BYTES;
    fileCrc.update(trailer.array(), 0, crcAt);
    if ((int) fileCrc.getValue() != trailer.getInt(crcAt)) {
      throw new StorageException(Problem.CORRUPT, file, "whole-file checksum mismatch");
    }
    byte[] state = new byte[machineStateBytes];
    trailer.get(CheckpointHeader.TRAILER_FIXED_BYTES, state);
    return state;
  }

  @Override
  public void close() {
    try {
      channel.close();
    } catch (IOException e) {
      // Read-only.
    }
  }
}
