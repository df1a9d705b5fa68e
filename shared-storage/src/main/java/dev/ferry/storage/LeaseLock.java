package dev.ferry.storage;

import dev.ferry.storage.StorageException.Problem;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Mutual exclusion around a VM's lease read-check-write, across threads and processes: an
 * in-process {@link ReentrantLock} per lock file, then an exclusive {@code fcntl} lock on the
 * file ({@code lease.lock}) itself.
 *
 * <p>Both are needed. {@code fcntl} locks belong to a process, so Java refuses a second lock on
 * the same file from the same JVM ({@code OverlappingFileLockException}) rather than let two
 * threads both "hold" it; and closing any descriptor of the file drops the process's lock, so
 * only the thread holding the in-process lock ever opens the lock file. The lock file is never
 * deleted (deleting it would let two processes lock two different files) and its content is
 * meaningless.
 *
 * <p>Waits are bounded ({@link #WAIT_NANOS_MAX}): a process stopped while holding the lock makes
 * the others fail with {@link Problem#LOCK_TIMEOUT} instead of hanging. Critical sections are
 * short (a lease read and at most one small write, or one disk block write).
 */
final class LeaseLock {
  /** How long to wait for the lock before giving up. */
  static final long WAIT_NANOS_MAX = TimeUnit.SECONDS.toNanos(10);
  private static final long BACKOFF_NANOS_MIN = 20_000;
  private static final long BACKOFF_NANOS_MAX = 1_000_000;
  /** One in-process lock per lock file; as many entries as VMs this process has touched. */
  private static final ConcurrentHashMap<Path, ReentrantLock> IN_PROCESS = new ConcurrentHashMap<>();

  /** The work done while locked. */
  @FunctionalInterface
  interface Body<T> {
    T run() throws IOException;
  }

  private final Path lockFile;
  private final String file;
  private final ReentrantLock inProcess;

  /** {@code lockFile} must be absolute and normalized, so every path to it shares one lock. */
  LeaseLock(Path lockFile, String file) {
    this.lockFile = lockFile;
    this.file = file;
    this.inProcess = IN_PROCESS.computeIfAbsent(lockFile, k -> new ReentrantLock());
  }

  /** Runs {@code body} holding both locks; a nested call on the same thread just runs it. */
  <T> T locked(Body<T> body) {
    if (inProcess.isHeldByCurrentThread()) {
      return run(body);
    }
    long deadline = System.nanoTime() + WAIT_NANOS_MAX;
    lockInProcess();
    try (FileChannel channel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      FileLock lock = lockFile(channel, deadline);
      try {
        return run(body);
      } finally {
        lock.release();
      }
    } catch (IOException e) {
      throw new StorageException(Problem.IO, file, "cannot be locked: " + e, e);
    } finally {
      inProcess.unlock();
    }
  }

  private <T> T run(Body<T> body) {
    try {
      return body.run();
    } catch (IOException e) {
      throw new StorageException(Problem.IO, file, "I/O error while locked: " + e, e);
    }
  }

  private void lockInProcess() {
    try {
      if (!inProcess.tryLock(WAIT_NANOS_MAX, TimeUnit.NANOSECONDS)) {
        throw timeout("another thread of this process");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new StorageException(Problem.LOCK_TIMEOUT, file, "interrupted while waiting for the lock", e);
    }
  }

  private FileLock lockFile(FileChannel channel, long deadline) throws IOException {
    long backoffNanos = BACKOFF_NANOS_MIN;
    while (true) {
      FileLock lock = channel.tryLock();
      if (lock != null) {
        return lock;
      }
      if (System.nanoTime() - deadline > 0) {
        throw timeout("another process");
      }
      if (Thread.currentThread().isInterrupted()) {
        throw new StorageException(Problem.LOCK_TIMEOUT, file, "interrupted while waiting for the lock");
      }
      LockSupport.parkNanos(backoffNanos);
      backoffNanos = Math.min(BACKOFF_NANOS_MAX, backoffNanos * 2);
    }
  }

  private StorageException timeout(String holder) {
    return new StorageException(Problem.LOCK_TIMEOUT, file, "still locked by " + holder + " after "
        + TimeUnit.NANOSECONDS.toSeconds(WAIT_NANOS_MAX) + " s; a stuck process may hold it");
  }
}
