package dev.ferry.cluster.coordinator;

import dev.ferry.cluster.drs.Host;
import dev.ferry.cluster.drs.Placement;
import dev.ferry.cluster.drs.Snapshot;
import dev.ferry.cluster.drs.Vm;
import dev.ferry.proto.GuestSpec;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.curator.framework.CuratorFramework;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where a VM without a chosen host goes ({@code vm create} without {@code --host}, HA restarts),
 * decided by DRS's {@link Placement} over the same snapshot its balancing uses: capacity-normalised
 * measured CPU, memory as a hard limit, the rules, no host in or entering maintenance. A host that
 * has stopped reporting is no candidate. The new VM's CPU demand is its spec's (load x vCPUs).
 */
final class DrsPlacement implements VmPlacement {
  private static final Logger LOG = LoggerFactory.getLogger(DrsPlacement.class);

  private final CuratorFramework zk;
  private final ClusterCaches caches;
  private final Planner.Limits limits;

  DrsPlacement(CuratorFramework zk, ClusterCaches caches, Planner.Limits limits) {
    this.zk = zk;
    this.caches = caches;
    this.limits = limits;
  }

  @Override
  public Planner.Result place(ClusterView view, GuestSpec spec) {
    try {
      return placeByDrs(view, spec);
    } catch (Exception e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      // The settings or rules could not be read, or a record holds what DRS refuses: the plain
      // placement still keeps memory and maintenance.
      LOG.warn("DRS placement of {} falls back to the least loaded host: {}", spec.getName(), e.toString());
      return Planner.leastLoaded(view, spec);
    }
  }

  private Planner.Result placeByDrs(ClusterView view, GuestSpec spec) throws Exception {
    Snapshot all = DrsRound.snapshot(view, DrsSettings.read(zk), DrsSettings.readRules(zk), caches.loads(), limits,
        System.currentTimeMillis());
    Set<String> reporting = all.hosts().stream().map(Host::id).filter(id -> view.silence(id).isEmpty())
        .collect(Collectors.toSet());
    List<Vm> others = all.vms().stream().filter(v -> !v.name().equals(spec.getName()))
        .map(v -> v.host() != null && !reporting.contains(v.host()) ? v.onHost(null) : v).toList();
    Snapshot snapshot = new Snapshot(all.hosts().stream().filter(h -> reporting.contains(h.id())).toList(), others,
        all.rules(), all.config(), all.inFlight().stream()
            .filter(f -> reporting.contains(f.from()) && reporting.contains(f.to())).toList(), all.nowMillis());
    double demand = Math.min(1024, spec.getWorkload().getCpuLoad() * Math.max(1, spec.getVcpus()));
    Vm vm = new Vm(spec.getName(), null, demand, Math.max(1, spec.getMemoryBytes()),
        Math.max(0, spec.getWorkload().getDirtyRateBytesPerS()), null, false);
    Placement.Result result = Placement.place(snapshot, vm);
    if (result instanceof Placement.Placed placed) {
      LOG.info("placement: {} goes to {}: {}", spec.getName(), placed.host(), placed.reason());
      return Planner.Result.accepted(placed.host());
    }
    return Planner.Result.refused(((Placement.NoHost) result).reason());
  }
}
