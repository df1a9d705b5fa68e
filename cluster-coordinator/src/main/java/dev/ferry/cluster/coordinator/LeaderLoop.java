package dev.ferry.cluster.coordinator;

import dev.ferry.cluster.model.MigrationStates;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.proto.EventKind;
import dev.ferry.proto.HostInventory;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.UnaryOperator;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.zookeeper.data.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The leader's round, on one {@code coordinator} thread: every 500 ms and whenever a record
 * changes, the leader (once its caches have loaded) plans from the view ({@link Planner#plan})
 * and applies the actions with fenced, version-checked writes. A standby's rounds do nothing.
 * What a round changes (a migration's state, a host up or down, this coordinator taking the lead)
 * goes into the event log after the write.
 */
final class LeaderLoop implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(LeaderLoop.class);
  private static final long RECONCILE_EVERY_MILLIS = 500;

  private final String id;
  private final Planner.Limits limits;
  private final CuratorFramework zk;
  private final ClusterCaches caches;
  private final Leadership leadership;
  private final FencedUpdates updates;
  private final EventLog events;
  /** The epoch whose take-over is in the event log: only this thread reads and writes it. */
  private long announcedEpoch = -1;
  /** HA's step of the round, or null when HA is off (no --datastore to read heartbeats from). */
  private final HaRestarts ha;
  /** DRS's step of the round: balance, rules and maintenance drains. */
  private final DrsRound drs;
  private final ScheduledExecutorService loop = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "coordinator");
    t.setDaemon(true);
    return t;
  });
  private volatile boolean closed;

  LeaderLoop(String id, Planner.Limits limits, CuratorFramework zk, ClusterCaches caches, Leadership leadership,
      FencedUpdates updates, EventLog events, HaRestarts ha, DrsRound drs) {
    this.ha = ha;
    this.drs = drs;
    this.id = id;
    this.limits = limits;
    this.zk = zk;
    this.caches = caches;
    this.leadership = leadership;
    this.updates = updates;
    this.events = events;
  }

  void start() {
    loop.scheduleWithFixedDelay(this::reconcileSafely, RECONCILE_EVERY_MILLIS, RECONCILE_EVERY_MILLIS,
        TimeUnit.MILLISECONDS);
  }

  /** A round soon: something changed. */
  void wake() {
    if (!closed) {
      loop.execute(this::reconcileSafely);
    }
  }

  private void reconcileSafely() {
    try {
      if (!closed && leadership.leading() && caches.loaded()) {
        reconcile();
      }
    } catch (Leadership.DeposedException e) {
      LOG.warn(e.getMessage());
    } catch (Exception e) {
      LOG.warn("coordinator {}: round failed: {}", id, e.toString());
    }
  }

  private void reconcile() throws Exception {
    announceLeadership();
    for (Planner.Action action : Planner.plan(caches.view(), limits)) {
      apply(action);
    }
    if (ha != null) {
      // after the round's writes: a migration of a dead source is aborted first
      for (HaPlanner.Restart r : ha.round(caches.view())) {
        events.append(dev.ferry.proto.EventKind.EVENT_HA_RESTART, EventLog.Subject.vm(r.vm(), r.toHost()),
            HaRestarts.describe(r));
      }
    }
    if (drs != null) {
      drs.round(caches.view()); // after HA: a dead host's VMs are placed before anything is balanced
    }
  }

  private void announceLeadership() {
    Leadership.Fence fence = leadership.fence();
    if (fence == null || fence.epoch() == announcedEpoch) {
      return;
    }
    String previous = fence.previousLeader();
    String message = "coordinator " + id + " took the lead (epoch " + fence.epoch() + ")"
        + (previous.isEmpty() ? "" : previous.equals(id) ? ", again" : " from " + previous);
    if (events.append(EventKind.EVENT_COORDINATOR_LEADING, EventLog.Subject.NONE, message)) {
      announcedEpoch = fence.epoch();
    }
  }

  /** Every change of a migration's state goes through {@link MigrationStates#move}: illegal moves write nothing. */
  private void apply(Planner.Action action) throws Exception {
    long now = System.currentTimeMillis();
    if (action instanceof Planner.Admit a) {
      if (moveMigration(a.migrationId(), MigrationState.MIGRATION_QUEUED, MigrationState.MIGRATION_RUNNING, "", now)) {
        LOG.info("migration {} admitted", a.migrationId());
      }
    } else if (action instanceof Planner.Abort a) {
      updateMigration(a.migrationId(), m -> m.getCommitOpId().isEmpty()
          ? MigrationStates.move(m, MigrationState.MIGRATION_ABORTED, a.reason(), now) : m);
    } else if (action instanceof Planner.Cancel c) {
      moveMigration(c.migrationId(), MigrationState.MIGRATION_QUEUED, MigrationState.MIGRATION_CANCELLED,
          "cancelled by the operator", now);
    } else if (action instanceof Planner.Complete c) {
      updateMigration(c.migrationId(), m -> MigrationStates.move(m, MigrationState.MIGRATION_COMPLETED, c.reason(), now));
    } else if (action instanceof Planner.Settle st) {
      updateMigration(st.migrationId(), m -> MigrationStates.move(m, st.to(), st.reason(), now));
    } else if (action instanceof Planner.ClearVmMigration c) {
      updates.vm(c.vm(), v -> v.getCurrentMigration().equals(c.migrationId())
          ? v.toBuilder().setCurrentMigration("").build() : v);
    } else if (action instanceof Planner.MarkHost h) {
      markHost(h.hostId(), h.up(), now);
    } else if (action instanceof Planner.Forget f) {
      forget(f.migrationId());
    } else if (action instanceof Planner.MaintenanceReached r) {
      maintenanceReached(r.hostId(), now);
    }
  }

  /** Moves the record from {@code from} (only) to {@code to}; true if it moved. */
  private boolean moveMigration(String migrationId, MigrationState from, MigrationState to, String reason, long now)
      throws Exception {
    return updateMigration(migrationId, m -> m.getState() == from ? MigrationStates.move(m, to, reason, now) : m);
  }

  /** A fenced update of the migration's record; a change of its state then goes into the event log. */
  private boolean updateMigration(String migrationId, UnaryOperator<MigrationRecord> change) throws Exception {
    AtomicReference<MigrationRecord> before = new AtomicReference<>();
    AtomicReference<MigrationRecord> after = new AtomicReference<>();
    boolean written = updates.migration(migrationId, m -> {
      before.set(m);
      after.set(change.apply(m));
      return after.get();
    });
    // The last call of the change is the one that was written (a retry reads and changes again).
    if (written && before.get().getState() != after.get().getState()) {
      migrationEvent(after.get());
    }
    return written;
  }

  private void migrationEvent(MigrationRecord m) {
    String move = "migration of " + m.getVm() + " from " + m.getSourceHost() + " to " + m.getTargetHost();
    String reason = m.getReason().isEmpty() ? "" : ": " + m.getReason();
    switch (m.getState()) {
      case MIGRATION_RUNNING -> events.append(EventKind.EVENT_MIGRATION_STARTED, EventLog.Subject.migration(m),
          move + " started");
      case MIGRATION_COMPLETED -> events.append(EventKind.EVENT_MIGRATION_COMPLETED, EventLog.Subject.migration(m),
          move + " completed" + pause(m) + reason);
      case MIGRATION_ABORTED -> events.append(EventKind.EVENT_MIGRATION_ABORTED, EventLog.Subject.migration(m),
          move + " aborted" + reason + pause(m));
      case MIGRATION_CANCELLED -> events.append(EventKind.EVENT_MIGRATION_CANCELLED, EventLog.Subject.migration(m),
          move + " cancelled" + reason);
      default -> { } // queued, unknown: not an outcome yet
    }
  }

  /** The guest's pause, when the source reported one. */
  private static String pause(MigrationRecord m) {
    if (!m.hasReport() || m.getReport().getDowntimeNs() == 0) {
      return "";
    }
    return String.format(Locale.ROOT, " (paused %.1f ms)", m.getReport().getDowntimeNs() / 1e6);
  }

  private void forget(String migrationId) throws Exception {
    Stat stat = zk.checkExists().forPath(ZkPaths.migration(migrationId));
    if (stat != null) {
      leadership.write(List.of(zk.transactionOp().delete().withVersion(stat.getVersion())
          .forPath(ZkPaths.migration(migrationId))));
    }
  }

  /** Only from entering: an exit meanwhile wins. */
  private void maintenanceReached(String hostId, long now) throws Exception {
    if (updates.inventory(hostId, h -> h.getMaintenance() == dev.ferry.proto.MaintenanceState.MAINTENANCE_ENTERING
        ? h.toBuilder().setMaintenance(dev.ferry.proto.MaintenanceState.MAINTENANCE_IN).setMaintenanceSinceMs(now)
            .clearBlocked().build() : h)) {
      LOG.info("host {} is in maintenance", hostId);
      events.append(EventKind.EVENT_MAINTENANCE_ENTERED, EventLog.Subject.host(hostId),
          "host " + hostId + " is in maintenance (no VM runs on it)");
    }
  }

  private void markHost(String hostId, boolean up, long now) throws Exception {
    String path = ZkPaths.inventory(hostId);
    Stat stat = new Stat();
    HostInventory.Builder record = HostInventory.newBuilder();
    try {
      // The operator's maintenance (and the drain's notes) stay as they are: only up/down changes here.
      record = Records.inventory(path, zk.getData().storingStatIn(stat).forPath(path)).toBuilder();
    } catch (org.apache.zookeeper.KeeperException.NoNodeException e) {
      stat = null;
    } catch (dev.ferry.cluster.model.RecordException e) {
      LOG.warn("{}; writing it anew", e.getMessage());
    }
    record.setFormatVersion(Records.FORMAT).setHostId(hostId).setUp(up).setLastSeenMs(now).setDownSinceMs(up ? 0 : now);
    boolean known = stat != null;
    if (stat == null) {
      leadership.write(List.of(zk.transactionOp().create().forPath(path, Records.bytes(record.build()))));
    } else {
      leadership.write(List.of(zk.transactionOp().setData().withVersion(stat.getVersion())
          .forPath(path, Records.bytes(record.build()))));
    }
    if (up) {
      LOG.info("host {} is up", hostId);
      events.append(EventKind.EVENT_HOST_JOINED, EventLog.Subject.host(hostId),
          "host " + hostId + (known ? " is back" : " joined the cluster"));
    } else {
      LOG.warn("host {} is down (its VMs stay where they are until HA decides)", hostId);
      events.append(EventKind.EVENT_HOST_LOST, EventLog.Subject.host(hostId),
          "host " + hostId + " was lost (its ZooKeeper session ended)");
    }
  }

  @Override
  public void close() {
    closed = true;
    loop.shutdownNow();
  }
}
