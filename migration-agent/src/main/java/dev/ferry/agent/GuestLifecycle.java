package dev.ferry.agent;

import java.util.EnumSet;
import java.util.Set;

/**
 * Where one guest on this host stands, and the legal moves between those states, written down once.
 *
 * <pre>
 *   BOOTING ----\
 *   RESUMING ----+--> RUNNING <--> SUSPENDING
 *   INCOMING ---/      ^   |
 *                      |   v
 *                   MIGRATING_OUT --> PAUSED --> RUNNING
 * </pre>
 *
 * A guest that leaves the host (destroyed, migrated away, suspended to disk, failed to boot or
 * arrive) has no state: its entry goes. PAUSED is a migration whose commit nobody could confirm:
 * the guest waits, paused, until the cluster reads the outcome back (it then resumes here or goes).
 */
public enum GuestLifecycle {
  BOOTING,
  RESUMING,
  INCOMING,
  RUNNING,
  MIGRATING_OUT,
  SUSPENDING,
  PAUSED;

  private Set<GuestLifecycle> next() {
    return switch (this) {
      case BOOTING, RESUMING, INCOMING -> EnumSet.of(RUNNING);
      case RUNNING -> EnumSet.of(MIGRATING_OUT, SUSPENDING);
      case MIGRATING_OUT -> EnumSet.of(RUNNING, PAUSED);
      case SUSPENDING, PAUSED -> EnumSet.of(RUNNING);
    };
  }

  public boolean canMoveTo(GuestLifecycle target) {
    return next().contains(target);
  }

  /** The next state, or an exception naming the illegal move. */
  public GuestLifecycle moveTo(GuestLifecycle target) {
    if (!canMoveTo(target)) {
      throw new IllegalStateException("illegal guest state change " + this + " -> " + target);
    }
    return target;
  }

  /** A migration owns the guest's memory: nothing else may stop it (cancel the migration instead). */
  public boolean inMigration() {
    return this == INCOMING || this == MIGRATING_OUT;
  }

  /** Lower-case name for people and listings: "migrating-out" (GuestStatus.state on the wire). */
  public String label() {
    return dev.ferry.common.Labels.of(name(), "");
  }
}
