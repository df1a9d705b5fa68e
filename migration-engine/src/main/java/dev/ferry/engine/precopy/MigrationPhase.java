package dev.ferry.engine.precopy;

import java.util.EnumSet;
import java.util.Set;

/**
 * The phases of one migration and the legal moves between them, written down once.
 *
 * <pre>
 *   SETUP -> PRECOPY -> STOP_AND_COPY -> CUTOVER -> COMPLETED
 *     |         |            |             |  \
 *     +---------+------------+--> ABORTED  |   UNKNOWN -> COMPLETED | ABORTED
 *     +---------+------------+--> CANCELLED
 * </pre>
 *
 * Before CUTOVER every failure resumes the guest on the source. CUTOVER is the commit: once the
 * source has sent it, only a confirmed answer moves on; without one the phase is UNKNOWN and the
 * guest stays paused everywhere until someone reads the outcome back.
 */
public enum MigrationPhase {
  SETUP,
  PRECOPY,
  STOP_AND_COPY,
  CUTOVER,
  COMPLETED,
  ABORTED,
  CANCELLED,
  UNKNOWN;

  private Set<MigrationPhase> next() {
    return switch (this) {
      case SETUP -> EnumSet.of(PRECOPY, ABORTED, CANCELLED);
      case PRECOPY -> EnumSet.of(STOP_AND_COPY, ABORTED, CANCELLED);
      case STOP_AND_COPY -> EnumSet.of(CUTOVER, ABORTED, CANCELLED);
      case CUTOVER -> EnumSet.of(COMPLETED, ABORTED, UNKNOWN);
      case UNKNOWN -> EnumSet.of(COMPLETED, ABORTED);
      case COMPLETED, ABORTED, CANCELLED -> EnumSet.noneOf(MigrationPhase.class);
    };
  }

  public boolean canMoveTo(MigrationPhase target) {
    return next().contains(target);
  }

  public boolean isTerminal() {
    return this == COMPLETED || this == ABORTED || this == CANCELLED;
  }

  /** True while the source may still resume the guest on failure (nothing committed). */
  public boolean sourceOwnsGuest() {
    return this == SETUP || this == PRECOPY || this == STOP_AND_COPY;
  }

  /** The next phase, or an exception naming the illegal move. */
  public MigrationPhase moveTo(MigrationPhase target) {
    if (!canMoveTo(target)) {
      throw new IllegalStateException("illegal migration phase change " + this + " -> " + target);
    }
    return target;
  }

  public dev.ferry.proto.MigrationPhase toProto() {
    return switch (this) {
      case SETUP -> dev.ferry.proto.MigrationPhase.PHASE_SETUP;
      case PRECOPY -> dev.ferry.proto.MigrationPhase.PHASE_PRECOPY;
      case STOP_AND_COPY -> dev.ferry.proto.MigrationPhase.PHASE_STOP_AND_COPY;
      case CUTOVER -> dev.ferry.proto.MigrationPhase.PHASE_CUTOVER;
      case COMPLETED -> dev.ferry.proto.MigrationPhase.PHASE_COMPLETED;
      case ABORTED -> dev.ferry.proto.MigrationPhase.PHASE_ABORTED;
      case CANCELLED -> dev.ferry.proto.MigrationPhase.PHASE_CANCELLED;
      case UNKNOWN -> dev.ferry.proto.MigrationPhase.PHASE_UNKNOWN;
    };
  }

  public static MigrationPhase fromProto(dev.ferry.proto.MigrationPhase phase) {
    return switch (phase) {
      case PHASE_SETUP -> SETUP;
      case PHASE_PRECOPY -> PRECOPY;
      case PHASE_STOP_AND_COPY -> STOP_AND_COPY;
      case PHASE_CUTOVER -> CUTOVER;
      case PHASE_COMPLETED -> COMPLETED;
      case PHASE_ABORTED -> ABORTED;
      case PHASE_CANCELLED -> CANCELLED;
      case PHASE_UNKNOWN -> UNKNOWN;
      default -> throw new IllegalArgumentException("unknown migration phase " + phase);
    };
  }

  /** Lower-case name for people: "stop-and-copy". */
  public String label() {
    return dev.ferry.common.Labels.of(name(), "");
  }
}
