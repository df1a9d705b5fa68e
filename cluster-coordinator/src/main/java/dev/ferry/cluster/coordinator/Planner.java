package dev.ferry.cluster.coordinator;

import dev.ferry.cluster.model.MigrationStates;
import dev.ferry.common.Sizes;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.HostInventory;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.HostState;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmRecord;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The coordinator's decisions, as pure functions of a {@link ClusterView}: whether a migration
 * or a new VM is acceptable (with a reason a person can act on), and, each round, which queued
 * migrations may start under the concurrency limits and what to clean up. No ZooKeeper, no clock.
 */
public final class Planner {

  /** Concurrent migrations: out of and into each host, and in the whole cluster. */
  public record Limits(int outPerHost, int inPerHost, int cluster) {
    public static final Limits DEFAULT = new Limits(2, 2, 8);

    public Limits {
      if (outPerHost < 1 || inPerHost < 1 || cluster < 1 || outPerHost > 64 || inPerHost > 64 || cluster > 1024) {
        throw new IllegalArgumentException("migration limits out of range: " + outPerHost + "/" + inPerHost + "/" + cluster);
      }
    }
  }

  /** Something to write. */
  public sealed interface Action permits Admit, Abort, Cancel, Complete, Settle, ClearVmMigration, MarkHost, Forget,
      MaintenanceReached {}

  /** How long a finished migration's record is kept for {@code ferry migrations}. */
  public static final long FINISHED_RETENTION_MILLIS = 24 * 3600_000L;

  /** A migration that ended long ago: its record goes, so ZooKeeper does not grow forever. */
  public record Forget(String migrationId) implements Action {}

  /** A queued migration may start now. */
  public record Admit(String migrationId) implements Action {}

  public record Abort(String migrationId, String reason) implements Action {}

  public record Cancel(String migrationId) implements Action {}

  /** Committed, but its source could not say so: it is complete. */
  public record Complete(String migrationId, String reason) implements Action {}

  /** The source reported its outcome: the record's state follows it (through {@code MigrationStates}). */
  public record Settle(String migrationId, MigrationState to, String reason) implements Action {}

  /** The VM's migration is over: it may migrate again. */
  public record ClearVmMigration(String vm, String migrationId) implements Action {}

  public record MarkHost(String hostId, boolean up) implements Action {}

  /** A host entering maintenance runs no VM any more and nothing moves to or from it: it is in maintenance. */
  public record MaintenanceReached(String hostId) implements Action {}

  private Planner() {}

  /** Why {@code vm} cannot migrate to {@code target} now; empty if it can. */
  public static Optional<String> refuseMigration(ClusterView view, String vmName, String target) {
    VmRecord vm = view.vms().get(vmName);
    if (vm == null) {
      return Optional.of("there is no VM named " + vmName);
    }
    if (!vm.getCurrentMigration().isEmpty()) {
      MigrationRecord current = view.migrations().get(vm.getCurrentMigration());
      if (current != null && ClusterView.isActive(current)) {
        return Optional.of(vmName + " is already migrating (" + current.getId() + ")");
      }
    }
    return refuseMove(view, vm, target, 0).or(() -> silentHost(view, vm, target));
  }

  /** Why a move cannot start now though both hosts are live: one of them stopped reporting. */
  private static Optional<String> silentHost(ClusterView view, VmRecord vm, String target) {
    return view.silence(target).or(() -> view.silence(vm.getOwnerHost())
        .map(s -> vm.getSpec().getName() + "'s host " + s));
  }

  /**
   * {@code reservedBytes}: room already reserved on {@code target} for this very move (a queued
   * migration's VM counts as incoming there), which must not be counted against it a second time.
   */
  private static Optional<String> refuseMove(ClusterView view, VmRecord vm, String target, long reservedBytes) {
    String name = vm.getSpec().getName();
    if (vm.getDesiredPower() != PowerState.POWER_RUNNING || vm.getPower() != PowerState.POWER_RUNNING) {
      return Optional.of(name + " is not running on " + vm.getOwnerHost() + " (live migration moves running VMs)");
    }
    if (vm.getOwnerHost().equals(target)) {
      return Optional.of(name + " already runs on " + target);
    }
    HostRecord to = view.liveHosts().get(target);
    if (to == null) {
      return Optional.of(view.inventory().containsKey(target) ? "host " + target + " is down"
          : "there is no host named " + target);
    }
    if (to.getState() == HostState.HOST_IN_MAINTENANCE || to.getState() == HostState.HOST_ENTERING_MAINTENANCE) {
      return Optional.of(target + " is in maintenance");
    }
    Optional<String> maintenance = view.maintenance(target);
    if (maintenance.isPresent()) {
      return maintenance;
    }
    HostRecord from = view.liveHosts().get(vm.getOwnerHost());
    if (from == null) {
      return Optional.of(name + "'s host " + vm.getOwnerHost() + " is down");
    }
    if (!from.getCpuModel().equals(to.getCpuModel())) {
      return Optional.of(target + " has a different CPU (" + to.getCpuModel() + ") than " + from.getHostId() + " ("
          + from.getCpuModel() + "): " + name + " cannot move live between them");
    }
    long need = vm.getSpec().getMemoryBytes();
    long free = Math.max(0, to.getMemoryBytes() - view.memoryCommittedBytes(target) + reservedBytes);
    if (free < need) {
      return Optional.of(target + " has " + Sizes.formatBytes(free) + " free, " + name + " needs "
          + Sizes.formatBytes(need));
    }
    return Optional.empty();
  }

