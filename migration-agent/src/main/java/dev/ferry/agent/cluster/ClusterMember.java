package dev.ferry.agent.cluster;

import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.cluster.model.RecordException;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.MigrationStates;

import dev.ferry.common.Addresses;
import dev.ferry.engine.precopy.CutoverAuthority;
import dev.ferry.engine.precopy.SourceMigration;
import dev.ferry.engine.precopy.TargetMigration;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.HostState;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationProgress;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationReport;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmRecord;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An agent's membership of the cluster: it announces the host (an ephemeral node, re-created
 * after a lost session), watches the VM and migration records that concern it and makes them so —
 * boots and stops the VMs it owns, runs the source side of its migrations, admits the target side
 * only for a migration the cluster recorded, and reports progress (at most once a second) and
 * outcomes back.
 *
 * <p>Epoch fencing: the member remembers the highest epoch it has seen per VM and refuses any
 * record that carries an older one. Losing the ZooKeeper session (SUSPENDED or LOST) cancels
 * every outgoing migration that has not committed: its guest keeps running here.
 */
public final class ClusterMember implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(ClusterMember.class);
  private static final long RECONCILE_EVERY_MILLIS = 500;
  /** The load report's interval by default (--load-interval). */
  public static final long LOAD_INTERVAL_MILLIS_DEFAULT = 2_000;
  private static final long PROGRESS_EVERY_NANOS = 1_000_000_000L;
  private static final int ROUND_TRIP_SAMPLES = 15;
  private final java.util.ArrayDeque<Long> roundTripsNanos = new java.util.ArrayDeque<>();
  /** Recent commits' cost inside the pause (the multi-op and the target's confirmation): the budget's reserve. */
  private final dev.ferry.engine.precopy.CommitCostHistory commitCosts = new dev.ferry.engine.precopy.CommitCostHistory();
  /** The reserve before any commit or round trip was measured. */
  static final long SWITCHOVER_RESERVE_MILLIS_DEFAULT = 10;

  /** What the member needs from its agent. */
  public interface Local {
    String hostId();

    InetSocketAddress address();

    long memoryCapacityBytes();

    /** Guest name to state: running, incoming, migrating-out, or paused (...). */
    Map<String, String> guestStates();

    long guestMemoryBytes();

    /** Boots the VM this host owns at {@code epoch}: fresh, or from {@code checkpoint} on the datastore if named. */
    void bootGuest(GuestSpec spec, long epoch, String checkpoint);

    /** Suspends the running guest to the datastore and frees it here; returns the checkpoint's name. */
    String suspendGuest(String name, long epoch);

    /**
     * Renews the datastore leases of the VMs running here and writes this host's datastore
     * heartbeat; true if the heartbeat was written (HA's proof that the host is alive).
     */
    boolean renewLeases();

    /** Powers off every guest here: the host is isolated and its VMs may be restarted elsewhere. */
    void powerOffAll(String why);

    /**
     * The VM runs here as its owner at {@code epoch}: make sure it holds its lease and services, and
     * that the guest runs the spec's demand (CPU load, dirty rate: 'ferry vm set').
     */
    void ensureOwned(GuestSpec spec, long epoch);

    void destroyGuest(String name, String why);

    /** Starts the source side; false if it cannot (the reason was reported through {@code done}). */
    boolean startOutgoing(MigrationRecord migration, InetSocketAddress target, CutoverAuthority authority,
        SourceMigration.Listener progress, Consumer<MigrationReport> done);

    void cancelOutgoing(String migrationId, String reason);

    /** The migration a paused guest waits on (its outcome was unknown to the engine), or null. */
    String undecidedMigration(String name);

    /** Resumes the paused guest here, or frees it (it runs on the target now). */
    void resolveUndecided(String name, boolean resume, String why);

    Set<String> outgoingMigrations();

    /** Counters of the guests running here (vCPU CPU time, page writes), by name, for the load report. */
    Map<String, LoadMeter.GuestCounters> guestCounters();
  }

  private final Local local;
  private final ZkSettings settings;
  private final String cpuModel;
  private final int cpuCores;
  private final long loadIntervalMillis;
  /** Only the member's thread samples it. */
  private final LoadMeter loadMeter = new LoadMeter();
  private volatile LoadMeter.Report lastLoad = new LoadMeter.Report(0, List.of());
  private final long haTimeoutMillis;
  /** Proofs of life move the guests' run permit; without them the guests here are powered off. */
  private final Isolation isolation;
  /** Checks the run permit on its own thread, so a member loop stuck in a ZooKeeper call cannot delay the power-off. */
  private final ScheduledExecutorService isolationWatch = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "ha-isolation");
    t.setDaemon(true);
    return t;
  });
  private final Map<String, Long> epochSeen = new ConcurrentHashMap<>();
  private final Map<String, Long> progressWrittenNanos = new ConcurrentHashMap<>();
  private final Map<String, TargetMigration> undecided = new ConcurrentHashMap<>();
  private final Set<String> refusedStale = ConcurrentHashMap.newKeySet();
  /** Outgoing migrations this host ran to an end: a lagging cache must not start them again. */
  private final Set<String> finished = ConcurrentHashMap.newKeySet();
  /** VMs suspended here whose record may not name their checkpoint yet, by epoch. */
  private final Map<String, Long> suspendedHere = new ConcurrentHashMap<>();
  /** Outcomes of migrations sent from here that are not in their records yet. */
  private final Map<String, MigrationReport> pendingOutcomes = new ConcurrentHashMap<>();
  /** Boots that failed, by VM, epoch and checkpoint: not retried until one of them changes. */
  private final Set<String> bootFailed = ConcurrentHashMap.newKeySet();
  private final AtomicBoolean connected = new AtomicBoolean();
  private final ScheduledExecutorService loop = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "cluster-member");
    t.setDaemon(true);
    return t;
  });
  private CuratorFramework zk;
  private PersistentNode hostNode;
  private CuratorCache vms;
  private CuratorCache migrations;
  private volatile boolean closed;
  /** The host is announced: the reconciler may act (before, caches only fill). */
  private volatile boolean published;
  private static final int JOIN_TIMEOUT_SECONDS = 30;
  /** The VM cache holds ZooKeeper's records (not an empty start): local guests without one may go. */
  private volatile boolean vmsLoaded;

  public ClusterMember(Local local, ZkSettings settings, String cpuModel, int cpuCores) {
    this(local, settings, cpuModel, cpuCores, LOAD_INTERVAL_MILLIS_DEFAULT, HaTimeout.SECONDS_DEFAULT * 1000L);
  }

  /**
   * @param cpuCores the host's CPU capacity in cores, as reported
   * @param loadIntervalMillis how often the host record is rewritten with the measured load (it is
   *     also the host's liveness heartbeat, so kept under {@code ClusterView}'s staleness limit)
   * @param haTimeoutMillis the cluster's HA timeout: without proof of life for half of it the guests here stop
   */
  public ClusterMember(Local local, ZkSettings settings, String cpuModel, int cpuCores, long loadIntervalMillis,
      long haTimeoutMillis) {
    this.local = local;
    this.settings = settings;
    this.cpuModel = cpuModel;
    this.cpuCores = cpuCores;
    this.loadIntervalMillis = loadIntervalMillis;
    this.haTimeoutMillis = haTimeoutMillis;
    this.isolation = new Isolation(haTimeoutMillis, System.nanoTime());
  }

  /**
   * Connects and reads the cluster's records (the VM and migration caches are loaded when this
   * returns); fails if ZooKeeper is not reachable in time. The host is not announced yet: the
   * agent listens first, then {@link #publish}es its address.
   */
  public ClusterMember join() throws Exception {
    zk = ZkClients.start(settings);
    if (!zk.blockUntilConnected(JOIN_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
      zk.close();
      throw new IllegalStateException("cannot reach ZooKeeper at " + settings.connect() + " within "
          + JOIN_TIMEOUT_SECONDS + " s");
    }
    connected.set(true);
    for (String path : List.of(ZkPaths.HOSTS, ZkPaths.VMS, ZkPaths.MIGRATIONS)) {
      try {
        zk.create().creatingParentsIfNeeded().forPath(path);
      } catch (KeeperException.NodeExistsException ignored) {
        // already there
      }
    }
    warmUp();
    vms = CuratorCache.build(zk, ZkPaths.VMS);
    migrations = CuratorCache.build(zk, ZkPaths.MIGRATIONS);
    java.util.concurrent.CountDownLatch loaded = new java.util.concurrent.CountDownLatch(2);
    vms.listenable().addListener(org.apache.curator.framework.recipes.cache.CuratorCacheListener.builder()
        .forAll((type, before, after) -> wake()).forInitialized(() -> {
          vmsLoaded = true;
          loaded.countDown();
          wake();
        }).build());
    migrations.listenable().addListener(org.apache.curator.framework.recipes.cache.CuratorCacheListener.builder()
        .forAll((type, before, after) -> wake()).forInitialized(loaded::countDown).build());
    vms.start();
    migrations.start();
    if (!loaded.await(JOIN_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
      throw new IllegalStateException("could not read the cluster's records within " + JOIN_TIMEOUT_SECONDS + " s");
    }
    return this;
  }

  /**
   * Announces the host at its bound address and starts making the records so. Called once the
   * agent listens (the host record carries the address).
   */
  public ClusterMember publish() throws Exception {
    refuseDuplicateHost();
    hostNode = new PersistentNode(zk, CreateMode.EPHEMERAL, false, ZkPaths.host(local.hostId()),
        Records.bytes(hostRecord()));
    hostNode.start();
    if (!hostNode.waitForInitialCreate(JOIN_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
      throw new IllegalStateException("could not register host " + local.hostId() + " in ZooKeeper");
    }
    zk.getConnectionStateListenable().addListener((client, state) -> onConnectionState(state));
    published = true;
    loop.scheduleWithFixedDelay(this::reconcileSafely, 0, RECONCILE_EVERY_MILLIS, TimeUnit.MILLISECONDS);
    long heartbeatMillis = HaTimeout.heartbeatMillis(haTimeoutMillis);
    loop.scheduleWithFixedDelay(this::heartbeat, 0, heartbeatMillis, TimeUnit.MILLISECONDS);
    isolationWatch.scheduleWithFixedDelay(() -> {
      try {
        powerOffIfIsolated();
      } catch (RuntimeException e) { // never end the schedule
        LOG.error("host {}: isolation check failed: {}", local.hostId(), e.toString());
      }
    }, heartbeatMillis, Math.max(50, heartbeatMillis / 4), TimeUnit.MILLISECONDS);
    loop.execute(this::sampleLoad); // the first sample: the next report's figures cover one interval
    loop.scheduleWithFixedDelay(this::reportLoad, loadIntervalMillis, loadIntervalMillis, TimeUnit.MILLISECONDS);
    LOG.info("host {} joined the cluster at {} ({} cores, {})", local.hostId(), settings.connect(), cpuCores, cpuModel);
    return this;
  }

  /**
   * Runs the cutover's ZooKeeper calls once (sync, reads, a check-only multi-op) and the record
   * codecs, so their classes are loaded and compiled before a guest is paused waiting on them:
   * cold, the first commit took tens of milliseconds more.
   */
  private void warmUp() throws Exception {
    long started = System.nanoTime();
    for (int i = 0; i < 3; i++) {
      ZkSync.sync(zk, ZkPaths.MIGRATIONS);
      Stat stat = new Stat();
      zk.getData().storingStatIn(stat).forPath(ZkPaths.MIGRATIONS);
      zk.transaction().forOperations(zk.transactionOp().check().withVersion(stat.getVersion()).forPath(ZkPaths.MIGRATIONS));
    }
    for (int i = 0; i < 200; i++) {
      MigrationRecord m = MigrationRecord.newBuilder().setFormatVersion(Records.FORMAT).setId("m-warm").setVm("vm")
          .setState(MigrationState.MIGRATION_RUNNING).setCommitOpId("op").build();
      Records.migration("/warm", Records.bytes(m));
      Records.vm("/warm", Records.bytes(VmRecord.newBuilder().setFormatVersion(Records.FORMAT).setOwnerHost("h").build()));
    }
    new ZkCutoverAuthority(zk, local.hostId());
    warmUpCommitPath();
    for (int i = 0; i < 3; i++) {
      sampleRoundTrip();
    }
    LOG.debug("cutover path warmed up in {} ms", (System.nanoTime() - started) / 1_000_000);
  }

  /**
   * The first commit this agent makes as a target runs inside a guest's pause: before any, the
   * write half of the multi-op (version checks and setData in one transaction, the results parsed)
   * runs a few times on a scratch node of this host's own, so the pause does not pay for loading
   * and compiling it (measured: the first commit of each agent took 26-32 ms, later ones 5-8).
   */
  private void warmUpCommitPath() throws Exception {
    String scratch = ZkPaths.ROOT + "/warmup/" + local.hostId();
    try {
      zk.create().creatingParentContainersIfNeeded().withMode(org.apache.zookeeper.CreateMode.EPHEMERAL)
          .forPath(scratch, new byte[0]);
    } catch (KeeperException.NodeExistsException e) {
      // a previous session's, about to go
    }
    try {
      for (int i = 0; i < 5; i++) {
        Stat stat = zk.checkExists().forPath(scratch);
        if (stat == null) {
          return;
        }
        byte[] data = Records.bytes(VmRecord.newBuilder().setFormatVersion(Records.FORMAT).setOwnerHost(local.hostId())
            .setEpoch(i).build());
        zk.transaction().forOperations(zk.transactionOp().check().withVersion(stat.getVersion()).forPath(scratch),
            zk.transactionOp().setData().withVersion(stat.getVersion()).forPath(scratch, data));
      }
    } catch (KeeperException.BadVersionException | KeeperException.NoNodeException e) {
      // someone else's write or the node's end: the warm-up is done enough
    } finally {
      try {
        zk.delete().quietly().forPath(scratch);
      } catch (Exception ignored) {
        // ephemeral: it goes with the session anyway
      }
    }
  }

  private void refuseDuplicateHost() throws Exception {
    Stat stat = zk.checkExists().forPath(ZkPaths.host(local.hostId()));
    if (stat != null && stat.getEphemeralOwner() != zk.getZookeeperClient().getZooKeeper().getSessionId()) {
      // Either a live agent with the same id or the last session of this one, not yet expired.
      HostRecord other = Records.host(ZkPaths.host(local.hostId()), zk.getData().forPath(ZkPaths.host(local.hostId())));
      if (!other.getAddress().equals(Addresses.format(local.address()))) {
        throw new IllegalStateException("host id " + local.hostId() + " is already registered by the agent at "
            + other.getAddress() + ": give this host another --host-id");
      }
      LOG.info("host {}: replacing the registration of a previous session", local.hostId());
      zk.delete().forPath(ZkPaths.host(local.hostId()));
    }
  }

  private HostRecord hostRecord() {
    LoadMeter.Report load = lastLoad;
    return HostRecord.newBuilder().setFormatVersion(Records.FORMAT).setHostId(local.hostId())
        .setAddress(Addresses.format(local.address())).setCpuCores(cpuCores)
        .setMemoryBytes(local.memoryCapacityBytes()).setCpuModel(cpuModel).setState(HostState.HOST_ACTIVE)
        .setLoad(load.hostCores()).setMemoryUsedBytes(local.guestMemoryBytes()).setGuests(local.guestStates().size())
        .addAllVmUsage(load.vms()).setUsageIntervalMs((int) loadIntervalMillis)
        .setUpdatedMs(System.currentTimeMillis()).build();
  }

  private void sampleLoad() {
    try {
      lastLoad = loadMeter.sample(System.nanoTime(), local.guestCounters());
    } catch (RuntimeException e) {
      LOG.warn("host {}: measuring the load failed: {}", local.hostId(), e.toString());
    }
  }

  /**
   * Every load interval: measures the host's and each guest's use since the last report and
   * writes it all in the host record, one write per report whatever the number of guests (the
   * write is also the host's heartbeat).
   */
  private void reportLoad() {
    sampleLoad();
    try {
      if (connected.get() && !closed) {
        hostNode.setData(Records.bytes(hostRecord()));
      }
    } catch (Exception e) {
      LOG.debug("load report of {} failed: {}", local.hostId(), e.toString());
    }
  }

  /**
   * What a cutover adds to the pause: the median of the last commits of migrations from this agent
   * (the target's multi-op, as its pause step measured it); before any, two ZooKeeper round trips
   * (the multi-op also writes the transaction log), each the median recent read; before any of
   * those, {@value #SWITCHOVER_RESERVE_MILLIS_DEFAULT} ms.
   */
  long switchoverCostMillis() {
    long[] samples;
    synchronized (roundTripsNanos) {
      samples = roundTripsNanos.stream().mapToLong(Long::longValue).sorted().toArray();
    }
    long estimate = samples.length == 0 ? SWITCHOVER_RESERVE_MILLIS_DEFAULT
        : Math.max(1, (2 * samples[samples.length / 2] + 999_999) / 1_000_000L);
    return commitCosts.reserveMillis(estimate);
  }

  /** Learns the cost of a completed migration's commit for the next budget split. */
  private void learnCommitCost(MigrationReport report) {
    for (dev.ferry.proto.PauseStep step : report.getPauseStepsList()) {
      if (report.getPhase() == MigrationPhase.PHASE_COMPLETED
          && step.getName().equals(dev.ferry.engine.precopy.PauseSteps.COMMIT)) {
        commitCosts.record(step.getMicros());
      }
    }
  }

  /** One round trip, timed; true if ZooKeeper answered (with this host's node there: the session is ours). */
  private boolean sampleRoundTrip() {
    try {
      long started = System.nanoTime();
      Stat stat = zk.checkExists().forPath(ZkPaths.host(local.hostId()));
      long took = System.nanoTime() - started;
      synchronized (roundTripsNanos) {
        roundTripsNanos.addLast(took);
        while (roundTripsNanos.size() > ROUND_TRIP_SAMPLES) {
          roundTripsNanos.removeFirst();
        }
      }
      return stat != null && stat.getEphemeralOwner() == zk.getZookeeperClient().getZooKeeper().getSessionId();
    } catch (Exception e) {
      LOG.debug("round-trip sample failed: {}", e.toString());
      return false;
    }
  }

  /**
   * Proves this host alive, to the datastore (its heartbeat, with the leases' renewals) and to
   * ZooKeeper (a round trip that finds this session's host node), and moves the run permit from
   * the moment the proofs began ({@link Isolation}).
   */
  private void heartbeat() {
    long started = System.nanoTime();
    boolean stored = false;
    try {
      stored = local.renewLeases();
    } catch (RuntimeException e) {
      LOG.warn("host {}: renewing leases failed: {}", local.hostId(), e.toString());
    }
    boolean inZk = connected.get() && !closed && published && sampleRoundTrip();
    if (stored || inZk) {
      synchronized (isolation) {
        // A permit that ran out is not revived while a stale guest is left: the guests go first.
        if (powerOffIfIsolated()) {
          isolation.proven(started);
        }
      }
    }
    // The host record itself is rewritten by the load report (one write per report).
  }

  /**
   * Powers the guests here off once the run permit has run out (see {@link Isolation}); true if
   * no guest is left that the permit holds back (so a new proof may move the permit again).
   * Under the isolation's monitor: the heartbeat's proof waits for a power-off in progress.
   */
  private boolean powerOffIfIsolated() {
    synchronized (isolation) {
      if (closed || !isolation.lapsed(System.nanoTime()) || !anyMayRun()) {
        return true;
      }
      try {
        local.powerOffAll("isolated: no ZooKeeper round trip and no datastore heartbeat for "
            + isolation.silentMillis(System.nanoTime()) + " ms (HA timeout " + haTimeoutMillis / 1000
            + " s; its VMs may restart elsewhere)");
      } catch (RuntimeException e) {
        LOG.error("host {}: powering off isolated guests failed: {}", local.hostId(), e.toString());
      }
      return !anyMayRun();
    }
  }

  /**
   * Whether a guest here may run on its own: any but an incoming one, which resumes only once
   * ZooKeeper confirms its commit (a proof in itself).
   */
  private boolean anyMayRun() {
    return local.guestStates().values().stream().anyMatch(state -> !"incoming".equals(state));
  }

  private void onConnectionState(ConnectionState state) {
    switch (state) {
      case SUSPENDED, LOST -> {
        connected.set(false);
        // Assume the session is gone: nothing here may commit a move any more.
        for (String id : local.outgoingMigrations()) {
          local.cancelOutgoing(id, "lost the ZooKeeper session (" + state.name().toLowerCase() + ")");
        }
        LOG.warn("host {}: ZooKeeper connection {}: outgoing migrations cancelled", local.hostId(), state);
      }
      case RECONNECTED -> {
        connected.set(true);
        LOG.info("host {}: ZooKeeper connection back", local.hostId());
        wake();
      }
      default -> { }
    }
  }

  private void wake() {
    if (!closed && published) {
      loop.execute(this::reconcileSafely);
    }
  }

  private void reconcileSafely() {
    try {
      if (connected.get() && !closed) {
        reconcile();
      }
    } catch (Exception e) {
      LOG.warn("host {}: reconcile failed: {}", local.hostId(), e.toString());
    }
  }

  // --- Reconcile: make the records so ---------------------------------------------------------

  private void reconcile() {
    List<VmRecord> vmRecords = read(vms, Records::vm);
    List<MigrationRecord> migrationRecords = read(migrations, ClusterMember::migrationRecord);
    for (MigrationRecord m : migrationRecords) {
      if (MigrationStates.isTerminal(m.getState())) {
        finished.remove(m.getId()); // the cache shows it over: nothing can restart it any more
      }
    }
    Set<String> vmNodes = new java.util.HashSet<>();
    vms.stream().map(ChildData::getPath).filter(p -> !p.equals(ZkPaths.VMS))
        .forEach(p -> vmNodes.add(p.substring(p.lastIndexOf('/') + 1)));
    Map<String, String> undecidedGuests = new java.util.HashMap<>();
    for (VmRecord vm : vmRecords) {
      String waitsOn = local.undecidedMigration(vm.getSpec().getName());
      if (waitsOn != null) {
        undecidedGuests.put(vm.getSpec().getName(), waitsOn);
      }
    }
    MemberPlanner.Plan plan = MemberPlanner.plan(new MemberPlanner.Input(local.hostId(), vmRecords, vmNodes,
        vmsLoaded, migrationRecords, local.guestStates(), local.outgoingMigrations(), undecidedGuests,
        Set.copyOf(undecided.keySet()), Map.copyOf(epochSeen), Set.copyOf(bootFailed), Map.copyOf(suspendedHere),
        Set.copyOf(finished), Set.copyOf(pendingOutcomes.keySet())));
    // Merged, not replaced: a target's confirmed commit may have raised an epoch meanwhile.
    plan.epochsSeen().forEach((vm, epoch) -> epochSeen.merge(vm, epoch, Math::max));
    Set<String> bootsFailed = new java.util.HashSet<>();
    for (MemberPlanner.Action action : plan.actions()) {
      if (action instanceof MemberPlanner.VmStep step && bootsFailed.contains(step.name())) {
        continue;
      }
      if (!perform(action)) {
        bootsFailed.add(((MemberPlanner.VmStep) action).name()); // only a boot fails
      }
    }
  }

  /** Performs one action; false only for a boot that failed (the VM's other steps of the round are dropped). */
  private boolean perform(MemberPlanner.Action action) {
    if (action instanceof MemberPlanner.VmStep step) {
      return performVmStep(step);
    }
    if (action instanceof MemberPlanner.RetryOutcome a) {
      MigrationReport report = pendingOutcomes.get(a.migrationId());
      if (report != null) {
        writeOutcome(a.migrationId(), report);
      }
    } else if (action instanceof MemberPlanner.StopGuest a) {
      local.destroyGuest(a.name(), a.why());
    } else if (action instanceof MemberPlanner.StepAside a) {
      local.destroyGuest(a.name(), "VM " + a.name() + " is owned by " + a.owner() + " at epoch " + a.epoch());
    } else if (action instanceof MemberPlanner.IgnoreStaleVm a) {
      refuseStale("VM " + a.name(), a.epoch(), a.seen());
    } else if (action instanceof MemberPlanner.ResolveUndecided a) {
      local.resolveUndecided(a.name(), a.resume(), a.why());
    } else if (action instanceof MemberPlanner.StartOutgoing a) {
      startOutgoing(a.migration());
    } else if (action instanceof MemberPlanner.CancelOutgoing a) {
      local.cancelOutgoing(a.migrationId(), a.reason());
    } else if (action instanceof MemberPlanner.RefuseMigration a) {
      refuseStale("migration " + a.migrationId(), a.vmEpoch(), a.seen());
      finished.add(a.migrationId());
      reportOutcome(a.migrationId(), refusal(a.migrationId(), "refused by " + local.hostId()
          + ": it carries VM epoch " + a.vmEpoch() + ", older than epoch " + a.seen() + " seen there"));
    } else if (action instanceof MemberPlanner.ResumeCommitted a) {
      TargetMigration waiting = undecided.remove(a.migrationId());
      if (waiting != null) {
        LOG.info("migration {}: the commit is recorded; resuming {} here", a.migrationId(), a.vm());
        waiting.resumeCommitted(a.epoch());
      }
    } else if (action instanceof MemberPlanner.DiscardUndecided a) {
      TargetMigration waiting = undecided.remove(a.migrationId());
      if (waiting != null) {
        waiting.discard(a.why());
      }
    }
    return true;
  }

  private boolean performVmStep(MemberPlanner.VmStep step) {
    if (step instanceof MemberPlanner.BootGuest a) {
      return boot(a);
    }
    if (step instanceof MemberPlanner.RecordResumed a) {
      updateVm(a.name(), v -> ownedAt(v, a.epoch())
          ? v.toBuilder().setCheckpoint("").setPower(PowerState.POWER_RUNNING).setNote("").setLastBootError("").build() : v);
    } else if (step instanceof MemberPlanner.ClearBootError a) {
      updateVm(a.name(), v -> ownedAt(v, a.epoch()) ? v.toBuilder().setLastBootError("").build() : v);
    } else if (step instanceof MemberPlanner.EnsureOwned a) {
      try {
        local.ensureOwned(a.spec(), a.epoch());
      } catch (RuntimeException e) {
        LOG.warn("host {}: VM {} runs here without its lease: {}", local.hostId(), a.name(), e.getMessage());
      }
    } else if (step instanceof MemberPlanner.SuspendGuest a) {
      suspend(a);
    } else if (step instanceof MemberPlanner.RecordSuspended a) {
      recordSuspended(a.name(), a.epoch(), a.checkpoint());
    } else if (step instanceof MemberPlanner.ClearCheckpoint a) {
      updateVm(a.name(), v -> ownedAt(v, a.epoch()) ? v.toBuilder().setCheckpoint("").build() : v);
    } else if (step instanceof MemberPlanner.RecordPower a) {
      updateVm(a.name(), v -> ownedAt(v, a.epoch())
          ? v.toBuilder().setPower(a.power()).setNote(a.keepNote() ? v.getNote() : "").build() : v);
    }
    return true;
  }

  private boolean ownedAt(VmRecord v, long epoch) {
    return v.getOwnerHost().equals(local.hostId()) && v.getEpoch() == epoch;
  }

  private boolean boot(MemberPlanner.BootGuest a) {
    try {
      if (!ownedNow(a.name(), a.epoch())) {
        return false; // not ours any more (or not provably): the VM's steps wait for the next round
      }
    } catch (Exception e) {
      LOG.debug("host {}: VM {}: cannot confirm ownership before booting: {}", local.hostId(), a.name(), e.toString());
      return false;
    }
    try {
      local.bootGuest(a.spec(), a.epoch(), a.checkpoint());
      LOG.info("host {}: {} VM {} (epoch {})", local.hostId(), a.checkpoint().isEmpty() ? "booted" : "resumed",
          a.name(), a.epoch());
      return true;
    } catch (RuntimeException e) {
      if (e instanceof dev.ferry.storage.StorageException se
          && se.problem() == dev.ferry.storage.StorageException.Problem.LOCK_TIMEOUT) {
        // The VM's lease lock is held by a process that may be frozen (a host HA has just
        // declared dead, stopped mid-write): it times out or comes back; the next round retries.
        LOG.warn("host {}: VM {} not booted yet: {}", local.hostId(), a.name(), e.getMessage());
        return false;
      }
      // Not retried for this epoch, checkpoint and start request: the note and last_boot_error tell
      // the operator, who repairs and starts it again, stops it or moves it.
      bootFailed.add(a.bootKey());
      LOG.warn("host {}: cannot boot VM {}: {}", local.hostId(), a.name(), e.getMessage());
      String error = "cannot boot on " + local.hostId() + ": " + e.getMessage();
      updateVm(a.name(), v -> v.toBuilder().setNote(error).setLastBootError(error).build());
      return false;
    }
  }

  /**
   * Whether this host may boot {@code name} at {@code epoch} now: its run permit holds, its own
   * session's host node is registered, and ZooKeeper's latest record (after a sync) still names it
   * owner at that epoch. The coordinator moves a dead host's VMs only while that host has no node
   * (its HA multi-op fails if one exists), so an agent that reconnects after a freeze either sees
   * the move here or has made it impossible; a cache that has not caught up cannot boot a stale copy.
   */
  private boolean ownedNow(String name, long epoch) throws Exception {
    if (isolation.lapsed(System.nanoTime())) {
      return false;
    }
    Stat hostNode = zk.checkExists().forPath(ZkPaths.host(local.hostId()));
    if (hostNode == null || hostNode.getEphemeralOwner() != zk.getZookeeperClient().getZooKeeper().getSessionId()) {
      return false;
    }
    ZkSync.sync(zk, ZkPaths.vm(name));
    VmRecord fresh = Records.vm(ZkPaths.vm(name), zk.getData().forPath(ZkPaths.vm(name)));
    return fresh.getOwnerHost().equals(local.hostId()) && fresh.getEpoch() == epoch;
  }

  private void suspend(MemberPlanner.SuspendGuest a) {
    try {
      String checkpoint = local.suspendGuest(a.name(), a.epoch());
      suspendedHere.put(a.name(), a.epoch());
      recordSuspended(a.name(), a.epoch(), checkpoint);
      LOG.info("host {}: suspended VM {} to the datastore", local.hostId(), a.name());
    } catch (RuntimeException e) {
      LOG.warn("host {}: cannot suspend VM {}: {}", local.hostId(), a.name(), e.getMessage());
      updateVm(a.name(), v -> v.toBuilder().setNote("cannot suspend on " + local.hostId() + ": " + e.getMessage()).build());
    }
  }
  private void recordSuspended(String name, long epoch, String checkpoint) {
    if (updateVm(name, v -> v.getOwnerHost().equals(local.hostId()) && v.getEpoch() == epoch
        ? v.toBuilder().setCheckpoint(checkpoint).setPower(PowerState.POWER_SUSPENDED).setNote("").build() : v)) {
      suspendedHere.remove(name, epoch);
    }
  }

  private void refuseStale(String what, long epoch, long seen) {
    if (refusedStale.add(what + "@" + epoch)) {
      LOG.warn("host {}: refusing {}: epoch {} is older than epoch {} already seen", local.hostId(), what, epoch, seen);
    }
  }

  private void startOutgoing(MigrationRecord m) {
    HostRecord target;
    try {
      target = Records.host(ZkPaths.host(m.getTargetHost()), zk.getData().forPath(ZkPaths.host(m.getTargetHost())));
    } catch (KeeperException.NoNodeException e) {
      finished.add(m.getId());
      reportOutcome(m.getId(), refusal(m.getId(), "target host " + m.getTargetHost() + " is down"));
      return;
    } catch (Exception e) {
      LOG.warn("migration {}: cannot read target host {}: {}", m.getId(), m.getTargetHost(), e.toString());
      return;
    }
    InetSocketAddress address = Addresses.parse("host " + m.getTargetHost() + " address", target.getAddress());
    boolean started = local.startOutgoing(m, address, new ZkCutoverAuthority(zk, local.hostId(), switchoverCostMillis()),
        progress -> reportProgress(m.getId(), progress), report -> reportOutcome(m.getId(), report));
    if (started) {
      LOG.info("migration {}: sending {} to {} ({})", m.getId(), m.getVm(), m.getTargetHost(), target.getAddress());
    }
  }

  /**
   * Called on the migration's engine thread: never blocks it on ZooKeeper. The newest progress
   * is written from the member's thread, at most once a second; the pause (stop-and-copy and
   * cutover) writes nothing, so no record write competes with the commit inside the downtime.
   */
  private void reportProgress(String migrationId, MigrationProgress progress) {
    if (progress.getPhase() == MigrationPhase.PHASE_STOP_AND_COPY || progress.getPhase() == MigrationPhase.PHASE_CUTOVER) {
      return;
    }
    long now = System.nanoTime();
    Long last = progressWrittenNanos.get(migrationId);
    if (last != null && now - last < PROGRESS_EVERY_NANOS) {
      return;
    }
    progressWrittenNanos.put(migrationId, now);
    if (closed) {
      return;
    }
    loop.execute(() -> updateMigration(migrationId, m -> MigrationStates.sourceMayProceed(m)
        ? m.toBuilder().setProgress(progress).setPhase(progress.getPhase()).build() : m));
  }

  private void reportOutcome(String migrationId, MigrationReport report) {
    learnCommitCost(report);
    finished.add(migrationId);
    progressWrittenNanos.remove(migrationId);
    pendingOutcomes.put(migrationId, report);
    writeOutcome(migrationId, report);
  }

  /** Writes an outcome; one that could not be written (ZooKeeper unreachable) is retried by the reconciler. */
  private void writeOutcome(String migrationId, MigrationReport report) {
    if (writeReport(migrationId, report)) {
      pendingOutcomes.remove(migrationId, report);
    }
  }

  private static MigrationReport refusal(String migrationId, String reason) {
    return MigrationReport.newBuilder().setMigrationId(migrationId).setPhase(MigrationPhase.PHASE_ABORTED)
        .setReason(reason).build();
  }

  /**
   * True once the record holds the source's report (or is gone). The source writes only its
   * report and phase; the coordinator settles the record's state from them (MigrationStates).
   */
  private boolean writeReport(String migrationId, MigrationReport report) {
    return updateMigration(migrationId, m -> m.hasReport() ? m
        : m.toBuilder().setReport(report).setPhase(report.getPhase()).build());
  }

  // --- Target side -------------------------------------------------------------------------------

  /**
   * Checks an incoming migration against the cluster's records, reading only (a sync and two
   * reads; called off the event loop): the migration is running, not being cancelled, goes to
   * this host and moves the VM the source announces. Returns the VM record's spec (the guest the
   * target will allocate, never the peer's) and the migration's secret; throws
   * {@link TargetMigration.Refused} if not.
   */
  public TargetMigration.Expected expectIncoming(String migrationId, GuestSpec announced) {
    if (!dev.ferry.common.MigrationIds.isValid(migrationId)) {
      throw new TargetMigration.Refused("migration id '" + dev.ferry.common.MigrationIds.printable(migrationId)
          + "' is not valid");
    }
    String path = ZkPaths.migration(migrationId);
    MigrationRecord m;
    VmRecord vm;
    try {
      ZkSync.sync(zk, path);
      m = Records.migration(path, zk.getData().forPath(path));
      checkIncoming(m, announced);
      vm = Records.vm(ZkPaths.vm(m.getVm()), zk.getData().forPath(ZkPaths.vm(m.getVm())));
    } catch (KeeperException.NoNodeException e) {
      throw new TargetMigration.Refused("the cluster has no migration " + migrationId + " (or its VM)");
    } catch (TargetMigration.Refused e) {
      throw e;
    } catch (Exception e) {
      throw new TargetMigration.Refused("cannot read migration " + migrationId + " from ZooKeeper: " + e.getMessage());
    }
    GuestSpec spec = vm.getSpec();
    if (spec.getMemoryBytes() != announced.getMemoryBytes()) {
      throw new TargetMigration.Refused("migration " + migrationId + ": the source announces "
          + dev.ferry.common.Sizes.formatBytes(announced.getMemoryBytes()) + " of memory, the record of "
          + m.getVm() + " says " + dev.ferry.common.Sizes.formatBytes(spec.getMemoryBytes()));
    }
    return new TargetMigration.Expected(spec, m.getSecret().toByteArray());
  }

  private void checkIncoming(MigrationRecord m, GuestSpec announced) {
    String migrationId = m.getId();
    if (!m.getTargetHost().equals(local.hostId())) {
      throw new TargetMigration.Refused("migration " + migrationId + " goes to " + m.getTargetHost() + ", not here");
    }
    if (!MigrationStates.sourceMayProceed(m) || m.getCancelRequested()) {
      throw new TargetMigration.Refused("migration " + migrationId + " is " + m.getState()
          + (m.getCancelRequested() ? " (cancel requested)" : ""));
    }
    if (!m.getVm().equals(announced.getName())) {
      throw new TargetMigration.Refused("migration " + migrationId + " moves " + m.getVm() + ", not "
          + dev.ferry.common.MigrationIds.printable(announced.getName()));
    }
  }

  /**
   * The source host the record of {@code migrationId} names, read after a sync without blocking
   * the caller (the target checks it against the source's certificate); null if there is no such
   * record (admission then refuses the migration with its own reason).
   */
  public java.util.concurrent.CompletableFuture<String> sourceHostOf(String migrationId) {
    java.util.concurrent.CompletableFuture<String> source = new java.util.concurrent.CompletableFuture<>();
    String path;
    try {
      path = ZkPaths.migration(migrationId);
      zk.sync().inBackground((client, synced) -> zk.getData().inBackground((c, event) -> {
        if (event.getResultCode() == KeeperException.Code.OK.intValue()) {
          source.complete(Records.migration(path, event.getData()).getSourceHost());
        } else if (event.getResultCode() == KeeperException.Code.NONODE.intValue()) {
          source.complete(null);
        } else {
          source.completeExceptionally(KeeperException.create(KeeperException.Code.get(event.getResultCode()), path));
        }
      }).forPath(path)).forPath(path);
    } catch (Exception e) {
      source.complete(null); // not a path ZooKeeper takes: no such record
    }
    return source;
  }

  /**
   * Who commits an incoming migration on this host: the cutover multi-op, its first attempt with
   * the records and versions this host's watches last showed (no read inside the pause).
   */
  public dev.ferry.engine.precopy.CutoverAuthority incomingAuthority(String migrationId) {
    ZkCutoverAuthority multi = new ZkCutoverAuthority(zk, local.hostId()).withCache(path -> {
      CuratorCache cache = path.startsWith(ZkPaths.MIGRATIONS) ? migrations : vms;
      return cache == null ? null : cache.get(path).orElse(null);
    });
    return new dev.ferry.engine.precopy.CutoverAuthority() {
      @Override
      public Result commit(String id) throws InterruptedException {
        Result result = multi.commit(id);
        if (result.outcome() == Outcome.COMMITTED) {
          MigrationRecord m = migrations.get(ZkPaths.migration(id))
              .map(d -> Records.migration(d.getPath(), d.getData())).orElse(null);
          if (m != null) {
            epochSeen.merge(m.getVm(), result.epoch(), Math::max);
          }
        }
        return result;
      }

      @Override
      public Result settle(String id, String why) throws InterruptedException {
        return multi.settle(id, why);
      }
    };
  }

  /** Keeps a guest whose commit's outcome is unknown; the reconciler decides from the records. */
  public boolean keepUndecided(String migrationId, TargetMigration migration) {
    undecided.put(migrationId, migration);
    wake();
    return true;
  }

  // --- Writes ----------------------------------------------------------------------------------

  private boolean updateVm(String name, UnaryOperator<VmRecord> change) {
    return update(ZkPaths.vm(name), data -> Records.bytes(change.apply(Records.vm(ZkPaths.vm(name), data))));
  }

  private boolean updateMigration(String id, UnaryOperator<MigrationRecord> change) {
    return update(ZkPaths.migration(id), data -> Records.bytes(change.apply(Records.migration(ZkPaths.migration(id), data))));
  }

  /**
   * Read-modify-write with the version checked; retried when someone else wrote in between. True
   * if the change is in (or nothing needed changing, or the node is gone); false if ZooKeeper could
   * not be reached or the record kept changing.
   */
  private boolean update(String path, UnaryOperator<byte[]> change) {
    try {
      if (ZkUpdate.apply(zk, path, change, ZkUpdate.setData(zk)) != ZkUpdate.Outcome.KEPT_CHANGING) {
        return true;
      }
      LOG.warn("host {}: gave up updating {}: it kept changing", local.hostId(), path);
    } catch (Exception e) {
      LOG.warn("host {}: cannot update {}: {}", local.hostId(), path, e.toString());
    }
    return false;
  }

  /** A migration record whose id can name its node (no path is ever built from another). */
  private static MigrationRecord migrationRecord(String path, byte[] data) {
    MigrationRecord m = Records.migration(path, data);
    if (!dev.ferry.common.MigrationIds.isValid(m.getId()) || !ZkPaths.name(path).equals(m.getId())) {
      throw new RecordException(path + ": id '" + dev.ferry.common.MigrationIds.printable(m.getId())
          + "' is not a migration id or not the node's name");
    }
    return m;
  }

  private <T> List<T> read(CuratorCache cache, java.util.function.BiFunction<String, byte[], T> parser) {
    List<T> records = new ArrayList<>();
    cache.stream().filter(d -> !d.getPath().equals(ZkPaths.VMS) && !d.getPath().equals(ZkPaths.MIGRATIONS))
        .forEach((ChildData d) -> {
          try {
            records.add(parser.apply(d.getPath(), d.getData()));
          } catch (RecordException e) {
            LOG.warn("host {}: ignoring {}", local.hostId(), e.getMessage());
          }
        });
    return records;
  }

  public CuratorFramework client() {
    return zk;
  }

  @Override
  public void close() {
    closed = true;
    loop.shutdownNow();
    isolationWatch.shutdownNow();
    Isolation.release(); // this process's guests are no longer held to this member's proofs
    try {
      if (vms != null) {
        vms.close();
      }
      if (migrations != null) {
        migrations.close();
      }
      if (hostNode != null) {
        hostNode.close();
      }
    } catch (Exception e) {
      LOG.debug("closing cluster membership: {}", e.toString());
    }
    if (zk != null) {
      zk.close();
    }
  }
}
