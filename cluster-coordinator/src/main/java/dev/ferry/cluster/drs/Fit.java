package dev.ferry.cluster.drs;

import dev.ferry.common.Sizes;
import java.util.List;
import java.util.Locale;

/**
 * Whether a VM may go to a host: the hard constraints, checked in one place for placement,
 * evacuation, rule repairs and balance. Each refusal says why, for the operator.
 */
final class Fit {
  /** Why a host was refused, most fundamental first (the order placement reports them in). */
  enum Why { STATE, MUST, ANTI_AFFINITY, AFFINITY, MEMORY, CPU, LIMIT }

  record Refusal(Why why, String text) {}

  private Fit() {}

  /**
   * Null if {@code vm} may go to {@code host} now; {@code withLimits}: it would be a migration, so
   * the target's incoming limit applies (the source's and the cluster's: {@link #canLeave}).
   */
  static Refusal refuse(ClusterState s, int vm, int host, boolean withLimits) {
    Host h = s.hosts[host];
    Vm v = s.vms[vm];
    if (h.state() != HostState.ACTIVE) {
      return new Refusal(Why.STATE, h.id() + " is " + h.state().describe());
    }
    if (s.location(vm) == host) {
      return new Refusal(Why.STATE, v.name() + " is already on " + h.id());
    }
    List<Rule.VmHost> musts = s.must[vm];
    if (musts != null) {
      for (Rule.VmHost r : musts) {
        if (!r.host().equals(h.id())) {
          return new Refusal(Why.MUST, "must rule " + r.name() + " keeps " + v.name() + " on " + r.host());
        }
      }
    }
    for (int gi : s.groupsOf[vm]) {
      ClusterState.Group g = s.groups[gi];
      if (!g.affinity && g.on(host) > 0) {
        return new Refusal(Why.ANTI_AFFINITY, "anti-affinity rule " + g.rule.name() + ": " + s.memberOn(g, host, vm)
            + " runs on " + h.id());
      }
      if (g.affinity && g.on(host) == 0 && anchor(s, g, vm) >= 0) {
        int anchor = anchor(s, g, vm);
        return new Refusal(Why.AFFINITY, "affinity rule " + g.rule.name() + " keeps " + v.name() + " with "
            + s.vms[anchor].name() + " on " + s.hosts[s.runningOn(anchor)].id());
      }
    }
    long free = s.memoryFree(host);
    if (free < v.memoryBytes()) {
      return new Refusal(Why.MEMORY, h.id() + " has " + Sizes.formatBytes(Math.max(0, free)) + " free, "
          + v.name() + " needs " + Sizes.formatBytes(v.memoryBytes()));
    }
    if (s.cpuUsed[host] + v.cpuDemandCores() > h.cpuCapacityCores() + 1e-9) {
      return new Refusal(Why.CPU, String.format(Locale.ROOT, "%s has %.2f of %s cores free, %s uses %.2f",
          h.id(), Math.max(0, h.cpuCapacityCores() - s.cpuUsed[host]), cores(h.cpuCapacityCores()), v.name(),
          v.cpuDemandCores()));
    }
    if (withLimits) {
      DrsConfig.Limits limits = s.config.limits();
      if (s.incoming[host] >= limits.inPerHost()) {
        return new Refusal(Why.LIMIT, h.id() + " already receives " + s.incoming[host] + " migrations");
      }
    }
    return null;
  }

  /**
   * Another member of an affinity group that the VM must join: one on an active host (members
   * on a host being evacuated are leaving too, so the first of them may go anywhere); -1 if none.
   */
  private static int anchor(ClusterState s, ClusterState.Group g, int vm) {
    for (int m : g.members) {
      int at = s.runningOn(m);
      if (m != vm && at >= 0 && s.active(at)) {
        return m;
      }
    }
    return -1;
  }

  /** Whether the source may send one more migration. */
  static boolean canLeave(ClusterState s, int host) {
    return s.outgoing[host] < s.config.limits().outPerHost() && s.migrations < s.config.limits().cluster();
  }

  static String cores(double cores) {
    return cores == Math.rint(cores) ? String.valueOf((long) cores) : String.format(Locale.ROOT, "%.1f", cores);
  }

  static String percent(double load) {
    return Math.round(load * 100) + " %";
  }
}