  /** The host a new VM goes to: {@code requested} if it fits, else the least loaded live active host that fits. */
  public static Result placeVm(ClusterView view, GuestSpec spec, String requested) {
    return placeVm(view, spec, requested, VmPlacement.LEAST_LOADED);
  }

  /** The host a new VM goes to: {@code requested} if it fits, else where {@code placement} puts it. */
  public static Result placeVm(ClusterView view, GuestSpec spec, String requested, VmPlacement placement) {
    if (view.vms().containsKey(spec.getName())) {
      return Result.refused("a VM named " + spec.getName() + " already exists (on "
          + view.vms().get(spec.getName()).getOwnerHost() + ")");
    }
    long need = spec.getMemoryBytes();
    if (!requested.isEmpty()) {
      HostRecord host = view.liveHosts().get(requested);
      if (host == null) {
        return Result.refused(view.inventory().containsKey(requested) ? "host " + requested + " is down"
            : "there is no host named " + requested);
      }
      if (host.getState() != HostState.HOST_ACTIVE) {
        return Result.refused(requested + " is in maintenance");
      }
      Optional<String> maintenance = view.maintenance(requested);
      if (maintenance.isPresent()) {
        return Result.refused(maintenance.get());
      }
      Optional<String> silent = view.silence(requested);
      if (silent.isPresent()) {
        return Result.refused(silent.get());
      }
      long free = view.memoryFreeBytes(requested);
      return free >= need ? Result.accepted(requested)
          : Result.refused(requested + " has " + Sizes.formatBytes(free) + " free, " + spec.getName() + " needs "
              + Sizes.formatBytes(need));
    }
    return placement.place(view, spec);
  }

  /**
   * The placement of a VM without a requested host (vm create without --host, HA restarts): the
   * least loaded live, active, reporting host with room for it. The one place that chooses, so a
   * better placement (DRS's) replaces it here ({@link VmPlacement}).
   */
  public static Result leastLoaded(ClusterView view, GuestSpec spec) {
    long need = spec.getMemoryBytes();
    return view.liveHosts().values().stream()
        .filter(h -> h.getState() == HostState.HOST_ACTIVE && view.memoryFreeBytes(h.getHostId()) >= need)
        .filter(h -> view.maintenance(h.getHostId()).isEmpty())
        .filter(h -> view.silence(h.getHostId()).isEmpty())
        .min(Comparator.comparingDouble((HostRecord h) -> h.getLoad() / Math.max(1, h.getCpuCores()))
            .thenComparing(h -> -view.memoryFreeBytes(h.getHostId())).thenComparing(HostRecord::getHostId))
        .map(h -> Result.accepted(h.getHostId()))
        .orElseGet(() -> Result.refused("no active host has " + Sizes.formatBytes(need) + " free for "
            + spec.getName()));
  }

  /** Accepted with a value, or refused with a reason. */
  public record Result(String value, String refusal) {
    static Result accepted(String value) {
      return new Result(value, null);
    }

    static Result refused(String reason) {
      return new Result(null, reason);
    }

    public boolean ok() {
      return refusal == null;
    }
  }

