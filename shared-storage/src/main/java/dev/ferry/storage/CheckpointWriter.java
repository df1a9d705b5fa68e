package dev.ferry.storage;

import dev.ferry.storage.StorageException.Problem;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.zip.CRC32C;

/**
 * Writes a memory checkpoint as a stream (layout in {@link CheckpointHeader}): memory goes
 * through one fixed direct buffer of one chunk (1 MiB), so a checkpoint of any size costs the
 * same small memory; each full chunk is checksummed and written out. The file is a temporary one
 * until {@link #finish}, which writes the trailer, forces it and renames it into place only if the
 * writer's lease still holds: a process killed or fenced mid-checkpoint leaves the previous
 * checkpoint of that name intact. {@link #close()} without {@code finish} abandons the new one.
 *
 * <p>Obtained from {@link LeasedWriter#beginCheckpoint}. Single-threaded.
 */
public final class CheckpointWriter implements AutoCloseable {
  /** Puts a finished checkpoint in place (the leased writer checks its lease around this). */
  @FunctionalInterface
  interface Publisher {
    void publish(AtomicFiles.Staged staged);
  }

  private final AtomicFiles.Staged staged;
  private final FileChannel channel;
  private final String file;
  private final CheckpointHeader header;
  private final Publisher publisher;
  private final ByteBuffer chunk;
  private final ByteBuffer chunkHeader = ByteBuffer.allocateDirect(CheckpointHeader.CHUNK_HEADER_BYTES);
  private final ByteBuffer[] gather;
  private final CRC32C chunkCrc = new CRC32C();
  private final CRC32C fileCrc = new CRC32C();
  private long position;
  private long memoryBytesWritten;
  private int chunkIndex;
  private boolean finished;

  CheckpointWriter(AtomicFiles.Staged staged, String file, CheckpointHeader header, Publisher publisher) {
    this.staged = staged;
    this.channel = staged.channel();
    this.file = file;
    this.header = CheckpointHeader.check(file, Problem.OUT_OF_BOUNDS, header);
    this.publisher = publisher;
    this.chunk = ByteBuffer.allocateDirect(header.chunkBytes());
    this.gather = new ByteBuffer[] {chunkHeader, chunk};
    write(Envelope.seal(FileKind.CHECKPOINT, file, header.encode()));
  }

  public CheckpointHeader header() {
    return header;
  }

  public long memoryBytesWritten() {
    return memoryBytesWritten;
  }

  /**
   * Appends the memory in {@code pages} (all its remaining bytes, consumed) after what was
   * written so far. Any split is fine; the total must come to {@code memoryBytes}.
   */
  public void writeMemory(ByteBuffer pages) {
    requireOpen();
    if (pages.remaining() > header.memoryBytes() - memoryBytesWritten) {
      throw new StorageException(Problem.OUT_OF_BOUNDS, file, pages.remaining() + " more bytes of memory after "
          + memoryBytesWritten + " overflow the checkpoint's " + header.memoryBytes());
    }
    while (pages.hasRemaining()) {
      int n = Math.min(chunk.remaining(), pages.remaining());
      chunk.put(pages.slice(pages.position(), n));
      pages.position(pages.position() + n);
      memoryBytesWritten += n;
      if (!chunk.hasRemaining()) {
        writeChunk();
      }
    }
  }

  /**
   * Ends the checkpoint with the vCPU and device state (opaque, up to 16 MiB), forces it and
   * puts it in place of any previous checkpoint of the same name. Fails with
   * {@link Problem#FENCED} (and leaves the previous one) if the writer lost its lease.
   */
  public void finish(byte[] machineState) {
    requireOpen();
    if (memoryBytesWritten != header.memoryBytes()) {
      throw new StorageException(Problem.OUT_OF_BOUNDS, file, "only " + memoryBytesWritten + " of "
          + header.memoryBytes() + " bytes of memory were written");
    }
    if (machineState.length > CheckpointHeader.MACHINE_STATE_BYTES_MAX) {
      throw new StorageException(Problem.OVERSIZED, file, "machine state of " + machineState.length
          + " bytes is over the limit of " + CheckpointHeader.MACHINE_STATE_BYTES_MAX);
    }
    if (chunk.position() > 0) {
      writeChunk();
    }
    ByteBuffer trailer = ByteBuffer.allocate(CheckpointHeader.TRAILER_FIXED_BYTES + machineState.length);
    trailer.putInt(CheckpointHeader.TRAILER_MAGIC).putInt(chunkIndex).putInt(machineState.length)
        .put(machineState).flip();
    write(trailer);
    write(ByteBuffer.allocate(CheckpointHeader.FILE_CRC_BYTES).putInt(0, (int) fileCrc.getValue()));
    staged.force();
    finished = true;
    try {
      publisher.publish(staged);
    } finally {
      staged.close();
    }
  }

  /** Abandons the checkpoint unless it was finished; the previous one stays. */
  @Override
  public void close() {
    finished = true;
    staged.close();
  }

  private void writeChunk() {
    chunk.flip();
    chunkCrc.reset();
    chunkCrc.update(chunk.duplicate());
    chunkCrc.update(chunkIndex >>> 24);
    chunkCrc.update(chunkIndex >>> 16);
    chunkCrc.update(chunkIndex >>> 8);
    chunkCrc.update(chunkIndex);
    chunkHeader.clear();
    chunkHeader.putInt(chunkIndex).putInt((int) chunkCrc.getValue()).flip();
    fileCrc.update(chunkHeader.duplicate());
    fileCrc.update(chunk.duplicate());
    try {
      long bytes = chunkHeader.remaining() + (long) chunk.remaining();
      long end = position + bytes;
      channel.position(position);
      while (chunk.hasRemaining()) {
        channel.write(gather);
      }
      position = end;
    } catch (IOException e) {
      throw new StorageException(Problem.IO, file, "cannot write chunk " + chunkIndex + ": " + e, e);
    }
    chunkIndex++;
    chunk.clear();
  }

  private void write(ByteBuffer bytes) {
    fileCrc.update(bytes.duplicate());
    try {
      while (bytes.hasRemaining()) {
        position += channel.write(bytes, position);
      }
    } catch (IOException e) {
      throw new StorageException(Problem.IO, file, "cannot be written: " + e, e);
    }
  }

  private void requireOpen() {
    if (finished) {
      throw new IllegalStateException(file + ": the checkpoint was already finished or abandoned");
    }
  }
}
