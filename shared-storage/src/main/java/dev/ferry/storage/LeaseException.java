package dev.ferry.storage;

import java.util.Optional;

/**
 * A lease operation was refused: {@link Problem#LEASE_HELD} when acquiring a lease someone else
 * holds (at the same or a newer epoch), {@link Problem#FENCED} when a writer's (host, epoch) no
 * longer holds the lease. {@link #holder()} names who does, when anyone does.
 */
public final class LeaseException extends StorageException {
  private static final long serialVersionUID = 1L;

  private final transient LeaseStatus holder;

  LeaseException(Problem problem, String file, String detail, LeaseStatus holder) {
    super(problem, file, detail);
    this.holder = holder;
  }

  /** The lease as it was when the operation was refused; empty if there was none. */
  public Optional<LeaseStatus> holder() {
    return Optional.ofNullable(holder);
  }
}
