package dev.ferry.storage;

import dev.ferry.storage.StorageException.Problem;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A disk image file ({@code disk-N.img}): a 4 KiB header block (the {@link Envelope} with the
 * capacity and disk index, zero-padded) followed by exactly {@code capacityBytes} of raw disk,
 * so disk offset {@code x} is file offset {@code 4096 + x} and stays block-aligned. The size is
 * fixed when the image is created (sparse: the filesystem allocates blocks as they are written);
 * every access is bounds-checked against it. The disk bytes themselves carry no checksum, as on
 * any block device: the guest's filesystem owns their integrity.
 *
 * <p>Header payload (format 1): capacity in bytes (8), disk index (4).
 */
final class DiskImage implements AutoCloseable {
  /** Where the disk's bytes start in the file. */
  static final int DATA_OFFSET = 4096;
  /** Capacities are whole sectors. */
  static final int SECTOR_BYTES = 512;
  static final long CAPACITY_BYTES_MAX = 64L << 40;

  private final FileChannel channel;
  private final String file;
  private final long capacityBytes;

  private DiskImage(FileChannel channel, String file, long capacityBytes) {
    this.channel = channel;
    this.file = file;
    this.capacityBytes = capacityBytes;
  }

  static void requireCapacity(String file, long capacityBytes) {
    if (capacityBytes < SECTOR_BYTES || capacityBytes > CAPACITY_BYTES_MAX || capacityBytes % SECTOR_BYTES != 0) {
      throw new StorageException(Problem.OUT_OF_BOUNDS, file, "capacity " + capacityBytes
          + " bytes is not a whole number of " + SECTOR_BYTES + "-byte sectors between "
          + SECTOR_BYTES + " bytes and 64 TiB");
    }
  }

  /** Writes a new image's header and sets its size, into a fresh staged file. */
  static void format(FileChannel channel, String file, int disk, long capacityBytes) throws IOException {
    requireCapacity(file, capacityBytes);
    ByteBuffer payload = ByteBuffer.allocate(12).putLong(capacityBytes).putInt(disk);
    ByteBuffer block = ByteBuffer.allocate(DATA_OFFSET);
    block.put(Envelope.seal(FileKind.DISK, file, payload.array())).clear();
    writeFully(channel, block, 0);
    // One zero byte at the end sets the size without allocating the blocks in between.
    writeFully(channel, ByteBuffer.allocate(1), DATA_OFFSET + capacityBytes - 1);
  }

  /** Opens an image, checking its header, its disk index and that its size matches. */
  static DiskImage open(Path path, String file, int disk, boolean writable) {
    FileChannel channel = null;
    try {
      channel = writable
          ? FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)
          : FileChannel.open(path, StandardOpenOption.READ);
      Fields in = new Fields(file, Envelope.readPrefix(channel, file, FileKind.DISK));
      long capacityBytes = in.i64("capacity");
      int index = in.i32("disk index");
      in.end();
      if (capacityBytes < SECTOR_BYTES || capacityBytes > CAPACITY_BYTES_MAX || capacityBytes % SECTOR_BYTES != 0) {
        throw in.corrupt("capacity", "is impossible (" + capacityBytes + " bytes)");
      }
      if (index != disk) {
        throw in.corrupt("disk index", "is " + index + " in the file of disk " + disk);
      }
      long size = channel.size();
      long expected = DATA_OFFSET + capacityBytes;
      if (size != expected) {
        throw new StorageException(size < expected ? Problem.TRUNCATED : Problem.OVERSIZED, file,
            "is " + size + " bytes; a " + capacityBytes + "-byte disk's image is " + expected);
      }
      DiskImage image = new DiskImage(channel, file, capacityBytes);
      channel = null;
      return image;
    } catch (NoSuchFileException e) {
      throw new StorageException(Problem.NOT_FOUND, file, "does not exist", e);
    } catch (IOException e) {
      throw new StorageException(Problem.IO, file, "cannot be opened: " + e, e);
    } finally {
      closeQuietly(channel);
    }
  }

  long capacityBytes() {
    return capacityBytes;
  }

  /** Writes all of {@code data} at disk offset {@code offset}. */
  void write(long offset, ByteBuffer data) {
    requireRange(offset, data.remaining());
    try {
      writeFully(channel, data, DATA_OFFSET + offset);
    } catch (IOException e) {
      throw new StorageException(Problem.IO, file, "write of " + data.remaining() + " bytes at offset "
          + offset + " failed: " + e, e);
    }
  }

  /** Fills {@code into} from disk offset {@code offset}. */
  void read(long offset, ByteBuffer into) {
    requireRange(offset, into.remaining());
    try {
      Envelope.readFully(channel, into, DATA_OFFSET + offset, file);
    } catch (IOException e) {
      throw new StorageException(Problem.IO, file, "read at offset " + offset + " failed: " + e, e);
    }
  }

  void force() {
    try {
      channel.force(false);
    } catch (IOException e) {
      throw new StorageException(Problem.IO, file, "cannot be forced to disk: " + e, e);
    }
  }

  @Override
  public void close() {
    closeQuietly(channel);
  }

  private void requireRange(long offset, int length) {
    if (offset < 0 || offset > capacityBytes - length) {
      throw new StorageException(Problem.OUT_OF_BOUNDS, file, length + " bytes at offset " + offset
          + " do not fit a " + capacityBytes + "-byte disk");
    }
  }

  private static void writeFully(FileChannel channel, ByteBuffer data, long position) throws IOException {
    long at = position;
    while (data.hasRemaining()) {
      at += channel.write(data, at);
    }
  }

  private static void closeQuietly(FileChannel channel) {
    if (channel != null) {
      try {
        channel.close();
      } catch (IOException e) {
        // Nothing was written through this channel that close would flush.
      }
    }
  }
}
