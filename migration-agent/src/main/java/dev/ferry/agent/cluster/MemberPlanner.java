package dev.ferry.agent.cluster;

import dev.ferry.cluster.model.MigrationStates;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmRecord;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A cluster member's decisions, as a pure function of the records it read and its local state:
 * which guests to boot, stop, suspend or resolve, which outgoing migrations to start or cancel,
 * what to write back. {@link ClusterMember} reads its caches, calls {@link #plan} once a round and
 * performs the actions in order. No ZooKeeper, no clock.
 *
 * <p>The source writes only a migration's phase, progress and report: the coordinator owns its
 * state ({@link MigrationStates}). Epoch fencing: a record older than the highest epoch seen for
 * its VM is refused.
 */
public final class MemberPlanner {

  /** Something to do. */
  public sealed interface Action permits VmStep, RetryOutcome, StopGuest, StepAside, IgnoreStaleVm, ResolveUndecided,
      StartOutgoing, CancelOutgoing, RefuseMigration, ResumeCommitted, DiscardUndecided {}

  /**
   * A step of making one VM record so, after a boot: if the boot fails the VM's remaining steps
   * of the round are dropped (today's early return).
   */
  public sealed interface VmStep extends Action permits BootGuest, RecordResumed, ClearBootError, EnsureOwned,
      SuspendGuest, RecordSuspended, ClearCheckpoint, RecordPower {
    String name();
  }

  /** Writes the outcome of a migration sent from here that could not be written before. */
  public record RetryOutcome(String migrationId) implements Action {}

  /** Boots (or resumes from {@code checkpoint}) a VM this host owns; a failure is noted under {@code bootKey}. */
  public record BootGuest(String name, GuestSpec spec, long epoch, String checkpoint, String bootKey) implements VmStep {}

  /** Resumed from a checkpoint: the record runs here and its checkpoint is history. */
  public record RecordResumed(String name, long epoch) implements VmStep {}

  /** Booted fresh: the last boot error is history. */
  public record ClearBootError(String name, long epoch) implements VmStep {}

  /** Destroys a guest: stopped by the operator, or the cluster has no VM of that name any more. */
  public record StopGuest(String name, String why) implements Action {}

  /** Ownership moved on without us (a migration committed, or an operator's move): the guest here goes. */
  public record StepAside(String name, String owner, long epoch) implements Action {}

  /** The running guest holds its lease and services, and runs the record's demand (CPU load, dirty rate). */
  public record EnsureOwned(String name, GuestSpec spec, long epoch) implements VmStep {}

  public record SuspendGuest(String name, long epoch) implements VmStep {}

  /** Suspended here, but the record does not name the checkpoint yet: write it (again). */
  public record RecordSuspended(String name, long epoch, String checkpoint) implements VmStep {}

  /** Running again: the checkpoint it resumed from is never resumed from twice. */
  public record ClearCheckpoint(String name, long epoch) implements VmStep {}

  /** The record's power follows the guest's; the note goes unless a failed boot left it. */
  public record RecordPower(String name, long epoch, PowerState power, boolean keepNote) implements VmStep {}

  /** A VM record older than the epoch seen here: nothing is done for it. */
  public record IgnoreStaleVm(String name, long epoch, long seen) implements Action {}

  /** A paused guest whose migration's outcome was unknown: resumed here, or freed (it runs on the target). */
  public record ResolveUndecided(String name, boolean resume, String why) implements Action {}

  public record StartOutgoing(MigrationRecord migration) implements Action {}

  public record CancelOutgoing(String migrationId, String reason) implements Action {}

  /** A migration that carries an older VM epoch than seen here: refused (reported aborted). */
  public record RefuseMigration(String migrationId, long vmEpoch, long seen) implements Action {}

  /** A target guest waiting on its commit: the commit is recorded, it resumes at {@code epoch}. */
  public record ResumeCommitted(String migrationId, String vm, long epoch) implements Action {}

  /** A target guest waiting on its commit: the migration ended without one, it goes. */
  public record DiscardUndecided(String migrationId, String why) implements Action {}

  /**
   * What the member knows at the start of a round.
   *
   * @param vmNodes every VM node's name, readable or not (a record this Ferry cannot read is no
   *     reason to stop its guest)
   * @param vmsLoaded the VM cache holds ZooKeeper's records, not an empty start
   * @param guests local guest name to state (running, incoming, migrating-out, paused...)
   * @param undecidedGuests paused guest name to the migration whose outcome it waits on
   * @param waitingIncoming migrations whose target guest here waits for the records to decide
   * @param epochsSeen the highest epoch seen per VM
   * @param bootFailed keys (name@epoch@checkpoint@start_requests) of boots that failed
   * @param suspendedHere VMs suspended here whose record may not name the checkpoint yet, by epoch
   * @param finished outgoing migrations this host ran to an end
   * @param pendingOutcomes migrations whose outcome is not written yet
   */
  public record Input(String hostId, List<VmRecord> vms, Set<String> vmNodes, boolean vmsLoaded,
      List<MigrationRecord> migrations, Map<String, String> guests, Set<String> outgoing,
      Map<String, String> undecidedGuests, Set<String> waitingIncoming, Map<String, Long> epochsSeen,
      Set<String> bootFailed, Map<String, Long> suspendedHere, Set<String> finished, Set<String> pendingOutcomes) {}

  /** The round's actions, in order, and the epochs seen once the round has looked at the records. */
  public record Plan(List<Action> actions, Map<String, Long> epochsSeen) {}

  /** The checkpoint a suspend writes when the record did not take its name. */
  static final String SUSPEND_CHECKPOINT = "suspend";

  private final Input in;
  private final Map<String, Long> seen;
  private final List<Action> actions = new ArrayList<>();

  private MemberPlanner(Input in) {
    this.in = in;
    this.seen = new HashMap<>(in.epochsSeen());
  }

  public static Plan plan(Input in) {
    MemberPlanner p = new MemberPlanner(in);
    in.pendingOutcomes().forEach(id -> p.actions.add(new RetryOutcome(id)));
    Map<String, MigrationRecord> byId = new HashMap<>();
    in.migrations().forEach(m -> byId.put(m.getId(), m));
    in.vms().forEach(vm -> p.vm(vm, byId));
    if (in.vmsLoaded()) {
      in.guests().forEach((name, state) -> {
        if (!in.vmNodes().contains(name) && "running".equals(state)) {
          p.actions.add(new StopGuest(name, "the cluster has no VM named " + name + " any more"));
        }
      });
    }
    in.migrations().forEach(p::migration);
    return new Plan(List.copyOf(p.actions), Map.copyOf(p.seen));
  }

  private void vm(VmRecord vm, Map<String, MigrationRecord> migrationsById) {
    String name = vm.getSpec().getName();
    long highest = seen.merge(name, vm.getEpoch(), Math::max);
    if (vm.getEpoch() < highest) {
      actions.add(new IgnoreStaleVm(name, vm.getEpoch(), highest));
      return;
    }
    boolean mine = vm.getOwnerHost().equals(in.hostId());
    String undecided = in.undecidedGuests().get(name);
    if (undecided != null) {
      resolveUndecided(vm, mine, migrationsById.get(undecided));
      return;
    }
    // The VM record says whether it is migrating (set at migrate, cleared by the coordinator once
    // the migration has ended): guests of a migrating VM are the migration's to move, not ours.
    boolean migrating = !vm.getCurrentMigration().isEmpty();
    String state = in.guests().get(name);
    if (!mine) {
      if ("running".equals(state) && !migrating) {
        actions.add(new StepAside(name, vm.getOwnerHost(), vm.getEpoch()));
      }
      return;
    }
    ownedVm(vm, state, migrating);
  }

  /** This guest is paused because its migration's outcome was unknown: the records decide, never a report. */
  private void resolveUndecided(VmRecord vm, boolean mine, MigrationRecord m) {
    String name = vm.getSpec().getName();
    if (!mine || (m != null && !m.getCommitOpId().isEmpty())) {
      actions.add(new ResolveUndecided(name, false, "the commit is recorded; " + name + " runs on " + vm.getOwnerHost()));
    } else if (m == null || MigrationStates.isTerminal(m.getState())) {
      actions.add(new ResolveUndecided(name, true, "it ended " + (m == null ? "(record gone)" : m.getState())
          + " without a commit"));
    }
  }

  private void ownedVm(VmRecord vm, String state, boolean migrating) {
    String name = vm.getSpec().getName();
    long epoch = vm.getEpoch();
    PowerState desired = vm.getDesiredPower();
    boolean running = "running".equals(state);
    boolean present = state != null;
    // A failed boot is not retried with the same files (epoch, checkpoint) until the operator asks again.
    String bootKey = name + "@" + epoch + "@" + vm.getCheckpoint() + "@" + vm.getStartRequests();
    if (desired == PowerState.POWER_RUNNING && state == null && !migrating && !in.bootFailed().contains(bootKey)) {
      actions.add(new BootGuest(name, vm.getSpec(), epoch, vm.getCheckpoint(), bootKey));
      if (!vm.getCheckpoint().isEmpty()) {
        actions.add(new RecordResumed(name, epoch));
      } else if (!vm.getLastBootError().isEmpty()) {
        actions.add(new ClearBootError(name, epoch));
      }
      present = true;
    }
    if (desired == PowerState.POWER_STOPPED && running) {
      actions.add(new StopGuest(name, "stopped by the operator"));
      present = false;
    }
    if (running && desired == PowerState.POWER_RUNNING) {
      actions.add(new EnsureOwned(name, vm.getSpec(), epoch));
    }
    if (desired == PowerState.POWER_SUSPENDED && running && !migrating) {
      actions.add(new SuspendGuest(name, epoch));
      return;
    }
    if (state == null && desired == PowerState.POWER_SUSPENDED && vm.getCheckpoint().isEmpty()
        && Long.valueOf(epoch).equals(in.suspendedHere().get(name))) {
      actions.add(new RecordSuspended(name, epoch, SUSPEND_CHECKPOINT));
      return;
    }
    PowerState actual = present ? PowerState.POWER_RUNNING
        : !vm.getCheckpoint().isEmpty() ? PowerState.POWER_SUSPENDED : PowerState.POWER_STOPPED;
    if (actual == PowerState.POWER_RUNNING && !vm.getCheckpoint().isEmpty()) {
      actions.add(new ClearCheckpoint(name, epoch));
    }
    if (vm.getPower() != actual) {
      actions.add(new RecordPower(name, epoch, actual, in.bootFailed().contains(bootKey)));
    }
  }

  private void migration(MigrationRecord m) {
    boolean outgoing = in.outgoing().contains(m.getId());
    boolean source = m.getSourceHost().equals(in.hostId());
    if (source && (outgoing ? m.getState() == MigrationState.MIGRATION_RUNNING && m.getCommitOpId().isEmpty()
        : MigrationStates.sourceMayProceed(m))) {
      if (outgoing) {
        if (m.getCancelRequested()) {
          actions.add(new CancelOutgoing(m.getId(), "cancelled by the operator"));
        }
      } else if (!in.finished().contains(m.getId())) {
        long highest = seen.getOrDefault(m.getVm(), 0L);
        if (m.getVmEpoch() < highest) {
          // A command older than what this host has seen: refuse it, but only while the fresh
          // record still says so (the cache may show the VM's new epoch before the commit).
          actions.add(new RefuseMigration(m.getId(), m.getVmEpoch(), highest));
          return;
        }
        actions.add(new StartOutgoing(m));
      }
    }
    if (in.waitingIncoming().contains(m.getId())) {
      if (!m.getCommitOpId().isEmpty()) {
        seen.merge(m.getVm(), m.getVmEpoch() + 1, Math::max);
        actions.add(new ResumeCommitted(m.getId(), m.getVm(), m.getVmEpoch() + 1));
      } else if (m.getState() != MigrationState.MIGRATION_RUNNING || m.getPhase() == MigrationPhase.PHASE_ABORTED) {
        // Ended by the coordinator, or refused by the source after a version-checked look: either
        // way no commit can land any more. (A report of UNKNOWN is not enough: the records decide.)
        actions.add(new DiscardUndecided(m.getId(), "the migration ended " + m.getState() + " without a commit"));
      }
    }
  }
}
