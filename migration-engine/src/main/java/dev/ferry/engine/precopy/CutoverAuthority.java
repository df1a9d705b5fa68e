package dev.ferry.engine.precopy;

/**
 * Who makes a migration's move permanent, and how each side learns the outcome.
 *
 * <p>The target commits: once it has checked the last pages and the vCPU state it calls
 * {@link #commit} and resumes the guest only on COMMITTED — the commit's own answer is its proof,
 * with no message or read after it. In a cluster the commit is one ZooKeeper multi-op (the VM's
 * owner and epoch move in the transaction that marks the migration committed); between two agents
 * driven by hand it is the target's own decision ({@link #LOCAL}).
 *
 * <p>The source hears the outcome from the target (Resumed, or Abort before any commit). When it
 * cannot (the link broke, the target went silent) it calls {@link #settle}, which either finds the
 * commit recorded or makes sure it can never land, so that the source resumes the guest only with
 * proof that the target cannot run it.
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

  /** Source: what the commit is expected to add to the pause (the budget's reserve for it), in ms. */
  default long expectedCostMillis() {
    return 0;
  }

  /** Target: commits the move of the migration's guest to this host; the guest is paused and checked. */
  Result commit(String migrationId) throws InterruptedException;

  /**
   * Source, when the target's answer did not come: COMMITTED if the commit is recorded, REFUSED once
   * it is certain that no commit can land any more (made so if needed), UNKNOWN if that cannot be
   * found out now. The guest is paused here.
   */
  Result settle(String migrationId, String why) throws InterruptedException;

  /** Two agents without a cluster: the target's check is the commit; a silent target leaves it unknown. */
  CutoverAuthority LOCAL = new CutoverAuthority() {
    @Override
    public Result commit(String migrationId) {
      return Result.committed(0);
    }

    @Override
    public Result settle(String migrationId, String why) {
      return Result.unknown(why + "; standing alone there is no record to ask whether the target resumed the guest");
    }
  };
}
