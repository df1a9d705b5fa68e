package dev.ferry.engine.precopy;

/**
 * Who makes a migration's move permanent. In a cluster it is one ZooKeeper multi-op (the VM's
 * owner and epoch move in the same transaction that marks the migration committed); between two
 * agents driven by hand it is the source's Commit message itself ({@link #LOCAL}).
 */
public interface CutoverAuthority {

  enum Outcome {
    /** The move stands. */
    COMMITTED,
    /** It did not happen, and now cannot: the source may resume the guest. */
    REFUSED,
    /** It could not be read back: nobody may resume the guest until someone can. */
    UNKNOWN
  }

  /** @param epoch the VM's epoch after the commit (0 outside a cluster) */
  record Result(Outcome outcome, long epoch, String reason) {
    public static Result committed(long epoch) {
      return new Result(Outcome.COMMITTED, epoch, "");
    }

    public static Result refused(String reason) {
      return new Result(Outcome.REFUSED, 0, reason);
    }

    public static Result unknown(String reason) {
      return new Result(Outcome.UNKNOWN, 0, reason);
    }
  }

  /** What the commit is expected to add to the pause (round trips to the cluster's store), in ms. */
  default long expectedCostMillis() {
    return 0;
  }

  /**
   * Called just before the guest pauses: an authority may read what its commit will check, so
   * the commit inside the pause costs fewer round trips. Failures are for the commit to find.
   */
  default void prepare(String migrationId) throws InterruptedException {
  }

  /** Commits the move of the migration's guest to its target; the guest is paused, the target ready. */
  Result commit(String migrationId) throws InterruptedException;

  /**
   * True if COMMITTED is final by itself (the target resumes from the record even if the source's
   * Commit message never reaches it); false if the target's confirmation is the only proof.
   */
  boolean authoritative();

  /** Two agents without a cluster: the Commit message is the commit, the target's answer its proof. */
  CutoverAuthority LOCAL = new CutoverAuthority() {
    @Override
    public Result commit(String migrationId) {
      return Result.committed(0);
    }

    @Override
    public boolean authoritative() {
      return false;
    }
  };
}
