package dev.ferry.cluster.coordinator;

import dev.ferry.cluster.model.MigrationStates;
import dev.ferry.cluster.model.RecordException;
import dev.ferry.cluster.model.Records;
import dev.ferry.agent.cluster.ZkClients;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.agent.cluster.ZkSettings;
import dev.ferry.agent.cluster.ZkUpdate;
import dev.ferry.engine.precopy.MigrationSecrets;
import dev.ferry.engine.precopy.MigrationSettings;
import dev.ferry.proto.CoordinatorEpoch;
import dev.ferry.proto.HostInventory;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.VmRecord;
import com.google.protobuf.ByteString;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;
import java.util.function.UnaryOperator;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cluster's coordinator: one leads (a Curator leader latch), the others stand by. The leader
 * keeps the records true — admits queued migrations under the concurrency limits, aborts those
 * whose source went away, clears finished ones, marks hosts up and down — and serves the
 * operator API; every write it makes is fenced by its epoch ({@link Leadership}). Agents do the
 * moving; the coordinator never touches a guest.
 */
public final class Coordinator implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Coordinator.class);
  private static final long RECONCILE_EVERY_MILLIS = 500;

  private final String id;
  private final ZkSettings zkSettings;
  private final Planner.Limits limits;
  private volatile String apiUrl = "";
  private final ScheduledExecutorService loop = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "coordinator");
    t.setDaemon(true);
    return t;
  });
  private CuratorFramework zk;
  private Leadership leadership;
  private CuratorCache hosts;
  private CuratorCache inventory;
  private CuratorCache vms;
  private CuratorCache migrations;
  private CuratorCache coordinatorNodes;
  private volatile boolean closed;
  /** One count per cache until it has loaded (hosts, inventory, VMs, migrations, coordinator). */
  private final java.util.concurrent.CountDownLatch cachesLoading = new java.util.concurrent.CountDownLatch(5);

  public Coordinator(String id, ZkSettings zkSettings, Planner.Limits limits) {
    this.id = id;
    this.zkSettings = zkSettings;
    this.limits = limits;
  }

  /** Connects, joins the leader election and, while leading, serves; {@code apiUrl} is where its API listens. */
  public Coordinator start(String apiUrl) throws Exception {
    this.apiUrl = apiUrl;
    zk = ZkClients.start(zkSettings);
    if (!zk.blockUntilConnected(30, TimeUnit.SECONDS)) {
      zk.close();
      throw new IllegalStateException("cannot reach ZooKeeper at " + zkSettings.connect() + " within 30 s");
    }
    for (String path : List.of(ZkPaths.HOSTS, ZkPaths.INVENTORY, ZkPaths.VMS, ZkPaths.MIGRATIONS, ZkPaths.COORDINATOR,
        ZkPaths.RETIRED)) {
      try {
        zk.create().creatingParentsIfNeeded().forPath(path);
      } catch (KeeperException.NodeExistsException ignored) {
        // already there
      }
    }
    hosts = cache(ZkPaths.HOSTS);
    inventory = cache(ZkPaths.INVENTORY);
    vms = cache(ZkPaths.VMS);
    migrations = cache(ZkPaths.MIGRATIONS);
    coordinatorNodes = cache(ZkPaths.COORDINATOR);
    leadership = new Leadership(zk, id, apiUrl, this::wake);
    leadership.start();
    loop.scheduleWithFixedDelay(this::reconcileSafely, RECONCILE_EVERY_MILLIS, RECONCILE_EVERY_MILLIS,
        TimeUnit.MILLISECONDS);
    LOG.info("coordinator {} started (ZooKeeper {}, limits {}/{}/{}, API {})", id, zkSettings.connect(),
        limits.outPerHost(), limits.inPerHost(), limits.cluster(), apiUrl);
    return this;
  }

  private CuratorCache cache(String path) {
    CuratorCache cache = CuratorCache.build(zk, path);
    cache.listenable().addListener(org.apache.curator.framework.recipes.cache.CuratorCacheListener.builder()
        .forAll((type, before, after) -> wake())
        .forInitialized(() -> {
          cachesLoading.countDown();
          wake();
        }).build());
    cache.start();
    return cache;
  }

  /** True once every cache holds ZooKeeper's records: before that a view would be partial. */
  private boolean loaded() {
    return cachesLoading.getCount() == 0;
  }

  private void wake() {
    if (!closed) {
      loop.execute(this::reconcileSafely);
    }
  }

  public String id() {
    return id;
  }

  public boolean leading() {
    return leadership != null && leadership.leading();
  }

  /** Where the current leader serves the API (from the epoch record), or empty. */
  public String leaderUrl() {
    if (coordinatorNodes == null) {
      return "";
    }
    return coordinatorNodes.get(ZkPaths.COORDINATOR_EPOCH)
        .map(d -> {
          try {
            CoordinatorEpoch e = Records.epoch(d.getPath(), d.getData());
            return e.getApiUrl();
          } catch (RecordException ex) {
            return "";
          }
        }).orElse("");
  }

  public long epoch() {
    return leadership.epoch();
  }

  /** The records as the caches hold them now. */
  public ClusterView view() {
    return new ClusterView(read(hosts, ZkPaths.HOSTS, Records::host, HostRecord::getHostId),
        read(inventory, ZkPaths.INVENTORY, Records::inventory, HostInventory::getHostId),
        read(vms, ZkPaths.VMS, Records::vm, v -> v.getSpec().getName()),
        read(migrations, ZkPaths.MIGRATIONS, Records::migration, MigrationRecord::getId),
        System.currentTimeMillis());
  }

  private <T> Map<String, T> read(CuratorCache cache, String parent, BiFunction<String, byte[], T> parse,
      java.util.function.Function<T, String> key) {
    Map<String, T> out = new HashMap<>();
    cache.stream().filter(d -> !d.getPath().equals(parent) && d.getData() != null && d.getData().length > 0)
        .forEach(d -> {
          try {
            T record = parse.apply(d.getPath(), d.getData());
            out.put(key.apply(record), record);
          } catch (RecordException e) {
            LOG.warn("coordinator {}: ignoring {}", id, e.getMessage());
          }
        });
    return out;
  }

  // --- The leader's round ----------------------------------------------------------------------

  private void reconcileSafely() {
    try {
      if (!closed && leadership.leading() && loaded()) {
        reconcile();
      }
    } catch (Leadership.DeposedException e) {
      LOG.warn(e.getMessage());
    } catch (Exception e) {
      LOG.warn("coordinator {}: round failed: {}", id, e.toString());
    }
  }

  private void reconcile() throws Exception {
    for (Planner.Action action : Planner.plan(view(), limits)) {
      apply(action);
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
      updateVm(c.vm(), v -> v.getCurrentMigration().equals(c.migrationId())
          ? v.toBuilder().setCurrentMigration("").build() : v);
    } else if (action instanceof Planner.MarkHost h) {
      markHost(h.hostId(), h.up(), now);
    } else if (action instanceof Planner.Forget f) {
      Stat stat = zk.checkExists().forPath(ZkPaths.migration(f.migrationId()));
      if (stat != null) {
        leadership.write(List.of(zk.transactionOp().delete().withVersion(stat.getVersion())
            .forPath(ZkPaths.migration(f.migrationId()))));
      }
    }
  }

  /** Moves the record from {@code from} (only) to {@code to}; true if it moved. */
  private boolean moveMigration(String id, MigrationState from, MigrationState to, String reason, long now)
      throws Exception {
    return updateMigration(id, m -> m.getState() == from ? MigrationStates.move(m, to, reason, now) : m);
  }

  private void markHost(String hostId, boolean up, long now) throws Exception {
    String path = ZkPaths.inventory(hostId);
    HostInventory.Builder record = HostInventory.newBuilder().setFormatVersion(Records.FORMAT).setHostId(hostId)
        .setUp(up).setLastSeenMs(now).setDownSinceMs(up ? 0 : now);
    Stat stat = zk.checkExists().forPath(path);
    if (stat == null) {
      leadership.write(List.of(zk.transactionOp().create().forPath(path, Records.bytes(record.build()))));
    } else {
      leadership.write(List.of(zk.transactionOp().setData().withVersion(stat.getVersion())
          .forPath(path, Records.bytes(record.build()))));
    }
    if (up) {
      LOG.info("host {} is up", hostId);
    } else {
      LOG.warn("host {} is down (its VMs stay where they are until HA decides)", hostId);
    }
  }

  // --- Operator requests (the leader only) ----------------------------------------------------

  /** Why a request cannot be served: the message goes to the operator as it is. */
  public static class Refused extends Exception {
    private static final long serialVersionUID = 1L;
    private final int status;

    public Refused(int status, String message) {
      super(message);
      this.status = status;
    }

    public int status() {
      return status;
    }
  }

  private void requireLeader() throws Refused {
    if (leading() && !loaded()) {
      throw new Refused(503, "coordinator " + id + " is still loading the cluster's records; try again");
    }
    if (!leading()) {
      String leader = leaderUrl();
      throw new Refused(503, "coordinator " + id + " is a standby"
          + (leader.isEmpty() || leader.equals(apiUrl) ? "" : "; the leader serves " + leader));
    }
  }

  public VmRecord createVm(dev.ferry.proto.CreateVmRequest request) throws Exception {
    requireLeader();
    try {
      dev.ferry.engine.guest.Guest.validate(request.getSpec());
    } catch (dev.ferry.common.InvalidConfigException e) {
      throw new Refused(400, e.getMessage());
    }
    Planner.Result placed = Planner.placeVm(view(), request.getSpec(), request.getHost());
    if (!placed.ok()) {
      throw new Refused(409, placed.refusal());
    }
    String name = request.getSpec().getName();
    VmRecord vm = VmRecord.newBuilder().setFormatVersion(Records.FORMAT).setSpec(request.getSpec())
        .setMac(request.getMac().isEmpty() ? macFor(name) : request.getMac()).setIp(request.getIp())
        .setDatastorePath("vms/" + name).setOwnerHost(placed.value()).setEpoch(firstEpoch(name))
        .setDesiredPower(dev.ferry.proto.PowerState.POWER_RUNNING).setPower(dev.ferry.proto.PowerState.POWER_STOPPED)
        .setCoordinatorEpoch(leadership.epoch()).setCreatedMs(System.currentTimeMillis()).build();
    try {
      leadership.write(List.of(zk.transactionOp().create().forPath(ZkPaths.vm(name), Records.bytes(vm))));
    } catch (KeeperException.NodeExistsException e) {
      throw new Refused(409, "a VM named " + name + " already exists");
    }
    LOG.info("VM {} created on {}", name, placed.value());
    return vm;
  }

  /** 1 for a new name; one above the last epoch of a deleted VM of that name. */
  private long firstEpoch(String name) throws Exception {
    try {
      return Records.vm(ZkPaths.retired(name), zk.getData().forPath(ZkPaths.retired(name))).getEpoch() + 1;
    } catch (KeeperException.NoNodeException e) {
      return 1;
    }
  }

  /** A locally administered MAC (52:54:00 like QEMU's) derived from the name: stable across restarts. */
  static String macFor(String name) {
    int h = name.hashCode();
    return String.format("52:54:00:%02x:%02x:%02x", (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff);
  }

  public VmRecord setPower(String name, dev.ferry.proto.PowerState desired) throws Exception {
    requireLeader();
    VmRecord vm = requireVm(name);
    if (!vm.getCurrentMigration().isEmpty() && desired == dev.ferry.proto.PowerState.POWER_STOPPED) {
      MigrationRecord m = view().migrations().get(vm.getCurrentMigration());
      if (m != null && ClusterView.isActive(m)) {
        throw new Refused(409, name + " is migrating (" + m.getId() + "): cancel it first");
      }
    }
    if (desired == dev.ferry.proto.PowerState.POWER_RUNNING && vm.getDesiredPower() == dev.ferry.proto.PowerState.POWER_SUSPENDED) {
      throw new Refused(409, name + " is suspended: ferry vm resume " + name + " [--on HOST]");
    }
    // Stopping a suspended VM discards its checkpoint: it starts fresh next time.
    // A start counts as a request of its own: the owner retries a boot that failed before.
    boolean start = desired == dev.ferry.proto.PowerState.POWER_RUNNING;
    updateVm(name, v -> v.toBuilder().setDesiredPower(desired).setNote("")
        .setStartRequests(v.getStartRequests() + (start ? 1 : 0))
        .setCheckpoint(desired == dev.ferry.proto.PowerState.POWER_STOPPED ? "" : v.getCheckpoint()).build());
    return requireVm(name);
  }

  /** Asks the owner to write the running VM to the datastore and free its host. */
  public VmRecord suspendVm(String name) throws Exception {
    requireLeader();
    VmRecord vm = requireVm(name);
    if (vm.getDesiredPower() != dev.ferry.proto.PowerState.POWER_RUNNING
        || vm.getPower() != dev.ferry.proto.PowerState.POWER_RUNNING) {
      throw new Refused(409, name + " is not running (it is " + vm.getPower().name().replace("POWER_", "")
          .toLowerCase(java.util.Locale.ROOT) + ")");
    }
    MigrationRecord m = view().migrations().get(vm.getCurrentMigration());
    if (m != null && ClusterView.isActive(m)) {
      throw new Refused(409, name + " is migrating (" + m.getId() + "): wait for it or cancel it first");
    }
    updateVm(name, v -> v.toBuilder().setDesiredPower(dev.ferry.proto.PowerState.POWER_SUSPENDED).setNote("").build());
    return requireVm(name);
  }

  /**
   * Resumes a suspended VM from its checkpoint on {@code host} (default: where it was): the owner
   * and epoch move in one fenced write, so the new host takes the datastore lease with the new
   * epoch and the old one can no longer write the VM's files.
   */
  public VmRecord resumeVm(String name, String host) throws Exception {
    requireLeader();
    VmRecord vm = requireVm(name);
    if (vm.getPower() != dev.ferry.proto.PowerState.POWER_SUSPENDED || vm.getCheckpoint().isEmpty()) {
      throw new Refused(409, name + " is not suspended");
    }
    String target = host.isEmpty() ? vm.getOwnerHost() : host;
    ClusterView view = view();
    dev.ferry.proto.HostRecord h = view.liveHosts().get(target);
    if (h == null) {
      throw new Refused(409, view.inventory().containsKey(target) ? "host " + target + " is down"
          : "there is no host named " + target);
    }
    if (h.getState() != dev.ferry.proto.HostState.HOST_ACTIVE) {
      throw new Refused(409, target + " is in maintenance");
    }
    long free = view.memoryFreeBytes(target);
    if (free < vm.getSpec().getMemoryBytes()) {
      throw new Refused(409, target + " has " + dev.ferry.common.Sizes.formatBytes(free) + " free, " + name
          + " needs " + dev.ferry.common.Sizes.formatBytes(vm.getSpec().getMemoryBytes()));
    }
    updateVm(name, v -> v.getPower() == dev.ferry.proto.PowerState.POWER_SUSPENDED && v.getEpoch() == vm.getEpoch()
        ? v.toBuilder().setOwnerHost(target).setEpoch(v.getEpoch() + 1).setNote("")
            .setDesiredPower(dev.ferry.proto.PowerState.POWER_RUNNING).build() : v);
    VmRecord after = requireVm(name);
    if (after.getEpoch() == vm.getEpoch()) {
      throw new Refused(409, name + " changed meanwhile; try again");
    }
    LOG.info("VM {} resumes on {} at epoch {}", name, target, after.getEpoch());
    return after;
  }

  public void deleteVm(String name) throws Exception {
    requireLeader();
    VmRecord vm = requireVm(name);
    if (vm.getDesiredPower() != dev.ferry.proto.PowerState.POWER_STOPPED
        || vm.getPower() != dev.ferry.proto.PowerState.POWER_STOPPED) {
      throw new Refused(409, name + " is not stopped: ferry vm stop " + name + " first");
    }
    Stat stat = zk.checkExists().forPath(ZkPaths.vm(name));
    // Remember its last epoch: hosts and the datastore lease have seen it, and a VM created again
    // under this name must start above it or it would be refused as stale.
    byte[] retired = Records.bytes(VmRecord.newBuilder().setFormatVersion(Records.FORMAT)
        .setSpec(dev.ferry.proto.GuestSpec.newBuilder().setName(name)).setEpoch(vm.getEpoch()).build());
    Stat old = zk.checkExists().forPath(ZkPaths.retired(name));
    CuratorOp remember = old == null ? zk.transactionOp().create().forPath(ZkPaths.retired(name), retired)
        : zk.transactionOp().setData().withVersion(old.getVersion()).forPath(ZkPaths.retired(name), retired);
    leadership.write(List.of(zk.transactionOp().delete().withVersion(stat.getVersion()).forPath(ZkPaths.vm(name)),
        remember));
    LOG.info("VM {} deleted (last epoch {})", name, vm.getEpoch());
  }

  private VmRecord requireVm(String name) throws Exception {
    try {
      return Records.vm(ZkPaths.vm(name), zk.getData().forPath(ZkPaths.vm(name)));
    } catch (KeeperException.NoNodeException e) {
      throw new Refused(404, "there is no VM named " + name);
    }
  }

  public MigrationRecord startMigration(dev.ferry.proto.StartMigrationRequest request) throws Exception {
    requireLeader();
    try {
      MigrationSettings.from(request.getPolicy());
    } catch (dev.ferry.common.InvalidConfigException e) {
      throw new Refused(400, e.getMessage());
    }
    for (int attempt = 0; attempt < ZkUpdate.ATTEMPTS_MAX; attempt++) {
      java.util.Optional<String> refusal = Planner.refuseMigration(view(), request.getVm(), request.getTargetHost());
      if (refusal.isPresent()) {
        throw new Refused(409, refusal.get());
      }
      Stat stat = new Stat();
      VmRecord vm;
      try {
        vm = Records.vm(ZkPaths.vm(request.getVm()), zk.getData().storingStatIn(stat).forPath(ZkPaths.vm(request.getVm())));
      } catch (KeeperException.NoNodeException e) {
        throw new Refused(404, "there is no VM named " + request.getVm());
      }
      String migrationId = dev.ferry.common.MigrationIds.random();
      MigrationRecord m = MigrationRecord.newBuilder().setFormatVersion(Records.FORMAT).setId(migrationId)
          .setVm(request.getVm()).setSourceHost(vm.getOwnerHost()).setTargetHost(request.getTargetHost())
          .setPolicy(request.getPolicy()).setState(MigrationState.MIGRATION_QUEUED)
          .setSecret(ByteString.copyFrom(MigrationSecrets.newSecret())).setVmEpoch(vm.getEpoch())
          .setCreatedMs(System.currentTimeMillis()).setCoordinatorEpoch(leadership.epoch()).build();
      List<CuratorOp> ops = List.of(
          zk.transactionOp().create().forPath(ZkPaths.migration(migrationId), Records.bytes(m)),
          zk.transactionOp().setData().withVersion(stat.getVersion()).forPath(ZkPaths.vm(request.getVm()),
              Records.bytes(vm.toBuilder().setCurrentMigration(migrationId).build())));
      try {
        leadership.write(ops);
        LOG.info("migration {} of {} from {} to {} queued", migrationId, request.getVm(), vm.getOwnerHost(),
            request.getTargetHost());
        wake();
        return m.toBuilder().clearSecret().build();
      } catch (KeeperException.BadVersionException e) {
        // the VM record changed meanwhile (a power report): check again
      }
    }
    throw new Refused(409, request.getVm() + " keeps changing; try again");
  }

  public MigrationRecord cancelMigration(String migrationId) throws Exception {
    requireLeader();
    MigrationRecord m = requireMigration(migrationId);
    if (!ClusterView.isActive(m)) {
      throw new Refused(409, "migration " + migrationId + " already ended (" + state(m) + ")");
    }
    if (!m.getCommitOpId().isEmpty()) {
      throw new Refused(409, "migration " + migrationId + " is past its commit; it can no longer be cancelled");
    }
    updateMigration(migrationId, r -> r.toBuilder().setCancelRequested(true).build());
    wake();
    return migration(migrationId);
  }

  private MigrationRecord requireMigration(String migrationId) throws Exception {
    if (!dev.ferry.common.MigrationIds.isValid(migrationId)) {
      throw new Refused(404, "there is no migration '" + dev.ferry.common.MigrationIds.printable(migrationId) + "'");
    }
    try {
      return Records.migration(ZkPaths.migration(migrationId), zk.getData().forPath(ZkPaths.migration(migrationId)));
    } catch (KeeperException.NoNodeException e) {
      throw new Refused(404, "there is no migration " + migrationId);
    }
  }

  /** Every host ever seen, live or down, with what it holds and moves. */
  public dev.ferry.proto.HostList hosts() throws Refused {
    requireLeader();
    ClusterView view = view();
    java.util.TreeSet<String> ids = new java.util.TreeSet<>(view.inventory().keySet());
    ids.addAll(view.liveHosts().keySet());
    dev.ferry.proto.HostList.Builder list = dev.ferry.proto.HostList.newBuilder();
    for (String hostId : ids) {
      HostRecord record = view.liveHosts().get(hostId);
      if (record == null) {
        record = HostRecord.newBuilder().setHostId(hostId).build();
      }
      List<MigrationRecord> active = view.migrations().values().stream().filter(ClusterView::isActive).toList();
      list.addHosts(dev.ferry.proto.HostView.newBuilder().setRecord(record).setUp(view.isUp(hostId))
          .setMemoryFreeBytes(view.memoryFreeBytes(hostId)).addAllVms(view.vmsOn(hostId))
          .setMigrationsOut((int) active.stream().filter(m -> m.getSourceHost().equals(hostId)).count())
          .setMigrationsIn((int) active.stream().filter(m -> m.getTargetHost().equals(hostId)).count()));
    }
    return list.build();
  }

  public dev.ferry.proto.VmList vms() throws Refused {
    requireLeader();
    return dev.ferry.proto.VmList.newBuilder().addAllVms(view().vms().values().stream()
        .sorted(java.util.Comparator.comparing(v -> v.getSpec().getName())).toList()).build();
  }

  public VmRecord vm(String name) throws Exception {
    requireLeader();
    return requireVm(name);
  }

  /** Every migration on record, newest last, without secrets. */
  public dev.ferry.proto.MigrationList migrations() throws Refused {
    requireLeader();
    return dev.ferry.proto.MigrationList.newBuilder().addAllMigrations(view().migrations().values().stream()
        .sorted(java.util.Comparator.comparingLong(MigrationRecord::getCreatedMs).thenComparing(MigrationRecord::getId))
        .map(m -> m.toBuilder().clearSecret().build()).toList()).build();
  }

  /** A migration as the API shows it: without its secret. */
  public MigrationRecord migration(String migrationId) throws Exception {
    requireLeader();
    return requireMigration(migrationId).toBuilder().clearSecret().build();
  }

  static String state(MigrationRecord m) {
    return m.getState().name().replace("MIGRATION_", "").toLowerCase(java.util.Locale.ROOT);
  }

  // --- Fenced read-modify-write ----------------------------------------------------------------

  private boolean updateMigration(String migrationId, UnaryOperator<MigrationRecord> change) throws Exception {
    return update(ZkPaths.migration(migrationId), data -> Records.bytes(change.apply(
        Records.migration(ZkPaths.migration(migrationId), data))));
  }

  private boolean updateVm(String name, UnaryOperator<VmRecord> change) throws Exception {
    return update(ZkPaths.vm(name), data -> Records.bytes(change.apply(Records.vm(ZkPaths.vm(name), data))));
  }

  /** True if it wrote (false: nothing to change, or the node is gone). */
  private boolean update(String path, UnaryOperator<byte[]> change) throws Exception {
    ZkUpdate.Outcome outcome = ZkUpdate.apply(zk, path, change, (p, version, data) ->
        leadership.write(List.of(zk.transactionOp().setData().withVersion(version).forPath(p, data))));
    if (outcome == ZkUpdate.Outcome.KEPT_CHANGING) {
      throw new Refused(409, path + " keeps changing; try again");
    }
    return outcome == ZkUpdate.Outcome.WRITTEN;
  }

  @Override
  public void close() {
    closed = true;
    loop.shutdownNow();
    if (leadership != null) {
      leadership.close();
    }
    for (CuratorCache c : new CuratorCache[] {hosts, inventory, vms, migrations, coordinatorNodes}) {
      if (c != null) {
        c.close();
      }
    }
    if (zk != null) {
      zk.close();
    }
    LOG.info("coordinator {} stopped", id);
  }
}
