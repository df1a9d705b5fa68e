package dev.ferry.cluster.coordinator;

import dev.ferry.common.Sizes;
import dev.ferry.proto.HaPriority;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.HostState;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmRecord;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * HA's decisions, as pure functions: which hosts are dead, which of their VMs restart where and
 * in what order, and whether a new or resumed VM leaves room for the configured host failures.
 * No ZooKeeper, no files, no clock: the silences come measured ({@link HaWatch}).
 */
public final class HaPlanner {

  private HaPlanner() {}

  /** {@code vm} restarts on {@code toHost}: owner and epoch move from {@code fromHost} at {@code epoch}. */
  public record Restart(String vm, String fromHost, String toHost, long epoch, HaPriority priority) {}

  /** {@code vm} of a dead host could not be placed this round. */
  public record Unplaced(String vm, String reason) {}

  /** The round's restarts, in order, and the VMs left for a later round. */
  public record Plan(List<Restart> restarts, List<Unplaced> unplaced) {}

  /**
   * How long a host that is not live in ZooKeeper has been silent, by this coordinator's clock:
   * the shorter of how long its node has been gone and how long its datastore heartbeat has not
   * changed (a host that still writes its heartbeat is alive, cut off from ZooKeeper only).
   */
  public record Silence(long sessionGoneMillis, long heartbeatSilentMillis) {
    long millis() {
      return Math.min(sessionGoneMillis, heartbeatSilentMillis);
    }
  }

  /** Hosts that are not live and have been silent (both witnesses) for at least {@code timeoutMillis}. */
  public static Set<String> deadHosts(ClusterView view, Map<String, Silence> silences, long timeoutMillis) {
    Set<String> dead = new TreeSet<>();
    silences.forEach((host, silence) -> {
      if (!view.isUp(host) && silence.millis() >= timeoutMillis) {
        dead.add(host);
      }
    });
    return dead;
  }

  /** HIGH first; UNSPECIFIED (records from before priorities) counts as MEDIUM. */
  static int rank(HaPriority p) {
    return switch (p) {
      case HA_PRIORITY_HIGH -> 0;
      case HA_PRIORITY_MEDIUM, HA_PRIORITY_UNSPECIFIED, UNRECOGNIZED -> 1;
      case HA_PRIORITY_LOW -> 2;
      case HA_PRIORITY_DISABLED -> 3;
    };
  }

  /**
   * The restarts of this round: the VMs of {@code dead} hosts that should run (desired power
   * running, priority not disabled, no migration in flight), by priority then name, each placed
   * by {@code placement} on the view as the earlier restarts of the round leave it. At most
   * {@code perHost} restarts go to one host and {@code total} in all; the rest wait for the next
   * round (as do VMs no host has room for).
   */
  public static Plan plan(ClusterView view, Set<String> dead, VmPlacement placement, int perHost, int total) {
    List<VmRecord> candidates = view.vms().values().stream()
        .filter(v -> dead.contains(v.getOwnerHost()))
        .filter(v -> v.getDesiredPower() == PowerState.POWER_RUNNING)
        .filter(v -> v.getHaPriority() != HaPriority.HA_PRIORITY_DISABLED)
        .filter(v -> !migrating(view, v))
        .sorted(Comparator.comparingInt((VmRecord v) -> rank(v.getHaPriority())).thenComparing(v -> v.getSpec().getName()))
        .toList();
    List<Restart> restarts = new ArrayList<>();
    List<Unplaced> unplaced = new ArrayList<>();
    Map<String, Integer> toHost = new HashMap<>();
    ClusterView now = view;
    for (VmRecord vm : candidates) {
      if (restarts.size() >= total) {
        break;
      }
      String name = vm.getSpec().getName();
      ClusterView round = now;
      // Hosts that took their share this round are hidden from placement for the rest of it.
      Map<String, HostRecord> open = new HashMap<>(round.liveHosts());
      toHost.forEach((h, n) -> {
        if (n >= perHost) {
          open.remove(h);
        }
      });
      Planner.Result placed = placement.place(new ClusterView(open, round.inventory(), round.vms(), round.migrations(),
          round.nowMillis()), vm.getSpec());
      if (!placed.ok()) {
        unplaced.add(new Unplaced(name, placed.refusal()));
        continue;
      }
      restarts.add(new Restart(name, vm.getOwnerHost(), placed.value(), vm.getEpoch(), vm.getHaPriority()));
      toHost.merge(placed.value(), 1, Integer::sum);
      Map<String, VmRecord> vms = new HashMap<>(now.vms());
      vms.put(name, vm.toBuilder().setOwnerHost(placed.value()).setEpoch(vm.getEpoch() + 1).build());
      now = new ClusterView(now.liveHosts(), now.inventory(), vms, now.migrations(), now.nowMillis());
    }
    return new Plan(restarts, unplaced);
  }

