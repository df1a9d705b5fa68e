package dev.ferry.cluster.coordinator;

import dev.ferry.cluster.drs.Balancer;
import dev.ferry.cluster.drs.DrsConfig;
import dev.ferry.cluster.drs.Host;
import dev.ferry.cluster.drs.HostState;
import dev.ferry.cluster.drs.InFlight;
import dev.ferry.cluster.drs.Plan;
import dev.ferry.cluster.drs.Recommendation;
import dev.ferry.cluster.drs.Rule;
import dev.ferry.cluster.drs.Snapshot;
import dev.ferry.cluster.drs.Vm;
import dev.ferry.proto.DrsApplyResult;
import dev.ferry.proto.DrsBlocked;
import dev.ferry.proto.DrsMode;
import dev.ferry.proto.DrsRecommendation;
import dev.ferry.proto.DrsStatus;
import dev.ferry.proto.EventKind;
import dev.ferry.proto.HostInventory;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.MaintenanceBlock;
import dev.ferry.proto.MaintenanceState;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.PlacementRule;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.StartMigrationRequest;
import dev.ferry.proto.VmRecord;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * DRS in the leader's loop: a {@link Snapshot} from the records and the load windows, the pure
 * planner ({@link Balancer}), then the moves it marks automatic started as migrations like
 * {@code ferry migrate} starts them (maintenance evacuations in every mode, the rest in full
 * mode). It runs every {@code interval_seconds}, and every round while a host is entering
 * maintenance (the drain goes on as migrations end) or after {@link #soon}. The last plan is kept
 * for {@code ferry drs status|recommendations|apply}. Only the leader's thread calls
 * {@link #round}; the API reads {@link #status} and applies through {@link #apply}.
 */
final class DrsRound {
  private static final Logger LOG = LoggerFactory.getLogger(DrsRound.class);
  /** A VM moved within this long is not moved back to the host it left (the planner's ping-pong guard). */
  static final long RECENT_MOVE_WINDOW_MILLIS = TimeUnit.MINUTES.toMillis(30);

  /** Starts one migration the way the API does (so its checks and refusals are the operator's). */
  @FunctionalInterface
  interface MoveStarter {
    MigrationRecord start(StartMigrationRequest request) throws Exception;
  }

  private final CuratorFramework zk;
  private final ClusterCaches caches;
  private final Planner.Limits limits;
  private final FencedUpdates updates;
  private final EventLog events;
  private final MoveStarter starter;
  private volatile boolean asked = true;
  private long nextRunNanos;
  private volatile DrsStatus status = DrsStatus.getDefaultInstance();
  private volatile List<Recommendation> lastRecommendations = List.of();
  /** Read by the API's threads, counted on the leader's and theirs. */
  private final java.util.concurrent.atomic.AtomicLong movesApplied = new java.util.concurrent.atomic.AtomicLong();

  DrsRound(CuratorFramework zk, ClusterCaches caches, Planner.Limits limits, FencedUpdates updates, EventLog events,
      MoveStarter starter) {
    this.zk = zk;
    this.caches = caches;
    this.limits = limits;
    this.updates = updates;
    this.events = events;
    this.starter = starter;
  }

  /** Plan at the next round (settings, rules or maintenance changed). */
  void soon() {
    asked = true;
  }

  DrsStatus status() {
    return status;
  }

  /** One leader round: plans if it is time, then starts what is automatic. */
  void round(ClusterView view) throws Exception {
    long now = System.nanoTime();
    boolean draining = view.inventory().values().stream()
        .anyMatch(h -> h.getMaintenance() == MaintenanceState.MAINTENANCE_ENTERING);
    if (!asked && !draining && now - nextRunNanos < 0) {
      return;
    }
    asked = false;
    dev.ferry.proto.DrsConfig config = DrsSettings.read(zk);
    nextRunNanos = now + TimeUnit.SECONDS.toNanos(Math.max(DrsSettings.INTERVAL_SECONDS_MIN, config.getIntervalSeconds()));
    Plan plan;
    try {
      plan = Balancer.plan(snapshot(view, config, DrsSettings.readRules(zk), caches.loads(), limits,
          System.currentTimeMillis()));
    } catch (IllegalArgumentException e) {
      LOG.warn("DRS: cannot plan this round: {}", e.getMessage());
      return;
    }
    lastRecommendations = plan.recommendations();
    for (Recommendation r : plan.recommendations()) {
      if (r.automatic()) {
        start(r);
      }
    }
    noteBlocked(view, plan);
    status = DrsStatus.newBuilder().setConfig(config).setSpread(plan.spreadBefore()).setSpreadAfter(plan.spreadAfter())
        .setTargetSpread(plan.targetSpread()).setLastRunMs(System.currentTimeMillis())
        .addAllRecommendations(plan.recommendations().stream().map(DrsRound::toProto).toList())
        .addAllBlocked(plan.blocked().stream().map(b -> DrsBlocked.newBuilder().setVm(b.vm()).setHost(b.host())
            .setReason(b.reason()).build()).toList())
        .setMovesApplied(movesApplied.get()).build();
  }

  /** The operator's {@code ferry drs apply [ID...]}: the given recommendations of the last plan (none: all). */
  DrsApplyResult apply(List<String> ids) {
    DrsApplyResult.Builder result = DrsApplyResult.newBuilder();
    Map<String, Recommendation> byId = new TreeMap<>();
    lastRecommendations.forEach(r -> byId.put(r.id(), r));
    List<String> wanted = ids.isEmpty() ? List.copyOf(byId.keySet()) : ids;
    for (String id : wanted) {
      Recommendation r = byId.get(id);
      if (r == null) {
        result.putRefused(id, "no such recommendation in the last DRS run (see 'ferry drs recommendations')");
        continue;
      }
      try {
        result.addStarted(start(r));
      } catch (Refused e) {
        result.putRefused(id, e.getMessage());
      } catch (Exception e) {
        result.putRefused(id, e.toString());
      }
    }
    soon();
    return result.build();
  }

  private MigrationRecord start(Recommendation r) throws Exception {
    MigrationRecord m;
    try {
      m = starter.start(StartMigrationRequest.newBuilder().setVm(r.vm()).setTargetHost(r.to()).build());
    } catch (Refused e) {
      LOG.info("DRS: {} to {} not started: {}", r.vm(), r.to(), e.getMessage());
      throw e;
    }
    movesApplied.incrementAndGet();
    LOG.info("DRS: {} ({}) -> {}: {}", r.vm(), r.from(), r.to(), r.reason());
    events.append(EventKind.EVENT_DRS_MOVE, new EventLog.Subject(r.vm(), r.from(), m.getId()),
        "DRS moves " + r.vm() + " from " + r.from() + " to " + r.to() + " (" + kind(r.kind()) + "): " + r.reason());
    return m;
  }

  /** What blocks each draining host, in its inventory record (only when it changed: one write). */
  private void noteBlocked(ClusterView view, Plan plan) throws Exception {
    Map<String, List<MaintenanceBlock>> byHost = new HashMap<>();
    for (Plan.Blocked b : plan.blocked()) {
      if (b.kind() == Recommendation.Kind.MANDATORY_MAINTENANCE) {
        byHost.computeIfAbsent(b.host(), h -> new ArrayList<>())
            .add(MaintenanceBlock.newBuilder().setVm(b.vm()).setReason(cut(b.reason())).build());
      }
    }
    for (HostInventory h : view.inventory().values()) {
      if (h.getMaintenance() != MaintenanceState.MAINTENANCE_ENTERING) {
        continue;
      }
      List<MaintenanceBlock> blocked = byHost.getOrDefault(h.getHostId(), List.of());
      if (blocked.size() > 64) {
        blocked = blocked.subList(0, 64);
      }
      if (!blocked.equals(h.getBlockedList())) {
        List<MaintenanceBlock> now = blocked;
        updates.inventory(h.getHostId(), rec -> rec.getMaintenance() == MaintenanceState.MAINTENANCE_ENTERING
            ? rec.toBuilder().clearBlocked().addAllBlocked(now).build() : rec);
        for (MaintenanceBlock b : now) {
          if (h.getBlockedList().stream().noneMatch(o -> o.getVm().equals(b.getVm()))) {
            events.append(EventKind.EVENT_MAINTENANCE_BLOCKED, EventLog.Subject.vm(b.getVm(), h.getHostId()),
                b.getVm() + " cannot leave " + h.getHostId() + ": " + b.getReason());
          }
        }
      }
    }
  }

  private static String cut(String s) {
    return s.length() <= 400 ? s : s.substring(0, 400);
  }

  static String kind(Recommendation.Kind kind) {
    return switch (kind) {
      case BALANCE -> "balance";
      case MANDATORY_MAINTENANCE -> "maintenance";
      case MANDATORY_RULE -> "rule";
    };
  }

  private static DrsRecommendation toProto(Recommendation r) {
    return DrsRecommendation.newBuilder().setId(r.id()).setVm(r.vm()).setFromHost(r.from()).setToHost(r.to())
        .setKind(kind(r.kind())).setReason(r.reason()).setAutomatic(r.automatic()).build();
  }

  /**
   * The cluster as DRS sees it. Hosts: every live one (down hosts are HA's: their VMs run nowhere
   * here), with its capacity, its CPU use as the sum of its VMs' windowed use (on one machine every
   * agent's OS figure is the whole machine's; the VMs' own threads are what differs) and the memory
   * its VMs hold. VMs: running ones on their owner, with their windowed CPU and dirty rate, when and
   * from where they last moved, and whether a migration of them is under way.
   */
  static Snapshot snapshot(ClusterView view, dev.ferry.proto.DrsConfig config, List<PlacementRule> rules,
      LoadWindows.Snapshot loads, Planner.Limits limits, long nowMillis) {
    Map<String, Double> cpuByHost = new HashMap<>();
    Map<String, Long> memoryByHost = new HashMap<>();
    Map<String, Vm.LastMove> lastMoves = lastMoves(view);
    List<Vm> vms = new ArrayList<>();
    for (VmRecord v : view.vms().values()) {
      String name = v.getSpec().getName();
      String host = v.getOwnerHost();
      boolean running = v.getPower() == PowerState.POWER_RUNNING || v.getDesiredPower() == PowerState.POWER_RUNNING;
      boolean placed = running && !host.isEmpty() && view.isUp(host);
      LoadWindows.VmLoad load = loads.vms().get(name);
      double cores = load == null ? 0 : Math.max(0, Math.min(1024, load.cpuCores()));
      long dirty = load == null ? 0 : Math.max(0, load.dirtyRateBytesPerS());
      vms.add(new Vm(name, placed ? host : null, cores, Math.max(1, v.getSpec().getMemoryBytes()), dirty,
          lastMoves.get(name), !v.getCurrentMigration().isEmpty()));
      if (placed) {
        cpuByHost.merge(host, cores, Double::sum);
        memoryByHost.merge(host, v.getSpec().getMemoryBytes(), Long::sum);
      }
    }
    List<Host> hosts = new ArrayList<>();
    for (Map.Entry<String, HostRecord> e : view.liveHosts().entrySet()) {
      String id = e.getKey();
      if (!view.isUp(id)) {
        continue;
      }
      HostRecord r = e.getValue();
      HostInventory inv = view.inventory().get(id);
      HostState state = inv == null ? HostState.ACTIVE : switch (inv.getMaintenance()) {
        case MAINTENANCE_ENTERING -> HostState.ENTERING_MAINTENANCE;
        case MAINTENANCE_IN -> HostState.IN_MAINTENANCE;
        default -> HostState.ACTIVE;
      };
      hosts.add(new Host(id, Math.max(1, r.getCpuCores()), Math.min(4096, cpuByHost.getOrDefault(id, 0.0)),
          Math.max(1, r.getMemoryBytes()), memoryByHost.getOrDefault(id, 0L), state));
    }
    List<String> hostIds = hosts.stream().map(Host::id).toList();
    List<InFlight> inFlight = new ArrayList<>();
    for (MigrationRecord m : view.migrations().values()) {
      if (ClusterView.isActive(m) && hostIds.contains(m.getSourceHost()) && hostIds.contains(m.getTargetHost())) {
        inFlight.add(new InFlight(m.getVm(), m.getSourceHost(), m.getTargetHost()));
      }
    }
    // A VM whose host is not in the snapshot runs nowhere for DRS; a last move names any host.
    List<Vm> known = vms.stream().map(v -> v.host() != null && !hostIds.contains(v.host()) ? v.onHost(null) : v).toList();
    DrsConfig drs = new DrsConfig(mode(config.getMode()), Math.max(1, Math.min(5, config.getThreshold())),
        new DrsConfig.Limits(limits.outPerHost(), limits.inPerHost(), limits.cluster()), RECENT_MOVE_WINDOW_MILLIS);
    return new Snapshot(hosts, known, rules.stream().map(DrsRound::rule).toList(), drs, inFlight, nowMillis);
  }

  /** Each VM's last completed move (the newest one the records still hold). */
  private static Map<String, Vm.LastMove> lastMoves(ClusterView view) {
    Map<String, Vm.LastMove> last = new HashMap<>();
    for (MigrationRecord m : view.migrations().values()) {
      if (m.getState() != MigrationState.MIGRATION_COMPLETED || m.getEndedMs() <= 0) {
        continue;
      }
      Vm.LastMove seen = last.get(m.getVm());
      if (seen == null || seen.atMillis() < m.getEndedMs()) {
        last.put(m.getVm(), new Vm.LastMove(m.getEndedMs(), m.getSourceHost()));
      }
    }
    return last;
  }

  private static DrsConfig.Mode mode(DrsMode mode) {
    return switch (mode) {
      case DRS_MANUAL -> DrsConfig.Mode.MANUAL;
      case DRS_PARTIAL -> DrsConfig.Mode.PARTIAL;
      default -> DrsConfig.Mode.FULL;
    };
  }

  private static Rule rule(PlacementRule r) {
    return switch (r.getKind()) {
      case RULE_AFFINITY -> new Rule.Affinity(r.getName(), r.getVmsList());
      case RULE_ANTI_AFFINITY -> new Rule.AntiAffinity(r.getName(), r.getVmsList());
      case RULE_VM_HOST_MUST -> new Rule.VmHost(r.getName(), r.getVms(0), r.getHost(), true);
      default -> new Rule.VmHost(r.getName(), r.getVms(0), r.getHost(), false);
    };
  }
}
