package dev.ferry.storage;

import dev.ferry.storage.StorageException.Problem;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;

/**
 * One VM's directory on the datastore, {@code vms/NAME/}:
 *
 * <pre>
 *   vm.conf                the VM's configuration (opaque bytes here, at most 1 MiB)
 *   disk-0.img ...         disk images, size fixed at creation ({@link DiskImage})
 *   checkpoint/NAME.ckpt   memory checkpoints ({@link CheckpointHeader})
 *   lease                  who may write all of the above ({@link Lease})
 *   lease.lock             the lock around the lease's read-check-write; content meaningless
 * </pre>
 *
 * Reading needs no lease and goes through here; every write goes through a {@link LeasedWriter},
 * which checks the lease first. Every file starts with a versioned, checksummed header, and a
 * file that fails its checks raises a {@link StorageException} naming it; nothing of it is
 * returned.
 */
public final class VmDirectory {
  public static final String CONFIG_FILE = "vm.conf";
  public static final String LEASE_FILE = "lease";
  public static final String LEASE_LOCK_FILE = "lease.lock";
  public static final String CHECKPOINT_DIR = "checkpoint";
  public static final String CHECKPOINT_SUFFIX = ".ckpt";
  /** Disks per VM: {@code disk-0.img} to {@code disk-15.img}. */
  public static final int DISKS_MAX = 16;
  /** The bound on checkpoints listed per VM. */
  static final int CHECKPOINTS_MAX = 1_000;

  private final Datastore datastore;
  private final String name;
  private final Path path;
  private final Lease lease;
  private final Clock clock;

  VmDirectory(Datastore datastore, String name, Path path, Clock clock) {
    this.datastore = datastore;
    this.name = name;
    this.path = path;
    this.clock = clock;
    Path lockFile = path.resolve(LEASE_LOCK_FILE);
    this.lease = new Lease(path.resolve(LEASE_FILE), display(path.resolve(LEASE_FILE)),
        new LeaseLock(lockFile, display(lockFile)), clock);
  }

  public String name() {
    return name;
  }

  public Path path() {
    return path;
  }

  public Lease lease() {
    return lease;
  }

  /**
   * A writer for ({@code host}, {@code epoch}), which must hold the lease now (else
   * {@link Problem#FENCED}); every write through it checks again.
   */
  public LeasedWriter openWriter(String host, long epoch) {
    return new LeasedWriter(this, host, epoch, clock);
  }

  public boolean hasConfig() {
    return Files.exists(configPath());
  }

  /** The config as last written, checked; removes temporary files left by dead writers. */
  public byte[] readConfig() {
    AtomicFiles.removeStaleTemps(path, AtomicFiles.STALE_TEMP_AGE);
    return Envelope.readFile(configPath(), display(configPath()), FileKind.CONFIG);
  }

  /** Disk {@code disk}'s capacity in bytes. */
  public long diskCapacityBytes(int disk) {
    try (DiskImage image = openDisk(disk, false)) {
      return image.capacityBytes();
    }
  }

  /** Fills {@code into} from disk {@code disk} at byte {@code offset}. */
  public void readDisk(int disk, long offset, ByteBuffer into) {
    try (DiskImage image = openDisk(disk, false)) {
      image.read(offset, into);
    }
  }

  /** Opens checkpoint {@code checkpointName}, checking its structure; read it with {@link CheckpointReader#read}. */
  public CheckpointReader openCheckpoint(String checkpointName) {
    Path file = checkpointPath(checkpointName);
    AtomicFiles.removeStaleTemps(file.getParent(), AtomicFiles.STALE_TEMP_AGE);
    return CheckpointReader.open(file, display(file), name);
  }

  /** The names of this VM's checkpoints, sorted (at most {@value #CHECKPOINTS_MAX}). */
  public List<String> checkpoints() {
    List<String> names = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(path.resolve(CHECKPOINT_DIR), "*" + CHECKPOINT_SUFFIX)) {
      for (Path entry : entries) {
        String file = entry.getFileName().toString();
        String checkpoint = file.substring(0, file.length() - CHECKPOINT_SUFFIX.length());
        if (Names.isValid(checkpoint)) {
          names.add(checkpoint);
        }
        if (names.size() == CHECKPOINTS_MAX) {
          break;
        }
      }
    } catch (NoSuchFileException e) {
      return List.of();
    } catch (IOException e) {
      throw new StorageException(Problem.IO, display(path.resolve(CHECKPOINT_DIR)), "cannot be listed: " + e, e);
    }
    names.sort(null);
    return names;
  }

  /** Bytes used by every file in the directory and its checkpoint directory (logical sizes). */
  public long sizeBytes() {
    return sizeOf(path) + sizeOf(path.resolve(CHECKPOINT_DIR));
  }

  public Path configPath() {
    return path.resolve(CONFIG_FILE);
  }

  public Path diskPath(int disk) {
    if (disk < 0 || disk >= DISKS_MAX) {
      throw new StorageException(Problem.OUT_OF_BOUNDS, display(path), "disk " + disk
          + " is not one of 0 to " + (DISKS_MAX - 1));
    }
    return path.resolve("disk-" + disk + ".img");
  }

  public Path checkpointPath(String checkpointName) {
    return path.resolve(CHECKPOINT_DIR).resolve(Names.require("checkpoint name", checkpointName) + CHECKPOINT_SUFFIX);
  }

  DiskImage openDisk(int disk, boolean writable) {
    Path file = diskPath(disk);
    return DiskImage.open(file, display(file), disk, writable);
  }

  /** {@code vms/web-1/vm.conf}: how files are named in messages. */
  String display(Path file) {
    return datastore.display(file);
  }

  private long sizeOf(Path dir) {
    long bytes = 0;
    int seen = 0;
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      for (Path entry : entries) {
        if (++seen > AtomicFiles.DIRECTORY_ENTRIES_MAX) {
          break;
        }
        try {
          if (Files.isRegularFile(entry)) {
            bytes += Files.size(entry);
          }
        } catch (NoSuchFileException e) {
          // Renamed away meanwhile (a temporary file committed).
        }
      }
    } catch (NoSuchFileException e) {
      return 0;
    } catch (IOException e) {
      throw new StorageException(Problem.IO, display(dir), "cannot be listed: " + e, e);
    }
    return bytes;
  }
}
