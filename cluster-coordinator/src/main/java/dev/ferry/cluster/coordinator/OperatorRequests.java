package dev.ferry.cluster.coordinator;

import com.google.protobuf.ByteString;
import dev.ferry.agent.cluster.ZkUpdate;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.engine.precopy.MigrationSecrets;
import dev.ferry.engine.precopy.MigrationSettings;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.VmRecord;
import java.util.List;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The operator's requests, served by the leader only: each is validated, refused with a reason the
 * operator reads ({@link Refused}: a status and a message), or written with a fenced,
 * version-checked write. A standby refuses with 503 and the leader's address; reads come from the
 * caches' view, except where a request must see ZooKeeper's latest record.
 */
public final class OperatorRequests {
  private static final Logger LOG = LoggerFactory.getLogger(OperatorRequests.class);

  private final String id;
  private final String apiUrl;
  private final CuratorFramework zk;
  private final ClusterCaches caches;
  private final Leadership leadership;
  private final FencedUpdates updates;
  /** Wakes the leader's loop: a new or cancelled migration is acted on at once. */
  private final Runnable wake;
  private final EventLog events;
  /** HA's state for {@code ferry ha config}, or null when HA is off. */
  private final HaRestarts ha;
  /** Where {@code vm create} without {@code --host} puts a VM (DRS's placement). */
  private final VmPlacement placement;
  /** The bound on {@code --failover-hosts}. */
  static final int FAILOVER_HOSTS_MAX = 64;

  OperatorRequests(String id, String apiUrl, CuratorFramework zk, ClusterCaches caches, Leadership leadership,
      FencedUpdates updates, Runnable wake, EventLog events, HaRestarts ha, VmPlacement placement) {
    this.ha = ha;
    this.placement = placement;
    this.id = id;
    this.apiUrl = apiUrl;
    this.zk = zk;
    this.caches = caches;
    this.leadership = leadership;
    this.updates = updates;
    this.wake = wake;
    this.events = events;
  }

