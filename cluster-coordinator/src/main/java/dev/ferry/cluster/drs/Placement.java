package dev.ferry.cluster.drs;

import dev.ferry.common.Sizes;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * Chooses a host for one VM: {@code vm create} without a host, HA restarts, maintenance
 * evacuation. Hard: the host is active, has the VM's memory free and its CPU demand within
 * capacity, keeps every must, affinity and anti-affinity rule. Among the hosts that fit, the one
 * whose load/capacity is lowest after placing wins, a should rule counting as {@link #SHOULD_BONUS}
 * of load and the memory in use as a tenth of its weight (the second signal); ties go by host id.
 */
public final class Placement {
  /** A should rule's weight, in load/capacity: a preferred host wins unless 25 points busier. */
  static final double SHOULD_BONUS = 0.25;
  static final double MEMORY_WEIGHT = 0.1;
  private static final int NAMED_IN_REASON = 5;

  /** Where a VM goes, or why nowhere. */
  public sealed interface Result permits Placed, NoHost {}

  public record Placed(String vm, String host, String reason) implements Result {}

  public record NoHost(String vm, String reason) implements Result {}

  private Placement() {}

  /**
   * A host for {@code vm}: a new VM (its host ignored), or one of the snapshot's to place again
   * (its current host is never chosen). Migration limits do not apply: the caller decides whether
   * this is a migration.
   */
  public static Result place(Snapshot snapshot, Vm vm) {
    return placeAll(snapshot, List.of(vm)).get(0);
  }

  /**
   * Hosts for several VMs in this order (HA: by restart priority), each placement counting for
   * the next: two VMs of an anti-affinity rule never land together, memory is never promised twice.
   */
  public static List<Result> placeAll(Snapshot snapshot, List<Vm> vms) {
    ClusterState s = new ClusterState(snapshot, vms);
    List<Result> results = new ArrayList<>(vms.size());
    for (Vm vm : vms) {
      int index = s.vmIndex.get(vm.name());
      int host = best(s, index, false);
      if (host < 0) {
        results.add(new NoHost(vm.name(), whyNoHost(s, index, false)));
      } else {
        String reason = describe(s, index, host);
        s.move(index, host);
        results.add(new Placed(vm.name(), s.hosts[host].id(), reason));
      }
    }
    return results;
  }

  /** The best host that fits, or -1. */
  static int best(ClusterState s, int vm, boolean withLimits) {
    int best = -1;
    double bestScore = Double.MAX_VALUE;
    for (int h = 0; h < s.hosts.length; h++) {
      if (!s.active(h) || Fit.refuse(s, vm, h, withLimits) != null) {
        continue;
      }
      double score = score(s, vm, h);
      if (score < bestScore || (score == bestScore && s.hosts[h].id().compareTo(s.hosts[best].id()) < 0)) {
        best = h;
        bestScore = score;
      }
    }
    return best;
  }

  private static double score(ClusterState s, int vm, int h) {
    Vm v = s.vms[vm];
    Host host = s.hosts[h];
    double cpu = (s.cpuUsed[h] + v.cpuDemandCores()) / host.cpuCapacityCores();
    double memory = (double) (s.memUsed[h] + v.memoryBytes()) / host.memoryCapacityBytes();
    return cpu + MEMORY_WEIGHT * memory - (prefers(s, vm, h) ? SHOULD_BONUS : 0);
  }

  /** A should rule names this host for the VM. */
  static boolean prefers(ClusterState s, int vm, int h) {
    List<Rule.VmHost> rules = s.should[vm];
    if (rules == null) {
      return false;
    }
    for (Rule.VmHost r : rules) {
      if (r.host().equals(s.hosts[h].id())) {
        return true;
      }
    }
    return false;
  }

  private static String describe(ClusterState s, int vm, int h) {
    Vm v = s.vms[vm];
    Host host = s.hosts[h];
    double after = (s.cpuUsed[h] + v.cpuDemandCores()) / host.cpuCapacityCores();
    return String.format(Locale.ROOT, "%s at %s of %s cores with %s, %s free%s", host.id(), Fit.percent(after),
        Fit.cores(host.cpuCapacityCores()), v.name(), Sizes.formatBytes(s.memoryFree(h) - v.memoryBytes()),
        prefers(s, vm, h) ? " (should rule)" : "");
  }

  /**
   * Why no host fits, naming the constraint an operator can act on: a must rule's host, memory
   * on every host, or each host's first refusal.
   */
  static String whyNoHost(ClusterState s, int vm, boolean withLimits) {
    Vm v = s.vms[vm];
    if (s.must[vm] != null) {
      for (Rule.VmHost r : s.must[vm]) {
        Integer h = s.hostIndex.get(r.host());
        if (h == null) {
          return "must rule " + r.name() + " keeps " + v.name() + " on " + r.host() + ", which is not in the cluster";
        }
        Fit.Refusal refusal = Fit.refuse(s, vm, h, withLimits);
        if (!s.active(h)) {
          return "must rule " + r.name() + " keeps " + v.name() + " on " + r.host() + ", which is "
              + s.hosts[h].state().describe();
        }
        if (refusal != null) {
          return "must rule " + r.name() + " keeps " + v.name() + " on " + r.host() + ": " + refusal.text();
        }
      }
    }
    List<Integer> candidates = new ArrayList<>();
    List<Fit.Refusal> refusals = new ArrayList<>();
    for (int h = 0; h < s.hosts.length; h++) {
      if (s.active(h) && s.location(vm) != h) {
        candidates.add(h);
        refusals.add(Fit.refuse(s, vm, h, withLimits));
      }
    }
    if (candidates.isEmpty()) {
      return s.location(vm) < 0 ? "no host is active (each is in or entering maintenance, or down)"
          : "no other host is active";
    }
    if (refusals.stream().allMatch(r -> r != null && r.why() == Fit.Why.MEMORY)) {
      List<Integer> byFree = new ArrayList<>(candidates);
      byFree.sort(Comparator.comparingLong((Integer h) -> -s.memoryFree(h)).thenComparing(h -> s.hosts[h].id()));
      return "no host has " + Sizes.formatBytes(v.memoryBytes()) + " free: " + byFree.stream().limit(NAMED_IN_REASON)
          .map(h -> s.hosts[h].id() + " " + Sizes.formatBytes(Math.max(0, s.memoryFree(h))))
          .collect(Collectors.joining(", ")) + more(byFree.size());
    }
    List<String> texts = new ArrayList<>();
    for (Fit.Refusal r : refusals) {
      if (r != null && texts.size() < NAMED_IN_REASON) {
        texts.add(r.text());
      }
    }
    return "no host fits " + v.name() + ": " + String.join("; ", texts) + more(refusals.size());
  }

  private static String more(int count) {
    return count > NAMED_IN_REASON ? " and " + (count - NAMED_IN_REASON) + " more" : "";
  }
}
