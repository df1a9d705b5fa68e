package dev.ferry.storage;

import dev.ferry.storage.StorageException.Problem;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.LongSupplier;

/**
 * Crash-safe file replacement: the new content goes to a temporary file in the target's
 * directory, is forced to disk, renamed over the target in one step, and the directory is forced
 * so the rename itself survives a power cut. A process killed at any point leaves the old file or
 * the new one, never a mix; what it can leave is a temporary file, named
 * {@code .TARGET.RANDOM.tmp}, which readers never open and {@link #removeStaleTemps} deletes once
 * nothing has written to it for a while.
 *
 * <p>Relies on POSIX rename and on forcing a directory through a read-only channel, which Linux
 * allows; both hold on local filesystems and NFS.
 */
public final class AtomicFiles {
  /** How long a temporary file must go unmodified before it counts as left by a dead writer. */
  public static final Duration STALE_TEMP_AGE = Duration.ofMinutes(10);
  /** The bound on entries examined in one directory when looking for stale temporary files. */
  static final int DIRECTORY_ENTRIES_MAX = 100_000;
  private static final String TEMP_SUFFIX = ".tmp";
  private static final int TEMP_NAME_ATTEMPTS_MAX = 4;

  private AtomicFiles() {}

  /** Replaces {@code target} with {@code bytes}, crash-safely. */
  public static void write(Path target, byte[] bytes) {
    write(target, target.toString(), ByteBuffer.wrap(bytes));
  }

  /** As {@link #write(Path, byte[])}; {@code file} names the target in errors. */
  static void write(Path target, String file, ByteBuffer bytes) {
    try (Staged staged = stage(target, file)) {
      FileChannel channel = staged.channel();
      while (bytes.hasRemaining()) {
        channel.write(bytes);
      }
      staged.commit();
    } catch (IOException e) {
      throw new StorageException(Problem.IO, file, "cannot be written: " + e, e);
    }
  }

  /**
   * A temporary file next to {@code target} to write at leisure; {@link Staged#commit()} puts it
   * in place, {@link Staged#close()} without a commit deletes it.
   */
  public static Staged stage(Path target) {
    return stage(target, target.toString());
  }

  static Staged stage(Path target, String file) {
    return stage(target, file, () -> ThreadLocalRandom.current().nextLong());
  }

  /** As {@link #stage(Path, String)}, with the random part of the temporary file's name from {@code names}. */
  static Staged stage(Path target, String file, LongSupplier names) {
    Path dir = target.toAbsolutePath().getParent();
    for (int attempt = 1; ; attempt++) {
      Path temp = dir.resolve("." + target.getFileName() + "." + Long.toHexString(names.getAsLong()) + TEMP_SUFFIX);
      try {
        FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        return new Staged(target, temp, file, channel);
      } catch (FileAlreadyExistsException e) {
        if (attempt == TEMP_NAME_ATTEMPTS_MAX) {
          throw new StorageException(Problem.IO, file, "cannot create a temporary file next to it", e);
        }
      } catch (IOException e) {
        throw new StorageException(Problem.IO, file, "cannot create a temporary file next to it: " + e, e);
      }
    }
  }

  /** A temporary file on its way to becoming {@code target}. Single-threaded. */
  public static final class Staged implements AutoCloseable {
    private final Path target;
    private final Path temp;
    private final String file;
    private final FileChannel channel;
    private boolean done;

    private Staged(Path target, Path temp, String file, FileChannel channel) {
      this.target = target;
      this.temp = temp;
      this.file = file;
      this.channel = channel;
    }

    /** Where to write the new content (a fresh, empty file). */
    public FileChannel channel() {
      return channel;
    }

    /** Forces what was written so far to disk; {@link #commit()} is then quick. */
    public void force() {
      try {
        channel.force(true);
      } catch (IOException e) {
        throw new StorageException(Problem.IO, file, "cannot force its new content to disk: " + e, e);
      }
    }

    /** Forces the content, renames it over the target and forces the directory. */
    public void commit() {
      if (done) {
        throw new IllegalStateException(file + ": already committed or abandoned");
      }
      done = true;
      try {
        channel.force(true);
        channel.close();
        Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
      } catch (IOException e) {
        deleteQuietly(temp);
        throw new StorageException(Problem.IO, file, "cannot be replaced: " + e, e);
      }
      fsyncDirectory(target.toAbsolutePath().getParent(), file);
    }

    /** Abandons the new content unless it was committed. */
    @Override
    public void close() {
      if (!done) {
        done = true;
        try {
          channel.close();
        } catch (IOException e) {
          // The temporary file goes anyway; nothing was promised about its content.
        }
        deleteQuietly(temp);
      }
    }
  }

  /** Forces a directory's entries (a rename, a new file) to disk. */
  public static void fsyncDirectory(Path dir) {
    fsyncDirectory(dir, dir.toString());
  }

  static void fsyncDirectory(Path dir, String file) {
    try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
      channel.force(true);
    } catch (IOException e) {
      throw new StorageException(Problem.IO, file, "cannot force its directory to disk: " + e, e);
    }
  }

  /** Creates a directory (its parent must exist) and makes its entry durable. */
  static void createDirectory(Path dir, String file) {
    try {
      Files.createDirectory(dir);
    } catch (FileAlreadyExistsException e) {
      throw new StorageException(Problem.ALREADY_EXISTS, file, "exists already", e);
    } catch (NoSuchFileException e) {
      throw new StorageException(Problem.NOT_FOUND, file, "cannot be created: its parent does not exist", e);
    } catch (IOException e) {
      throw new StorageException(Problem.IO, file, "cannot be created: " + e, e);
    }
    fsyncDirectory(dir.toAbsolutePath().getParent(), file);
  }

  /** Whether a directory entry is one of the temporary files this class creates. */
  public static boolean isTemp(Path entry) {
    String name = entry.getFileName().toString();
    return name.startsWith(".") && name.endsWith(TEMP_SUFFIX);
  }

  /**
   * Deletes the temporary files in {@code dir} that nobody has written to for {@code minAge}
   * (left by a writer that died); returns how many. A live writer's file is younger, since every
   * write updates its modification time.
   */
  public static int removeStaleTemps(Path dir, Duration minAge) {
    return removeStaleTemps(dir, System.currentTimeMillis() - minAge.toMillis(), DIRECTORY_ENTRIES_MAX);
  }

  /**
   * As {@link #removeStaleTemps(Path, Duration)}: deletes temporary files last modified before
   * {@code cutoffMillis}, examining at most {@code entriesMax} of them.
   */
  static int removeStaleTemps(Path dir, long cutoffMillis, int entriesMax) {
    int removed = 0;
    int seen = 0;
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir, AtomicFiles::isTemp)) {
      for (Path entry : entries) {
        if (++seen > entriesMax) {
          break;
        }
        try {
          if (Files.getLastModifiedTime(entry).toMillis() < cutoffMillis && Files.deleteIfExists(entry)) {
            removed++;
          }
        } catch (NoSuchFileException e) {
          // Committed or removed by someone else meanwhile.
        }
      }
    } catch (NoSuchFileException e) {
      return 0; // no directory, no temporary files
    } catch (IOException e) {
      throw new StorageException(Problem.IO, dir.toString(), "cannot remove stale temporary files: " + e, e);
    }
    return removed;
  }

  private static void deleteQuietly(Path path) {
    try {
      Files.deleteIfExists(path);
    } catch (IOException e) {
      // Left for removeStaleTemps.
    }
  }
}