  private static boolean migrating(ClusterView view, VmRecord vm) {
    MigrationRecord m = view.migrations().get(vm.getCurrentMigration());
    return !vm.getCurrentMigration().isEmpty() && m != null && ClusterView.isActive(m);
  }

  /**
   * Admission control: why placing {@code needBytes} more (a VM created or resumed) would leave
   * too little memory to restart every VM after {@code failoverHosts} host failures; empty if it
   * fits. The reserve is the memory of the largest {@code failoverHosts} active hosts (the worst
   * case); what must fit in the rest is every VM that should run, wherever it is now.
   */
  public static Optional<String> refuseAdmission(ClusterView view, int failoverHosts, long needBytes, String vmName) {
    List<Long> capacities = activeCapacities(view);
    if (!enforced(capacities, failoverHosts)) {
      return Optional.empty();
    }
    long capacity = capacities.stream().mapToLong(Long::longValue).sum();
    long reserved = capacities.stream().limit(failoverHosts).mapToLong(Long::longValue).sum();
    long committed = committedBytes(view);
    long usable = capacity - reserved;
    if (committed + needBytes <= usable) {
      return Optional.empty();
    }
    String hosts = failoverHosts == 1 ? "1 host failure" : failoverHosts + " host failures";
    return Optional.of("admission control keeps room for " + hosts + " (ferry ha config --failover-hosts): of "
        + Sizes.formatBytes(capacity) + " on " + capacities.size() + " active hosts, " + Sizes.formatBytes(reserved)
        + " is reserved for failover and " + Sizes.formatBytes(committed) + " is committed to VMs; "
        + vmName + " needs " + Sizes.formatBytes(needBytes) + " more than the " + Sizes.formatBytes(Math.max(0, usable - committed))
        + " left");
  }

  /** Memory of every VM that should run (running or to be restarted), wherever it is. */
  static long committedBytes(ClusterView view) {
    return view.vms().values().stream().filter(v -> v.getDesiredPower() == PowerState.POWER_RUNNING)
        .mapToLong(v -> v.getSpec().getMemoryBytes()).sum();
  }

  /**
   * Admission control holds only with more active hosts than failures to survive: with as many
   * or fewer, no failover is possible anyway, and reserving every host would refuse every VM (a
   * one-host development cluster).
   */
  static boolean enforced(List<Long> activeCapacities, int failoverHosts) {
    return failoverHosts > 0 && activeCapacities.size() > failoverHosts;
  }

  /** Active live hosts' memory, largest first. */
  private static List<Long> activeCapacities(ClusterView view) {
    return view.liveHosts().values().stream().filter(h -> h.getState() == HostState.HOST_ACTIVE)
        .map(HostRecord::getMemoryBytes).sorted(Comparator.reverseOrder()).toList();
  }

  /** Memory kept back for failover, and what remains admissible for new VMs (for {@code ferry ha config}). */
  public static long[] reserveAndAdmissible(ClusterView view, int failoverHosts) {
    List<Long> capacities = activeCapacities(view);
    long capacity = capacities.stream().mapToLong(Long::longValue).sum();
    long reserved = enforced(capacities, failoverHosts)
        ? capacities.stream().limit(failoverHosts).mapToLong(Long::longValue).sum() : 0;
    return new long[] {reserved, Math.max(0, capacity - reserved - committedBytes(view))};
  }
}
