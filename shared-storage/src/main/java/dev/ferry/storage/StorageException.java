package dev.ferry.storage;

/**
 * Something on the datastore cannot be read or written as asked: a file that is corrupt,
 * truncated, oversized or written by a newer Ferry, a bad name, an out-of-bounds write, a lease
 * held by someone else. The message starts with the file (relative to the datastore root, e.g.
 * {@code vms/web-1/vm.conf}) and says what is wrong; {@link #problem()} classifies it for code.
 * Nothing from a file that raised this is ever handed to the caller.
 */
public class StorageException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** What kind of problem, so callers (and the CLI's exit codes) need not parse messages. */
  public enum Problem {
    /** A VM, host or checkpoint name that is not allowed. */
    INVALID_NAME,
    /** An argument outside its bounds: an offset past the disk, a size over a limit. */
    OUT_OF_BOUNDS,
    /** The file or directory does not exist. */
    NOT_FOUND,
    /** The VM directory (or file) exists already. */
    ALREADY_EXISTS,
    /** The file does not start with the magic of the kind of file expected. */
    NOT_A_FERRY_FILE,
    /** Written by a newer on-disk format than this Ferry reads. */
    NEWER_FORMAT,
    /** A checksum mismatch or an impossible field. */
    CORRUPT,
    /** The file ends before its header says it should. */
    TRUNCATED,
    /** The file, or a length in it, is over the bound for its kind. */
    OVERSIZED,
    /** Another host (or a newer epoch) holds the VM's lease. */
    LEASE_HELD,
    /** The writer's (host, epoch) no longer holds the lease: it must stop writing. */
    FENCED,
    /** The lease's lock file stayed locked past the wait bound. */
    LOCK_TIMEOUT,
    /** The operating system refused an operation. */
    IO
  }

  private final Problem problem;
  private final String file;

  /** {@code file} is the datastore-relative name shown to people, or null if none applies. */
  public StorageException(Problem problem, String file, String detail) {
    this(problem, file, detail, null);
  }

  public StorageException(Problem problem, String file, String detail, Throwable cause) {
    super(file == null ? detail : file + ": " + detail, cause);
    this.problem = problem;
    this.file = file;
  }

  public Problem problem() {
    return problem;
  }

  /** The file this is about, relative to the datastore root ({@code vms/web-1/lease}); may be null. */
  public String file() {
    return file;
  }
}