  private void requireLeader() throws Refused {
    if (leadership.leading() && !caches.loaded()) {
      throw new Refused(503, "coordinator " + id + " is still loading the cluster's records; try again");
    }
    if (!leadership.leading()) {
      String leader = caches.leaderUrl();
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
    if (request.getHaPriority() == dev.ferry.proto.HaPriority.UNRECOGNIZED) {
      throw new Refused(400, "ha_priority: must be high, medium, low or disabled");
    }
    ClusterView view = caches.view();
    Planner.Result placed = Planner.placeVm(view, request.getSpec(), request.getHost(), placement);
    if (!placed.ok()) {
      throw new Refused(409, placed.refusal());
    }
    java.util.Optional<String> admission = HaPlanner.refuseAdmission(view, haSettings().getFailoverHosts(),
        request.getSpec().getMemoryBytes(), request.getSpec().getName());
    if (admission.isPresent()) {
      throw new Refused(409, admission.get());
    }
    String name = request.getSpec().getName();
    VmRecord vm = VmRecord.newBuilder().setFormatVersion(Records.FORMAT).setSpec(request.getSpec())
        .setMac(request.getMac().isEmpty() ? macFor(name) : request.getMac()).setIp(request.getIp())
        .setDatastorePath("vms/" + name).setOwnerHost(placed.value()).setEpoch(firstEpoch(name))
        .setDesiredPower(dev.ferry.proto.PowerState.POWER_RUNNING).setPower(dev.ferry.proto.PowerState.POWER_STOPPED)
        .setCoordinatorEpoch(leadership.epoch()).setCreatedMs(System.currentTimeMillis())
        .setHaPriority(request.getHaPriority() == dev.ferry.proto.HaPriority.HA_PRIORITY_UNSPECIFIED
            ? dev.ferry.proto.HaPriority.HA_PRIORITY_MEDIUM : request.getHaPriority()).build();
    try {
      leadership.write(List.of(zk.transactionOp().create().forPath(ZkPaths.vm(name), Records.bytes(vm))));
    } catch (KeeperException.NodeExistsException e) {
      throw new Refused(409, "a VM named " + name + " already exists");
    }
    LOG.info("VM {} created on {}", name, placed.value());
    events.append(dev.ferry.proto.EventKind.EVENT_VM_CREATED, EventLog.Subject.vm(name, placed.value()),
        "VM " + name + " created on " + placed.value() + " (" + dev.ferry.common.Sizes.formatBytes(
            request.getSpec().getMemoryBytes()) + ", " + request.getSpec().getVcpus() + (request.getSpec().getVcpus() == 1 ? " vCPU)" : " vCPUs)"));
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
      MigrationRecord m = caches.view().migrations().get(vm.getCurrentMigration());
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
    updates.vm(name, v -> v.toBuilder().setDesiredPower(desired).setNote("")
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
    MigrationRecord m = caches.view().migrations().get(vm.getCurrentMigration());
    if (m != null && ClusterView.isActive(m)) {
      throw new Refused(409, name + " is migrating (" + m.getId() + "): wait for it or cancel it first");
    }
    updates.vm(name, v -> v.toBuilder().setDesiredPower(dev.ferry.proto.PowerState.POWER_SUSPENDED).setNote("").build());
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
    ClusterView view = caches.view();
    dev.ferry.proto.HostRecord h = view.liveHosts().get(target);
    if (h == null) {
      throw new Refused(409, view.inventory().containsKey(target) ? "host " + target + " is down"
          : "there is no host named " + target);
    }
    if (h.getState() != dev.ferry.proto.HostState.HOST_ACTIVE) {
      throw new Refused(409, target + " is in maintenance");
    }
    java.util.Optional<String> maintenance = view.maintenance(target);
    if (maintenance.isPresent()) {
      throw new Refused(409, maintenance.get());
    }
    long free = view.memoryFreeBytes(target);
    if (free < vm.getSpec().getMemoryBytes()) {
      throw new Refused(409, target + " has " + dev.ferry.common.Sizes.formatBytes(free) + " free, " + name
          + " needs " + dev.ferry.common.Sizes.formatBytes(vm.getSpec().getMemoryBytes()));
    }
    java.util.Optional<String> admission = HaPlanner.refuseAdmission(view, haSettings().getFailoverHosts(),
        vm.getSpec().getMemoryBytes(), name);
    if (admission.isPresent()) {
      throw new Refused(409, admission.get());
    }
    updates.vm(name, v -> v.getPower() == dev.ferry.proto.PowerState.POWER_SUSPENDED && v.getEpoch() == vm.getEpoch()
        ? v.toBuilder().setOwnerHost(target).setEpoch(v.getEpoch() + 1).setNote("")
            .setDesiredPower(dev.ferry.proto.PowerState.POWER_RUNNING).build() : v);
    VmRecord after = requireVm(name);
    if (after.getEpoch() == vm.getEpoch()) {
      throw new Refused(409, name + " changed meanwhile; try again");
    }
    LOG.info("VM {} resumes on {} at epoch {}", name, target, after.getEpoch());
    return after;
  }

  /** Changes the VM's restart priority (HA reads it when its host dies). */
  public VmRecord setHaPriority(String name, dev.ferry.proto.HaPriority priority) throws Exception {
    requireLeader();
    if (priority == dev.ferry.proto.HaPriority.UNRECOGNIZED || priority == dev.ferry.proto.HaPriority.HA_PRIORITY_UNSPECIFIED) {
      throw new Refused(400, "ha_priority: must be high, medium, low or disabled");
    }
    requireVm(name);
    updates.vm(name, v -> v.getHaPriority() == priority ? v : v.toBuilder().setHaPriority(priority).build());
    return requireVm(name);
  }

  /** HA's settings as stored in ZooKeeper; the defaults (1 failover host) if none were set. */
  dev.ferry.proto.HaSettings haSettings() throws Exception {
    try {
      return Records.haSettings(ZkPaths.HA_SETTINGS, zk.getData().forPath(ZkPaths.HA_SETTINGS));
    } catch (KeeperException.NoNodeException e) {
      return dev.ferry.proto.HaSettings.newBuilder().setFormatVersion(Records.FORMAT).setFailoverHosts(1).build();
    }
  }

  /** HA's settings and what they mean now: the memory reserved for failover, hosts judged dead. */
  public dev.ferry.proto.HaStatus haStatus() throws Exception {
    requireLeader();
    dev.ferry.proto.HaSettings settings = haSettings();
    long[] reserve = HaPlanner.reserveAndAdmissible(caches.view(), settings.getFailoverHosts());
    dev.ferry.proto.HaStatus.Builder status = dev.ferry.proto.HaStatus.newBuilder().setSettings(settings)
        .setReservedBytes(reserve[0]).setAdmissibleBytes(reserve[1]);
    if (ha != null) {
      status.setHaTimeoutMs(ha.timeoutMillis()).addAllDeadHosts(ha.dead());
    }
    return status.build();
  }

  /** Sets HA's settings (stored in ZooKeeper, so they outlive this leader). */
  public dev.ferry.proto.HaStatus configureHa(dev.ferry.proto.HaSettings requested) throws Exception {
    requireLeader();
    int n = requested.getFailoverHosts();
    if (n < 0 || n > FAILOVER_HOSTS_MAX) {
      throw new Refused(400, "failover_hosts: " + n + " is out of range (0.." + FAILOVER_HOSTS_MAX + ")");
    }
    byte[] data = Records.bytes(dev.ferry.proto.HaSettings.newBuilder().setFormatVersion(Records.FORMAT)
        .setFailoverHosts(n).build());
    Stat stat = zk.checkExists().forPath(ZkPaths.HA_SETTINGS);
    try {
      leadership.write(List.of(stat == null ? zk.transactionOp().create().forPath(ZkPaths.HA_SETTINGS, data)
          : zk.transactionOp().setData().withVersion(stat.getVersion()).forPath(ZkPaths.HA_SETTINGS, data)));
    } catch (KeeperException.NodeExistsException | KeeperException.BadVersionException e) {
      throw new Refused(409, "HA settings changed meanwhile; try again");
    }
    LOG.info("HA: admission control keeps room for {} host failure(s)", n);
    return haStatus();
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
    events.append(dev.ferry.proto.EventKind.EVENT_VM_DELETED, EventLog.Subject.vm(name, vm.getOwnerHost()),
        "VM " + name + " deleted");
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
      java.util.Optional<String> refusal = Planner.refuseMigration(caches.view(), request.getVm(), request.getTargetHost());
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
        wake.run();
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
    updates.migration(migrationId, r -> r.toBuilder().setCancelRequested(true).build());
    wake.run();
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
    ClusterView view = caches.view();
    java.util.TreeSet<String> ids = new java.util.TreeSet<>(view.inventory().keySet());
    ids.addAll(view.liveHosts().keySet());
    dev.ferry.proto.HostList.Builder list = dev.ferry.proto.HostList.newBuilder();
    LoadWindows.Snapshot loads = caches.loads();
    for (String hostId : ids) {
      list.addHosts(hostView(view, hostId, view.inventory().get(hostId), loads));
    }
    return list.build();
  }

  /** {@code known}: the host's inventory record, or null (not written yet). */
  private static dev.ferry.proto.HostView hostView(ClusterView view, String hostId, dev.ferry.proto.HostInventory known,
      LoadWindows.Snapshot loads) {
    HostRecord record = view.liveHosts().get(hostId);
    if (record == null) {
      record = HostRecord.newBuilder().setHostId(hostId).build();
    }
    List<MigrationRecord> active = view.migrations().values().stream().filter(ClusterView::isActive).toList();
    dev.ferry.proto.HostView.Builder host = dev.ferry.proto.HostView.newBuilder().setRecord(record)
        .setUp(view.isUp(hostId))
        .setMemoryFreeBytes(view.memoryFreeBytes(hostId)).addAllVms(view.vmsOn(hostId))
        .setCpuUsedCores(view.isUp(hostId) ? loads.hostCores().getOrDefault(hostId, 0.0) : 0)
        .setMigrationsOut((int) active.stream().filter(m -> m.getSourceHost().equals(hostId)).count())
        .setMigrationsIn((int) active.stream().filter(m -> m.getTargetHost().equals(hostId)).count());
    if (known != null) {
      host.setMaintenance(known.getMaintenance()).setMaintenanceSinceMs(known.getMaintenanceSinceMs())
          .clearBlocked().addAllBlocked(known.getBlockedList());
    }
    return host.build();
  }

  /** Every VM, and the windowed use of those running (median of their hosts' recent reports). */
  public dev.ferry.proto.VmList vms() throws Refused {
    requireLeader();
    List<VmRecord> vms = caches.view().vms().values().stream()
        .sorted(java.util.Comparator.comparing(v -> v.getSpec().getName())).toList();
    LoadWindows.Snapshot loads = caches.loads();
    dev.ferry.proto.VmList.Builder list = dev.ferry.proto.VmList.newBuilder().addAllVms(vms);
    for (VmRecord v : vms) {
      LoadWindows.VmLoad load = loads.vms().get(v.getSpec().getName());
      if (load != null && v.getPower() == dev.ferry.proto.PowerState.POWER_RUNNING) {
        list.addUsage(dev.ferry.proto.VmUsage.newBuilder().setVm(v.getSpec().getName()).setCpuCores(load.cpuCores())
            .setDirtyRateBytesPerS(load.dirtyRateBytesPerS()));
      }
    }
    return list.build();
  }

  /**
   * {@code ferry vm set}: changes the demand in the VM's spec (CPU load per vCPU, dirty rate); the
   * owner applies it to the running guest without a restart, and the spec travels with the record
   * (a migration's target and a resume take it). Validated as a whole spec; errors name the field.
   */
  public VmRecord setVm(String name, dev.ferry.proto.VmSettingsRequest settings) throws Exception {
    requireLeader();
    if (!settings.hasCpuLoad() && !settings.hasDirtyRateBytesPerS()) {
      throw new Refused(400, "cpu_load, dirty_rate_bytes_per_s: give at least one");
    }
    VmRecord vm = requireVm(name);
    try {
      dev.ferry.engine.guest.Guest.validate(withSettings(vm, settings).getSpec());
    } catch (dev.ferry.common.InvalidConfigException e) {
      throw new Refused(400, e.getMessage());
    }
    updates.vm(name, v -> withSettings(v, settings));
    VmRecord after = requireVm(name);
    LOG.info("VM {}: CPU load {} per vCPU, dirty rate {} B/s", name, after.getSpec().getWorkload().getCpuLoad(),
        after.getSpec().getWorkload().getDirtyRateBytesPerS());
    return after;
  }

  private static VmRecord withSettings(VmRecord vm, dev.ferry.proto.VmSettingsRequest settings) {
    dev.ferry.proto.WorkloadSpec.Builder w = vm.getSpec().getWorkload().toBuilder();
    if (settings.hasCpuLoad()) {
      w.setCpuLoad(settings.getCpuLoad());
    }
    if (settings.hasDirtyRateBytesPerS()) {
      w.setDirtyRateBytesPerS(settings.getDirtyRateBytesPerS());
    }
    return vm.toBuilder().setSpec(vm.getSpec().toBuilder().setWorkload(w)).build();
  }

  public VmRecord vm(String name) throws Exception {
    requireLeader();
    return requireVm(name);
  }

  /** Every migration on record, newest last, without secrets. */
  public dev.ferry.proto.MigrationList migrations() throws Refused {
    requireLeader();
    return dev.ferry.proto.MigrationList.newBuilder().addAllMigrations(caches.view().migrations().values().stream()
        .sorted(java.util.Comparator.comparingLong(MigrationRecord::getCreatedMs).thenComparing(MigrationRecord::getId))
        .map(m -> m.toBuilder().clearSecret().build()).toList()).build();
  }

  /** A migration as the API shows it: without its secret. */
  public MigrationRecord migration(String migrationId) throws Exception {
    requireLeader();
    return requireMigration(migrationId).toBuilder().clearSecret().build();
  }

  // --- DRS settings, placement rules, maintenance ------------------------------------------------

  /** The DRS settings in force (the defaults while none were set). */
  public dev.ferry.proto.DrsConfig drsConfig() throws Exception {
    requireLeader();
    return DrsSettings.read(zk);
  }

  /** Applies the fields the request gives (each checked) with a fenced, version-checked write. */
  public dev.ferry.proto.DrsConfig setDrsConfig(dev.ferry.proto.DrsConfigRequest request) throws Exception {
    requireLeader();
    DrsSettings.apply(DrsSettings.DEFAULT, request); // every field checked before anything is read
    for (int attempt = 0; attempt < ZkUpdate.ATTEMPTS_MAX; attempt++) {
      Stat stat = new Stat();
      dev.ferry.proto.DrsConfig current;
      try {
        current = Records.drsConfig(ZkPaths.DRS_CONFIG, zk.getData().storingStatIn(stat).forPath(ZkPaths.DRS_CONFIG));
      } catch (KeeperException.NoNodeException e) {
        current = DrsSettings.DEFAULT;
        stat = null;
      }
      dev.ferry.proto.DrsConfig next = DrsSettings.apply(current, request).toBuilder()
          .setUpdatedMs(System.currentTimeMillis()).setCoordinatorEpoch(leadership.epoch()).build();
      byte[] data = Records.bytes(next);
      try {
        leadership.write(List.of(stat == null ? zk.transactionOp().create().forPath(ZkPaths.DRS_CONFIG, data)
            : zk.transactionOp().setData().withVersion(stat.getVersion()).forPath(ZkPaths.DRS_CONFIG, data)));
      } catch (KeeperException.BadVersionException | KeeperException.NodeExistsException e) {
        continue; // another write came first: apply the request to what it wrote
      }
      String summary = "DRS " + DrsSettings.mode(next.getMode()) + ", threshold " + next.getThreshold() + ", every "
          + next.getIntervalSeconds() + " s";
      LOG.info("DRS settings: {}", summary);
      events.append(dev.ferry.proto.EventKind.EVENT_DRS_CONFIG_CHANGED, EventLog.Subject.NONE,
          "DRS settings changed: " + summary + " (was " + DrsSettings.mode(current.getMode()) + ", threshold "
              + current.getThreshold() + ", every " + current.getIntervalSeconds() + " s)");
      wake.run();
      return next;
    }
    throw new Refused(409, ZkPaths.DRS_CONFIG + " keeps changing; try again");
  }

  public dev.ferry.proto.RuleList rules() throws Exception {
    requireLeader();
    return dev.ferry.proto.RuleList.newBuilder().addAllRules(DrsSettings.readRules(zk)).build();
  }

  /**
   * Records a new rule. Its VMs must exist (a rule on a name mistyped would silently hold nothing),
   * and so must a vm-host rule's host; names are taken once, a rule is never changed (remove it,
   * add it again).
   */
  public dev.ferry.proto.PlacementRule addRule(dev.ferry.proto.PlacementRule request) throws Exception {
    requireLeader();
    PlacementRules.validate(request);
    ClusterView view = caches.view();
    for (String vm : request.getVmsList()) {
      if (!view.vms().containsKey(vm)) {
        throw new Refused(409, "vms: there is no VM named " + vm);
      }
    }
    if (!request.getHost().isEmpty() && !view.inventory().containsKey(request.getHost())
        && !view.liveHosts().containsKey(request.getHost())) {
      throw new Refused(409, "host: there is no host named " + request.getHost());
    }
    if (zk.getChildren().forPath(ZkPaths.RULES).size() >= PlacementRules.RULES_MAX) {
      throw new Refused(409, "there are already " + PlacementRules.RULES_MAX + " rules (the most the cluster keeps)");
    }
    dev.ferry.proto.PlacementRule rule = dev.ferry.proto.PlacementRule.newBuilder().setFormatVersion(Records.FORMAT)
        .setName(request.getName()).setKind(request.getKind()).addAllVms(request.getVmsList()).setHost(request.getHost())
        .setCreatedMs(System.currentTimeMillis()).setCoordinatorEpoch(leadership.epoch()).build();
    try {
      leadership.write(List.of(zk.transactionOp().create().forPath(ZkPaths.rule(rule.getName()), Records.bytes(rule))));
    } catch (KeeperException.NodeExistsException e) {
      throw new Refused(409, "a rule named " + rule.getName() + " already exists");
    }
    LOG.info("rule {} added ({})", rule.getName(), PlacementRules.describe(rule));
    events.append(dev.ferry.proto.EventKind.EVENT_RULE_ADDED, ruleSubject(rule),
        "rule " + rule.getName() + " added: " + PlacementRules.describe(rule));
    wake.run();
    return rule;
  }

  public void removeRule(String name) throws Exception {
    requireLeader();
    Stat stat = new Stat();
    dev.ferry.proto.PlacementRule rule;
    try {
      rule = Records.rule(ZkPaths.rule(name), zk.getData().storingStatIn(stat).forPath(ZkPaths.rule(name)));
    } catch (KeeperException.NoNodeException e) {
      throw new Refused(404, "there is no rule named " + name);
    } catch (dev.ferry.cluster.model.RecordException e) {
      rule = dev.ferry.proto.PlacementRule.newBuilder().setName(name).build(); // unreadable: it may still go
    }
    try {
      leadership.write(List.of(zk.transactionOp().delete().withVersion(stat.getVersion()).forPath(ZkPaths.rule(name))));
    } catch (KeeperException.NoNodeException e) {
      throw new Refused(404, "there is no rule named " + name);
    }
    LOG.info("rule {} removed", name);
    events.append(dev.ferry.proto.EventKind.EVENT_RULE_REMOVED, ruleSubject(rule), "rule " + name + " removed"
        + (rule.getKind() == dev.ferry.proto.RuleKind.RULE_KIND_UNSPECIFIED ? "" : " (" + PlacementRules.describe(rule) + ")"));
    wake.run();
  }

  /** A vm-host rule is about its VM and host; a rule on several VMs names them in its message only. */
  private static EventLog.Subject ruleSubject(dev.ferry.proto.PlacementRule rule) {
    return rule.getVmsCount() == 1 ? EventLog.Subject.vm(rule.getVms(0), rule.getHost()) : EventLog.Subject.NONE;
  }

  /**
   * {@code enter}: the host takes no new VMs from now on (placement, {@code vm create --host},
   * {@code migrate --to}, {@code vm resume --on} refuse it) and is entering maintenance until no VM
   * runs on it, then in maintenance (the leader's round). {@code exit}: back in service at once.
   * Kept in the host's inventory record, so it survives a failover and the agent's restart.
   */
  public dev.ferry.proto.HostView maintenance(String hostId, String action) throws Exception {
    requireLeader();
    boolean enter = switch (action) {
      case "enter" -> true;
      case "exit" -> false;
      default -> throw new Refused(400, "action: must be enter or exit, not '"
          + (action.length() <= 48 ? action : action.substring(0, 48) + "...") + "'");
    };
    ClusterView view = caches.view();
    if (!view.inventory().containsKey(hostId)) {
      throw new Refused(view.liveHosts().containsKey(hostId) ? 409 : 404, view.liveHosts().containsKey(hostId)
          ? "host " + hostId + " has only just joined; try again in a second" : "there is no host named " + hostId);
    }
    long now = System.currentTimeMillis();
    java.util.concurrent.atomic.AtomicReference<dev.ferry.proto.MaintenanceState> was =
        new java.util.concurrent.atomic.AtomicReference<>();
    boolean written = updates.inventory(hostId, h -> {
      was.set(h.getMaintenance());
      if (enter == (h.getMaintenance() != dev.ferry.proto.MaintenanceState.MAINTENANCE_NONE)) {
        return h; // already so: entering twice does not restart it
      }
      return h.toBuilder().setMaintenance(enter ? dev.ferry.proto.MaintenanceState.MAINTENANCE_ENTERING
          : dev.ferry.proto.MaintenanceState.MAINTENANCE_NONE).setMaintenanceSinceMs(enter ? now : 0).clearBlocked().build();
    });
    if (written && enter) {
      long running = caches.view().vms().values().stream().filter(v -> v.getOwnerHost().equals(hostId)
          && (v.getDesiredPower() == dev.ferry.proto.PowerState.POWER_RUNNING
              || v.getPower() == dev.ferry.proto.PowerState.POWER_RUNNING)).count();
      LOG.info("host {} enters maintenance ({} VMs run on it)", hostId, running);
      events.append(dev.ferry.proto.EventKind.EVENT_MAINTENANCE_ENTERED, EventLog.Subject.host(hostId),
          "host " + hostId + " is entering maintenance: it takes no new VMs" + (running == 0 ? ""
              : " (" + running + (running == 1 ? " VM runs" : " VMs run") + " on it)"));
    } else if (written) {
      // HOOK for the drain: exiting cancels a drain in progress. When the evacuation exists, it
      // cancels here (or in the leader's round, seeing MAINTENANCE_NONE) the queued migrations it
      // made off this host; migrations already running finish where they were going.
      LOG.info("host {} exits maintenance (was {})", hostId, was.get());
      events.append(dev.ferry.proto.EventKind.EVENT_MAINTENANCE_EXITED, EventLog.Subject.host(hostId),
          "host " + hostId + " is back in service"
              + (was.get() == dev.ferry.proto.MaintenanceState.MAINTENANCE_ENTERING ? " (it was still entering maintenance)" : ""));
    }
    wake.run();
    return hostView(caches.view(), hostId, readInventory(hostId), caches.loads());
  }

  /** The record as ZooKeeper has it now (the caches may not have seen the write yet). */
  private dev.ferry.proto.HostInventory readInventory(String hostId) throws Exception {
    return Records.inventory(ZkPaths.inventory(hostId), zk.getData().forPath(ZkPaths.inventory(hostId)));
  }

  static String state(MigrationRecord m) {
    return m.getState().name().replace("MIGRATION_", "").toLowerCase(java.util.Locale.ROOT);
  }
}
