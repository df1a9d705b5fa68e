package dev.ferry.storage;

import dev.ferry.storage.StorageException.Problem;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;

/**
 * The only way to change a VM's files: every write first checks, under the lease's lock, that
 * ({@link #host()}, {@link #epoch()}) still holds the VM's {@link Lease}, and writes while still
 * holding the lock. So once a new owner has taken the lease (with a newer epoch, at cutover), this
 * writer's next write fails with {@link Problem#FENCED} and leaves the file as it was; no write of
 * the old owner can land after the new owner's acquire.
 *
 * <p>The check costs a lock and a read of the small lease file per write, so write disk data in
 * large blocks. Thread-safe: the lease's lock serializes this writer's operations.
 */
public final class LeasedWriter implements AutoCloseable {
  private final VmDirectory vm;
  private final String host;
  private final long epoch;
  private final Clock clock;
  private final DiskImage[] disks = new DiskImage[VmDirectory.DISKS_MAX];
  private boolean closed;

  LeasedWriter(VmDirectory vm, String host, long epoch, Clock clock) {
    Lease.requireOwner(host, epoch);
    this.vm = vm;
    this.host = host;
    this.epoch = epoch;
    this.clock = clock;
    vm.lease().check(host, epoch);
  }

  public String host() {
    return host;
  }

  public long epoch() {
    return epoch;
  }

  /** Replaces {@code vm.conf} with {@code config} (at most 1 MiB), crash-safely. */
  public void writeConfig(byte[] config) {
    Path path = vm.configPath();
    String file = vm.display(path);
    ByteBuffer sealed = Envelope.seal(FileKind.CONFIG, file, config);
    held(() -> {
      AtomicFiles.write(path, file, sealed);
      return null;
    });
  }

  /**
   * Creates disk {@code disk} with a fixed capacity (a whole number of 512-byte sectors), all
   * zeros; {@link Problem#ALREADY_EXISTS} if it exists.
   */
  public void createDisk(int disk, long capacityBytes) {
    Path path = vm.diskPath(disk);
    String file = vm.display(path);
    DiskImage.requireCapacity(file, capacityBytes);
    held(() -> {
      if (Files.exists(path)) {
        throw new StorageException(Problem.ALREADY_EXISTS, file, "exists already; a disk's size is fixed");
      }
      try (AtomicFiles.Staged staged = AtomicFiles.stage(path, file)) {
        DiskImage.format(staged.channel(), file, disk, capacityBytes);
        staged.commit();
      }
      return null;
    });
  }

  /** Writes {@code data} (all its remaining bytes) to disk 0 at byte {@code offset}. */
  public void writeDiskBlock(long offset, ByteBuffer data) {
    writeDiskBlock(0, offset, data);
  }

  /** Writes {@code data} (all its remaining bytes) to disk {@code disk} at byte {@code offset}. */
  public void writeDiskBlock(int disk, long offset, ByteBuffer data) {
    vm.diskPath(disk);
    held(() -> {
      disk(disk).write(offset, data);
      return null;
    });
  }

  /**
   * Writes {@code data} to disk {@code disk} at {@code offset} and forces it to stable storage, all
   * under the lease's lock: once this returns, the bytes are durable and no new owner could have
   * taken the lease between the write and the force (what an acknowledged write needs).
   */
  public void writeDiskBlockDurably(int disk, long offset, ByteBuffer data) {
    vm.diskPath(disk);
    held(() -> {
      DiskImage image = disk(disk);
      image.write(offset, data);
      image.force();
      return null;
    });
  }

  /** Forces the disk writes made so far to stable storage (config and checkpoints force themselves). */
  public void force() {
    vm.lease().locked(() -> {
      requireOpen();
      for (DiskImage image : disks) {
        if (image != null) {
          image.force();
        }
      }
      return null;
    });
  }

  /**
   * Starts writing checkpoint {@code checkpointName} of {@code memoryBytes} of memory in
   * {@code pageBytes} pages; it replaces any previous one of that name when
   * {@link CheckpointWriter#finish finished}, and only if the lease still holds then.
   */
  public CheckpointWriter beginCheckpoint(String checkpointName, long memoryBytes, int pageBytes) {
    return beginCheckpoint(checkpointName, memoryBytes, pageBytes,
        Math.max(CheckpointHeader.CHUNK_BYTES_DEFAULT, pageBytes));
  }

  /** As above with a chosen chunk size (tests use small chunks to get many of them). */
  CheckpointWriter beginCheckpoint(String checkpointName, long memoryBytes, int pageBytes, int chunkBytes) {
    Path path = vm.checkpointPath(checkpointName);
    String file = vm.display(path);
    CheckpointHeader header = CheckpointHeader.check(file, Problem.OUT_OF_BOUNDS,
        new CheckpointHeader(vm.name(), memoryBytes, pageBytes, chunkBytes, clock.millis()));
    AtomicFiles.Staged staged = held(() -> {
      if (!Files.isDirectory(path.getParent())) {
        AtomicFiles.createDirectory(path.getParent(), vm.display(path.getParent()));
      }
      return AtomicFiles.stage(path, file);
    });
    try {
      return new CheckpointWriter(staged, file, header, ready -> held(() -> {
        ready.commit();
        return null;
      }));
    } catch (RuntimeException e) {
      staged.close();
      throw e;
    }
  }

  /** Closes the disk images; writes already made stay (call {@link #force()} first to make them durable). */
  @Override
  public void close() {
    vm.lease().locked(() -> {
      closed = true;
      for (int i = 0; i < disks.length; i++) {
        if (disks[i] != null) {
          disks[i].close();
          disks[i] = null;
        }
      }
      return null;
    });
  }

  private <T> T held(LeaseLock.Body<T> body) {
    return vm.lease().whileHeld(host, epoch, () -> {
      requireOpen();
      return body.run();
    });
  }

  private DiskImage disk(int disk) {
    if (disks[disk] == null) {
      disks[disk] = vm.openDisk(disk, true);
    }
    return disks[disk];
  }

  private void requireOpen() {
    if (closed) {
      throw new IllegalStateException(vm.display(vm.path()) + ": this writer is closed");
    }
  }
}
