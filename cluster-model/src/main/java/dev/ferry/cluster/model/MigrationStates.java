package dev.ferry.cluster.model;

import dev.ferry.proto.MigrationState;

/**
 * The states of a migration's cluster record ({@code /ferry/migrations/<id>}) and the legal moves
 * between them, written down once. {@code committed} means the record carries a
 * {@code commit_op_id}: the cutover multi-op landed and the VM already belongs to the target.
 *
 * <pre>
 *   QUEUED ---> RUNNING ---> COMPLETED                 (committed)
 *     |           |    \
 *     |           |     +--> UNKNOWN ---> COMPLETED    (committed)
 *     |           |                  \--> ABORTED      (not committed)
 *     |           +--------> ABORTED | CANCELLED       (not committed)
 *     +--------------------> ABORTED | CANCELLED
 * </pre>
 *
 * COMPLETED, ABORTED and CANCELLED are terminal. The commit needs a RUNNING record (see
 * {@link ZkCutoverAuthority}), so a QUEUED record is never committed and its moves do not look at
 * the flag. Once committed, the commit is the truth: the record can only end COMPLETED, whatever
 * an agent reports afterwards. UNKNOWN means nobody could read the commit's outcome back; the
 * guest stays paused until the record says committed (COMPLETED) or not (ABORTED).
 */
public final class MigrationStates {

  private MigrationStates() {}

  /** True if a record in {@code from} may change to {@code to}; staying in the same state is not a move. */
  public static boolean canMove(MigrationState from, MigrationState to, boolean committed) {
    if (from == null || to == null) {
      throw new IllegalArgumentException("migration state change " + from + " -> " + to + ": a state is missing");
    }
    return switch (from) {
      case MIGRATION_QUEUED -> to == MigrationState.MIGRATION_RUNNING || to == MigrationState.MIGRATION_CANCELLED
          || to == MigrationState.MIGRATION_ABORTED;
      case MIGRATION_RUNNING -> switch (to) {
        case MIGRATION_COMPLETED -> committed;
        case MIGRATION_ABORTED, MIGRATION_CANCELLED -> !committed;
        case MIGRATION_UNKNOWN -> true;
        default -> false;
      };
      case MIGRATION_UNKNOWN -> to == MigrationState.MIGRATION_COMPLETED ? committed
          : to == MigrationState.MIGRATION_ABORTED && !committed;
      default -> false; // terminal, or not a state at all (UNSPECIFIED, UNRECOGNIZED)
    };
  }

  /**
   * The state a record in {@code current} gets when an agent reports {@code reported} as the
   * outcome: terminal records keep their state; a committed migration reported aborted or
   * cancelled is complete (the commit is the truth); a reported UNKNOWN stays UNKNOWN (it is not
   * turned into COMPLETED: the planner completes it once it sees the commit); otherwise the
   * reported state if the move is legal, else {@code current}. Never returns an illegal move.
   */
  public static MigrationState settle(MigrationState current, MigrationState reported, boolean committed) {
    if (current == null || reported == null) {
      throw new IllegalArgumentException("settling migration state " + current + " with " + reported
          + ": a state is missing");
    }
    if (isTerminal(current)) {
      return current;
    }
    MigrationState outcome = committed
        && (reported == MigrationState.MIGRATION_ABORTED || reported == MigrationState.MIGRATION_CANCELLED)
        ? MigrationState.MIGRATION_COMPLETED : reported;
    return canMove(current, outcome, committed) ? outcome : current;
  }

  /** COMPLETED, ABORTED or CANCELLED: the record never changes state again. */
  public static boolean isTerminal(MigrationState state) {
    return state == MigrationState.MIGRATION_COMPLETED || state == MigrationState.MIGRATION_ABORTED
        || state == MigrationState.MIGRATION_CANCELLED;
  }

  /** QUEUED, RUNNING or UNKNOWN: the VM is still bound to this migration and may not start another. */
  public static boolean isActive(MigrationState state) {
    return state == MigrationState.MIGRATION_QUEUED || state == MigrationState.MIGRATION_RUNNING
        || state == MigrationState.MIGRATION_UNKNOWN;
  }
}
