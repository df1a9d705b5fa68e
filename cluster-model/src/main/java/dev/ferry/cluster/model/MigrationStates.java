package dev.ferry.cluster.model;

import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationRecord;
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
 *
 * <p>Who writes what: only the coordinator writes {@code state} (with {@code reason},
 * {@code started_ms}, {@code ended_ms}), always through {@link #move}; the source agent writes
 * {@code phase}, {@code progress} and, once, its {@code report}, and the coordinator settles the
 * state from that report ({@link #reported}, {@link #settle}). A source that refuses to go on
 * (a stale epoch, a cancel won the race at the commit) marks {@code phase} ABORTED: that changes
 * the record's version, so no commit can land afterwards, and {@link #sourceMayProceed} is false.
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

  /** The state the source's outcome asks for. */
  public static MigrationState reported(MigrationPhase outcome) {
    return switch (outcome) {
      case PHASE_COMPLETED -> MigrationState.MIGRATION_COMPLETED;
      case PHASE_CANCELLED -> MigrationState.MIGRATION_CANCELLED;
      case PHASE_UNKNOWN -> MigrationState.MIGRATION_UNKNOWN;
      default -> MigrationState.MIGRATION_ABORTED;
    };
  }

  /**
   * {@code m} moved to {@code to} with {@code reason}, stamped {@code nowMillis} if that ends it;
   * {@code m} itself if the move is not legal (so a stale decision never writes). A completed
   * migration keeps the reason it already has.
   */
  public static MigrationRecord move(MigrationRecord m, MigrationState to, String reason, long nowMillis) {
    boolean committed = !m.getCommitOpId().isEmpty();
    if (!canMove(m.getState(), to, committed)) {
      return m;
    }
    MigrationRecord.Builder b = m.toBuilder().setState(to);
    if (to == MigrationState.MIGRATION_RUNNING) {
      b.setStartedMs(nowMillis);
    }
    if (isTerminal(to)) {
      b.setEndedMs(nowMillis);
    }
    if (reason != null && !reason.isEmpty() && (to != MigrationState.MIGRATION_COMPLETED || m.getReason().isEmpty())) {
      b.setReason(reason);
    }
    return b.build();
  }

  /** True while the source may still start or commit {@code m}: running, not refused, nothing reported yet (a requested cancel is the source's to act on). */
  public static boolean sourceMayProceed(MigrationRecord m) {
    return m.getState() == MigrationState.MIGRATION_RUNNING && m.getCommitOpId().isEmpty() && !m.hasReport()
        && m.getPhase() != MigrationPhase.PHASE_ABORTED;
  }
}