  /** What to do this round. */
  public static List<Action> plan(ClusterView view, Limits limits) {
    List<Action> actions = new ArrayList<>();
    markHosts(view, actions);
    maintenanceReached(view, actions);
    Map<String, Integer> out = new HashMap<>();
    Map<String, Integer> in = new HashMap<>();
    int total = 0;
    for (MigrationRecord m : view.migrations().values()) {
      settle(m).ifPresent(actions::add);
    }
    for (MigrationRecord m : view.running()) {
      if (!m.hasReport() && !view.isUp(m.getSourceHost())) { // a reported one is settled above
        actions.add(m.getCommitOpId().isEmpty()
            ? new Abort(m.getId(), "source host " + m.getSourceHost() + " went down")
            : new Complete(m.getId(), "committed; its source " + m.getSourceHost() + " went down before reporting"));
        continue;
      }
      out.merge(m.getSourceHost(), 1, Integer::sum);
      in.merge(m.getTargetHost(), 1, Integer::sum);
      total++;
    }
    for (MigrationRecord m : view.migrations().values()) {
      if (m.getState() == MigrationState.MIGRATION_UNKNOWN && settle(m).isEmpty()) {
        // The source could not read the commit's outcome back; the record can. Aborting changes
        // the record's version, so a commit still being retried can no longer land.
        actions.add(m.getCommitOpId().isEmpty()
            ? new Abort(m.getId(), "the commit never landed (its outcome was unknown to the source)")
            : new Complete(m.getId(), "the commit is recorded"));
      }
    }
    List<MigrationRecord> queued = view.migrations().values().stream()
        .filter(m -> m.getState() == MigrationState.MIGRATION_QUEUED)
        .sorted(Comparator.comparingLong(MigrationRecord::getCreatedMs).thenComparing(MigrationRecord::getId)).toList();
    for (MigrationRecord m : queued) {
      if (m.getCancelRequested()) {
        actions.add(new Cancel(m.getId()));
        continue;
      }
      VmRecord vm = view.vms().get(m.getVm());
      Optional<String> refusal = vm == null ? Optional.of("the VM " + m.getVm() + " no longer exists")
          : vm.getEpoch() != m.getVmEpoch() ? Optional.of(m.getVm() + " moved since the migration was requested")
          : refuseMove(view, vm, m.getTargetHost(), vm.getSpec().getMemoryBytes());
      if (refusal.isPresent()) {
        actions.add(new Abort(m.getId(), refusal.get()));
        continue;
      }
      if (silentHost(view, vm, m.getTargetHost()).isPresent()) {
        continue; // it waits: the host reports again, or its session expires and the move is aborted as down
      }
      if (out.getOrDefault(m.getSourceHost(), 0) < limits.outPerHost()
          && in.getOrDefault(m.getTargetHost(), 0) < limits.inPerHost() && total < limits.cluster()) {
        actions.add(new Admit(m.getId()));
        out.merge(m.getSourceHost(), 1, Integer::sum);
        in.merge(m.getTargetHost(), 1, Integer::sum);
        total++;
      }
    }
    for (MigrationRecord m : view.migrations().values()) {
      if (!ClusterView.isActive(m) && m.getEndedMs() > 0 && view.nowMillis() - m.getEndedMs() > FINISHED_RETENTION_MILLIS) {
        actions.add(new Forget(m.getId()));
      }
    }
    for (VmRecord vm : view.vms().values()) {
      MigrationRecord m = view.migrations().get(vm.getCurrentMigration());
      if (!vm.getCurrentMigration().isEmpty() && (m == null || !ClusterView.isActive(m))) {
        actions.add(new ClearVmMigration(vm.getSpec().getName(), vm.getCurrentMigration()));
      }
    }
    return actions;
  }

  /** A running or unknown migration whose source reported an outcome the state does not show yet. */
  private static Optional<Action> settle(MigrationRecord m) {
    if (!m.hasReport() || (m.getState() != MigrationState.MIGRATION_RUNNING
        && m.getState() != MigrationState.MIGRATION_UNKNOWN)) {
      return Optional.empty();
    }
    MigrationState to = MigrationStates.settle(m.getState(), MigrationStates.reported(m.getReport().getPhase()),
        !m.getCommitOpId().isEmpty());
    return to == m.getState() ? Optional.empty() : Optional.of(new Settle(m.getId(), to, m.getReport().getReason()));
  }

  /**
   * Entering → in maintenance once no VM wants to run or runs there (stopped and suspended VMs may
   * stay: nothing of theirs runs on the host) and no migration to or from it is active. Moving the
   * VMs off is the drain's job, not this.
   */
  private static void maintenanceReached(ClusterView view, List<Action> actions) {
    for (HostInventory known : view.inventory().values()) {
      if (known.getMaintenance() != dev.ferry.proto.MaintenanceState.MAINTENANCE_ENTERING) {
        continue;
      }
      String hostId = known.getHostId();
      boolean runs = view.vms().values().stream().anyMatch(v -> v.getOwnerHost().equals(hostId)
          && (v.getDesiredPower() == PowerState.POWER_RUNNING || v.getPower() == PowerState.POWER_RUNNING));
      boolean moving = view.migrations().values().stream().anyMatch(m -> ClusterView.isActive(m)
          && (m.getSourceHost().equals(hostId) || m.getTargetHost().equals(hostId)));
      if (!runs && !moving) {
        actions.add(new MaintenanceReached(hostId));
      }
    }
  }

  private static void markHosts(ClusterView view, List<Action> actions) {
    for (String id : view.liveHosts().keySet()) {
      HostInventory known = view.inventory().get(id);
      if (known == null || !known.getUp()) {
        actions.add(new MarkHost(id, true));
      }
    }
    for (HostInventory known : view.inventory().values()) {
      if (known.getUp() && !view.isUp(known.getHostId())) {
        actions.add(new MarkHost(known.getHostId(), false));
      }
    }
  }
}
