package dev.ferry.cluster.coordinator;

import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmRecord;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.apache.curator.framework.CuratorFramework;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The leader's HA step, once a round: measures the silences ({@link HaWatch}), finds the dead
 * hosts and their VMs' restarts ({@link HaPlanner}), and moves each VM's ownership in ZooKeeper
 * with one fenced multi-op. The new owner boots the guest from its disk (a restart: no guest runs
 * it, so the owner boots it), taking the datastore lease at the new epoch first.
 *
 * <p>Why a VM never runs twice: the multi-op checks the VM record's version (so a restart, a
 * migration's commit or an operator's change in between makes it fail, and a VM moves at most
 * once per epoch) and creates and deletes the dead host's ephemeral node in the same transaction,
 * so it fails if that host has registered again. An agent boots only after confirming, with its
 * own node registered and a synced read, that the record still names it (ClusterMember), and its
 * guests stopped by themselves half a timeout after its last proof of life (Isolation).
 */
final class HaRestarts {
  private static final Logger LOG = LoggerFactory.getLogger(HaRestarts.class);

  /** HA's settings from the coordinator's command line. */
  record Config(long timeoutMillis, Path datastore) {}

  private final CuratorFramework zk;
  private final Leadership leadership;
  private final Config config;
  private final HaWatch watch;
  private final VmPlacement placement;
  private final Planner.Limits limits;
  private volatile Set<String> dead = Set.of();
  private final Set<String> announcedDead = new TreeSet<>();
  /** "vm: reason" of the VMs that could not be placed, each logged once. */
  private final Set<String> announcedUnplaced = new TreeSet<>();

  HaRestarts(CuratorFramework zk, Leadership leadership, Config config, VmPlacement placement, Planner.Limits limits) {
    this.zk = zk;
    this.leadership = leadership;
    this.config = config;
    this.watch = new HaWatch(dev.ferry.storage.Datastore.open(config.datastore()).heartbeats());
    this.placement = placement;
    this.limits = limits;
  }

  long timeoutMillis() {
    return config.timeoutMillis();
  }

  /** The hosts judged dead at the last round. */
  Set<String> dead() {
    return dead;
  }

  /** One HA round over {@code view}; called by the leader only. Returns the restarts it wrote. */
  List<HaPlanner.Restart> round(ClusterView view) throws Exception {
    Map<String, HaPlanner.Silence> silences = watch.observe(view, System.nanoTime());
    Set<String> nowDead = HaPlanner.deadHosts(view, silences, config.timeoutMillis());
    dead = Set.copyOf(nowDead);
    announcedDead.retainAll(nowDead);
    for (String host : nowDead) {
      if (announcedDead.add(host)) {
        HaPlanner.Silence s = silences.get(host);
        LOG.warn("HA: host {} is dead: no ZooKeeper session for {} ms, datastore heartbeat unchanged for {} ms",
            host, s.sessionGoneMillis(), s.heartbeatSilentMillis());
      }
    }
    if (nowDead.isEmpty()) {
      announcedUnplaced.clear();
      return List.of();
    }
    HaPlanner.Plan plan = HaPlanner.plan(view, nowDead, placement, limits.inPerHost(), limits.cluster());
    Set<String> unplaced = new TreeSet<>();
    for (HaPlanner.Unplaced u : plan.unplaced()) {
      String line = u.vm() + ": " + u.reason();
      unplaced.add(line);
      if (!announcedUnplaced.contains(line)) {
        LOG.warn("HA: {} cannot restart yet: {}", u.vm(), u.reason());
      }
    }
    announcedUnplaced.clear();
    announcedUnplaced.addAll(unplaced);
    List<HaPlanner.Restart> done = new java.util.ArrayList<>();
    for (HaPlanner.Restart r : plan.restarts()) {
      if (restart(r)) {
        done.add(r);
        LOG.warn("HA: {}", describe(r));
      }
    }
    return done;
  }

  /** "web-1 (high priority) restarts on host-b at epoch 3: its host host-a died". */
  static String describe(HaPlanner.Restart r) {
    return r.vm() + " (" + r.priority().name().replace("HA_PRIORITY_", "").toLowerCase(java.util.Locale.ROOT)
        + " priority) restarts on " + r.toHost() + " at epoch " + (r.epoch() + 1) + ": its host " + r.fromHost()
        + " died";
  }

  /**
   * Moves {@code r.vm()} to its new host in one fenced multi-op; false if anything changed
   * meanwhile (the next round decides again from the records).
   */
  private boolean restart(HaPlanner.Restart r) throws Exception {
    Stat stat = new Stat();
    VmRecord vm;
    try {
      vm = Records.vm(ZkPaths.vm(r.vm()), zk.getData().storingStatIn(stat).forPath(ZkPaths.vm(r.vm())));
    } catch (KeeperException.NoNodeException e) {
      return false;
    }
    if (!vm.getOwnerHost().equals(r.fromHost()) || vm.getEpoch() != r.epoch()
        || vm.getDesiredPower() != PowerState.POWER_RUNNING) {
      return false;
    }
    String why = "restarted by HA on " + r.toHost() + ": host " + r.fromHost() + " died (" + Instant.now() + ")";
    // Owner and epoch only (and why): power, checkpoint and notes stay the owner's agent's to write.
    VmRecord moved = vm.toBuilder().setOwnerHost(r.toHost()).setEpoch(r.epoch() + 1).setHaRestart(why).build();
    String deadNode = ZkPaths.host(r.fromHost());
    try {
      leadership.write(List.of(
          // Fails the whole transaction if the dead host has registered again meanwhile.
          zk.transactionOp().create().forPath(deadNode, new byte[0]),
          zk.transactionOp().delete().forPath(deadNode),
          zk.transactionOp().setData().withVersion(stat.getVersion()).forPath(ZkPaths.vm(r.vm()), Records.bytes(moved))));
      return true;
    } catch (KeeperException.NodeExistsException e) {
      LOG.info("HA: {} stays: host {} has registered again", r.vm(), r.fromHost());
      return false;
    } catch (KeeperException.BadVersionException e) {
      return false;
    }
  }
}
