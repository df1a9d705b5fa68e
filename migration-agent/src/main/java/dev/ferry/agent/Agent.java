package dev.ferry.agent;

import dev.ferry.engine.clock.Clock;
import dev.ferry.common.Addresses;
import dev.ferry.common.InvalidConfigException;
import dev.ferry.common.Sizes;
import dev.ferry.agent.cluster.ClusterMember;
import dev.ferry.engine.guest.Guest;
import dev.ferry.engine.guest.MemoryPool;
import dev.ferry.engine.precopy.CutoverAuthority;
import dev.ferry.engine.precopy.LinkException;
import dev.ferry.engine.precopy.MigrationFailpoints;
import dev.ferry.engine.precopy.MigrationSettings;
import dev.ferry.engine.precopy.SourceMigration;
import dev.ferry.engine.precopy.TargetMigration;
import dev.ferry.agent.transport.AdminService;
import dev.ferry.agent.transport.AgentServer;
import dev.ferry.agent.transport.NettyMigrationLink;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.engine.wire.Lz4;
import dev.ferry.proto.AgentReply;
import dev.ferry.proto.AgentRequest;
import dev.ferry.proto.Error;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.MigrateGuest;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationReport;
import dev.ferry.proto.Ok;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A host agent: runs built-in guests, sends them to other agents and receives them. Until the
 * coordinator exists it takes admin requests directly (create, list, query, destroy, migrate,
 * cancel). Every request from outside is validated before anything changes.
 */
public final class Agent implements AutoCloseable, TargetMigration.Host, AdminService, ClusterMember.Local {
  private static final Logger LOG = LoggerFactory.getLogger(Agent.class);
  private static final int EVENT_LOOP_THREADS = 2;
  private static final long CONNECT_TIMEOUT_MILLIS = 5_000;
  private static final long SHUTDOWN_WAIT_MILLIS = 10_000;

  private final AgentConfig config;
  private final Clock clock;
  /** Test fault injection from -Dferry.failpoint (nothing set in production). */
  private final MigrationFailpoints failpoints = MigrationFailpoints.fromSystemProperty();
  private final Guests guests;
  private final OutgoingMigrations outgoing;
  private final IncomingMigrations incoming;
  private NettyTransport transport;
  private MemoryPool memoryPool = MemoryPool.NONE;
  private ClusterMember member;
  private final long haTimeoutMillis;
  /** Frees guests off the caller's thread (stopping their vCPU threads waits). */
  private final java.util.concurrent.ExecutorService reaper = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "guest-reaper");
    t.setDaemon(true);
    return t;
  });
  /** The datastore's side of the VMs this host owns (cluster mode: leases need ZooKeeper's epochs). */
  private VmStorage storage;
  /** The key-value services of the guests running here with that profile. */
  private final Map<String, dev.ferry.agent.app.KvService> kvServices = new ConcurrentHashMap<>();
  private final java.util.Set<String> kvStarting = ConcurrentHashMap.newKeySet();
  /** Starts key-value services off the caller's thread (binding may wait for the previous host). */
  private final java.util.concurrent.ExecutorService kvStarter = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "kv-starter");
    t.setDaemon(true);
    return t;
  });
  private AgentServer server;
  private InetSocketAddress boundAddress;
  /** Where the guests ran (integration tests only: -Dferry.runlog=FILE), or null. */
  private RunLog runLog;
  private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

  public Agent(AgentConfig config, Clock clock) {
    this(config, clock, dev.ferry.agent.cluster.HaTimeout.SECONDS_DEFAULT * 1000L);
  }

  /** {@code haTimeoutMillis}: the cluster's HA timeout (see {@code HaTimeout}); the agent stops its guests at half of it without a proof of life. */
  public Agent(AgentConfig config, Clock clock, long haTimeoutMillis) {
    this.haTimeoutMillis = haTimeoutMillis;
    this.config = config;
    this.clock = clock;
    this.guests = new Guests(config.hostId(), config.memoryCapacityBytes());
    this.outgoing = new OutgoingMigrations(config.hostId(), config.migrationsOutMax());
    this.incoming = new IncomingMigrations(config.hostId(), config.migrationsInMax());
  }

  /**
   * Creates the datastore directory if needed, picks the transport and binds the listen address.
   * In a cluster the agent first joins and reads its records, then listens, then publishes its
   * address: nothing reaches it before it knows what the cluster says.
   */
  public Agent start() throws IOException {
    Files.createDirectories(config.datastore());
    memoryPool = new MemoryPool(config.memoryPoolBytes());
    transport = NettyTransport.create(config.transport(), config.allocator(), EVENT_LOOP_THREADS,
        "agent-" + config.hostId());
    config.tls().logged("agent " + config.hostId());
    LOG.info("LZ4: {}", Lz4.describe());
    LOG.info("guest memory: {}", Guest.preload());
    runLog = RunLog.fromProperty(config.hostId());
    if (runLog != null) {
      Guest.observeRuns(runLog);
    }
    preloadProtocol();
    if (config.zk() != null) {
      try {
        storage = new VmStorage(dev.ferry.storage.Datastore.open(config.datastore()), config.hostId());
        member = new ClusterMember(this, config.zk(), config.cpuModel(), config.cpuCores(),
            config.loadIntervalMillis(), haTimeoutMillis);
        member.join(); // closed with the agent if this fails
      } catch (Exception e) {
        close();
        throw new IllegalStateException("cannot join the cluster: " + e.getMessage(), e);
      }
    } else {
      LOG.warn("agent {} stands alone (no --zk): standalone mode is for development; it listens on loopback only",
          config.hostId());
    }
    server = new AgentServer(transport, this, this, clock, config.tls(), this::expectedSource);
    try {
      boundAddress = server.bind(config.listen());
    } catch (RuntimeException e) {
      close();
      throw e;
    }
    LOG.info("agent {} listening on {} (transport {}, datastore {}, capacity {}, memory pool {})", config.hostId(),
        Addresses.format(boundAddress), transport.describe(), config.datastore(),
        Sizes.formatBytes(config.memoryCapacityBytes()), Sizes.formatBytes(config.memoryPoolBytes()));
    if (member != null) {
      try {
        member.publish();
      } catch (Exception e) {
        close();
        throw new IllegalStateException("cannot join the cluster: " + e.getMessage(), e);
      }
    }
    return this;
  }

  /**
   * Builds the protobuf descriptors now (a few hundred milliseconds the first time) instead of
   * inside the first migration's handshake and switchover.
   */
  private static void preloadProtocol() {
    try {
      dev.ferry.proto.Control.parseFrom(dev.ferry.proto.Control.newBuilder().setHello(dev.ferry.proto.Hello.newBuilder()
          .setGuest(GuestSpec.newBuilder().setWorkload(dev.ferry.proto.WorkloadSpec.getDefaultInstance()))).build()
          .toByteArray());
      dev.ferry.proto.Control.parseFrom(dev.ferry.proto.Control.newBuilder().setDeviceState(
          dev.ferry.proto.DeviceState.newBuilder().setState(dev.ferry.proto.GuestState.newBuilder()
              .addVcpus(dev.ferry.proto.VcpuState.getDefaultInstance()))).build().toByteArray());
    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
      throw new IllegalStateException("protocol self-test failed", e);
    }
  }

  public String transportName() {
    return transport.describe();
  }

  @Override
  public String hostId() {
    return config.hostId();
  }

  // --- Admission -------------------------------------------------------------------------------

  /**
   * Reads only (runs off the event loop: in a cluster it asks ZooKeeper): whether a migration with
   * this id may come here now and for which guest. In a cluster the guest is the VM record's, never
   * the peer's, and the secret comes from the migration record.
   */
  @Override
  public TargetMigration.Expected expectIncoming(String migrationId, GuestSpec announced) {
    if (member == null && config.zk() != null) {
      throw new TargetMigration.Refused("host " + hostId() + " has not joined its cluster yet");
    }
    TargetMigration.Expected expected = member == null ? new TargetMigration.Expected(announced, null)
        : member.expectIncoming(migrationId, announced);
    synchronized (guests) {
      checkIncoming(migrationId, expected.spec());
    }
    return expected;
  }

  /** Whether an incoming guest would be admitted now (without reserving anything). */
  private void checkIncoming(String migrationId, GuestSpec spec) {
    incoming.checkRoom(migrationId);
    guests.admit(spec);
  }

  /** After the source's proof: reserves the name, allocates the memory (off the event loop). */
  @Override
  public Guest admitIncoming(String migrationId, GuestSpec spec) {
    synchronized (guests) {
      checkIncoming(migrationId, spec);
      Guest guest = Guest.incoming(spec, clock, memoryPool);
      guests.put(new Guests.Entry(guest, GuestLifecycle.INCOMING));
      incoming.add(new IncomingMigrations.Incoming(migrationId, spec, guest));
      LOG.info("migration {}: admitted {} into {} memory", migrationId, spec.getName(),
          guest.memory().isFresh() ? "fresh" : "pooled");
      guest.prefaultInBackground();
      return guest;
    }
  }

  /** The source host the record of an incoming migration names (null standing alone: no records). */
  private CompletableFuture<String> expectedSource(String migrationId) {
    ClusterMember m = member;
    return m == null ? CompletableFuture.completedFuture(null) : m.sourceHostOf(migrationId);
  }

  @Override
  public dev.ferry.engine.precopy.CutoverAuthority authority(String migrationId) {
    ClusterMember m = member;
    return m == null ? dev.ferry.engine.precopy.CutoverAuthority.LOCAL : m.incomingAuthority(migrationId);
  }

  @Override
  public MigrationFailpoints failpoints() {
    return failpoints;
  }

  @Override
  public void committedHere(String migrationId, long epoch) {
    IncomingMigrations.Incoming admitted = incoming.get(migrationId);
    GuestSpec spec = admitted == null ? null : admitted.spec(); // the record's: vm.conf never holds a peer's
    if (spec != null && storage != null && member != null) { // standalone agents hold no leases
      try {
        // Taken with the guest already running here (nothing writes its disk before this
        // returns): the lease's fsyncs stay out of the pause. The old owner's next write now fails.
        storage.attach(spec, epoch);
      } catch (RuntimeException e) {
        // ZooKeeper's commit is the authority; the lease follows it (the reconciler retries).
        LOG.error("migration {}: committed, but the datastore lease of {} could not be taken: {}", migrationId,
            spec.getName(), e.getMessage());
      }
    }
  }

  @Override
  public void ensureOwned(GuestSpec spec, long epoch) {
    if (!dev.ferry.engine.guest.RunPermit.allows(System.nanoTime())) {
      // No proof of life lately (a freeze, a cut): the records this round read may be stale and
      // the VM may run elsewhere by now. The isolation check powers the guests off; nothing starts.
      return;
    }
    applyDemand(spec);
    if (storage == null) {
      return;
    }
    dev.ferry.storage.LeasedWriter writer = storage.writer(spec.getName());
    if (writer == null || writer.epoch() != epoch) {
      storage.attach(spec, epoch);
    }
    if (spec.getKvPort() != 0 && !kvServices.containsKey(spec.getName())) {
      startKv(spec);
    }
  }

  /**
   * The running guest takes the record's CPU load and dirty rate ('ferry vm set') without a
   * restart; called every round, it changes the guest only when they differ.
   */
  private void applyDemand(GuestSpec spec) {
    Guests.Entry entry = guests.get(spec.getName());
    Guest guest = entry == null ? null : entry.guest;
    if (guest == null) {
      return;
    }
    dev.ferry.proto.WorkloadSpec want = spec.getWorkload();
    dev.ferry.proto.WorkloadSpec has = guest.spec().getWorkload();
    if (Double.compare(want.getCpuLoad(), has.getCpuLoad()) == 0
        && want.getDirtyRateBytesPerS() == has.getDirtyRateBytesPerS()) {
      return;
    }
    try {
      guest.setDemand(want.getCpuLoad(), want.getDirtyRateBytesPerS());
      LOG.info("VM {}: demand now CPU load {} per vCPU, dirty rate {}", spec.getName(), want.getCpuLoad(),
          Sizes.formatRate(want.getDirtyRateBytesPerS()));
    } catch (RuntimeException e) {
      LOG.warn("VM {}: cannot take the record's demand: {}", spec.getName(), e.getMessage());
    }
  }

  @Override
  public Map<String, dev.ferry.agent.cluster.LoadMeter.GuestCounters> guestCounters() {
    return guests.counters();
  }

  @Override
  public boolean keepUndecided(String migrationId, TargetMigration migration) {
    return member != null && member.keepUndecided(migrationId, migration);
  }

  @Override
  public void incomingFailed(String migrationId, Guest guest, String reason) {
    // No monitor here: this may run on an event loop while another admission allocates under it.
    incoming.remove(migrationId);
    Guests.Entry entry = guests.get(guest.name());
    if (entry != null && entry.guest == guest) {
      guests.remove(entry);
    }
    try {
      reaper.execute(guest::destroy); // may run on an event loop: stopping vCPU threads waits
    } catch (java.util.concurrent.RejectedExecutionException e) {
      guest.destroy(); // shutting down
    }
  }

  @Override
  public void incomingCommitted(String migrationId, Guest guest, dev.ferry.proto.GuestState resumedFrom,
      CompletableFuture<byte[]> digest) {
    incoming.remove(migrationId);
    Guests.Entry entry = guests.get(guest.name());
    if (entry != null) {
      entry.moveTo(GuestLifecycle.RUNNING);
      entry.digestAtResume = digest;
      entry.stateAtResume = resumedFrom;
    }
    startKv(guest.spec());
  }

  /** Starts the guest's key-value service here, if it has that profile (after it runs here). */
  private void startKv(GuestSpec spec) {
    if (spec.getKvPort() == 0 || storage == null || guests.closing() || !kvStarting.add(spec.getName())) {
      return;
    }
    kvStarter.execute(() -> {
      try {
        dev.ferry.storage.LeasedWriter writer = storage.writer(spec.getName());
        if (writer == null || !guests.contains(spec.getName())) {
          LOG.warn("VM {}: no key-value service: the VM does not run here with its lease", spec.getName());
          return;
        }
        if (!dev.ferry.engine.guest.RunPermit.allows(System.nanoTime())) {
          // A thawed or cut-off host: the VM may have restarted elsewhere, which needs this port.
          LOG.warn("VM {}: no key-value service: this host has no proof of life (HA isolation)", spec.getName());
          return;
        }
        kvServices.put(spec.getName(), dev.ferry.agent.app.KvService.start(spec.getName(), spec.getKvPort(), writer,
            storage.directory(spec.getName())));
      } catch (RuntimeException e) {
        LOG.error("VM {}: key-value service not started: {}", spec.getName(), e.getMessage());
      } finally {
        kvStarting.remove(spec.getName());
      }
    });
  }

  /** Stops the guest's key-value service here (it leaves, stops or suspends); waits for pending starts. */
  private void stopKv(String name) {
    try {
      kvStarter.submit(() -> { }).get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      LOG.warn("VM {}: waiting for the key-value starter: {}", name, e.toString());
    }
    dev.ferry.agent.app.KvService kv = kvServices.remove(name);
    if (kv != null) {
      kv.close();
    }
  }

  // --- Admin requests ----------------------------------------------------------------------------

  /** In a cluster guests come only from records: the port takes listing and status only. */
  @Override
  public boolean servesMutations() {
    return config.zk() == null;
  }

  @Override
  public void handle(AgentRequest request, ReplySink replies) {
    try {
      if (config.zk() != null && request.getBodyCase() != AgentRequest.BodyCase.LIST
          && request.getBodyCase() != AgentRequest.BodyCase.QUERY) {
        throw new IllegalStateException("host " + hostId() + " is managed by the cluster's coordinator:"
            + " use ferry vm / ferry migrate (only listing and status are answered here)");
      }
      switch (request.getBodyCase()) {
        case CREATE_GUEST -> replies.send(status(create(request.getCreateGuest().getSpec())));
        case LIST -> replies.send(list());
        case QUERY -> replies.send(status(guests.require(request.getQuery().getGuest())));
        case DESTROY -> replies.send(destroy(request.getDestroy().getGuest()));
        case CANCEL -> replies.send(cancel(request.getCancel().getMigrationId()));
        case MIGRATE -> {
          migrate(request.getMigrate(), replies);
          return; // the engine thread ends the stream
        }
        default -> replies.send(error("unknown request " + request.getBodyCase()));
      }
    } catch (InvalidConfigException | TargetMigration.Refused | IllegalStateException e) {
      replies.send(error(e.getMessage()));
    }
    replies.end();
  }

  private Guests.Entry create(GuestSpec spec) {
    if (spec.getKvPort() != 0 && storage == null) {
      throw new IllegalArgumentException("kv_port: the key-value profile keeps its data on the datastore under a"
          + " lease; run the agent in a cluster (--zk)");
    }
    Guests.Entry entry = guests.boot(spec, clock, memoryPool);
    LOG.info("guest {} created: {}, {} vCPUs, dirty rate {}", spec.getName(), Sizes.formatBytes(spec.getMemoryBytes()),
        spec.getVcpus(), Sizes.formatRate(spec.getWorkload().getDirtyRateBytesPerS()));
    return entry;
  }

  private AgentReply destroy(String name) {
    Guests.Entry entry = guests.require(name);
    if (entry.state != GuestLifecycle.RUNNING && entry.state != GuestLifecycle.PAUSED) {
      throw new IllegalStateException("guest " + name + " is " + entry.label() + "; cancel its migration first");
    }
    guests.remove(name);
    entry.guest.destroy();
    return ok("guest " + name + " destroyed on " + hostId());
  }

  private AgentReply cancel(String migrationId) {
    OutgoingMigrations.Outgoing migration = outgoing.get(migrationId);
    if (migration == null) {
      throw new IllegalStateException("host " + hostId() + " runs no outgoing migration " + migrationId);
    }
    if (!migration.cancel("cancelled by operator")) {
      throw new IllegalStateException("migration " + migrationId + " is past its commit; it can no longer be cancelled");
    }
    return ok("migration " + migrationId + " is cancelling; the guest keeps running on " + hostId());
  }

  private void migrate(MigrateGuest request, ReplySink replies) {
    long acceptedNanos = clock.nanoTime();
    MigrationSettings settings = MigrationSettings.from(request.getPolicy());
    InetSocketAddress target = Addresses.parse("target_address", request.getTargetAddress());
    String id = request.getMigrationId().isEmpty() ? dev.ferry.common.MigrationIds.random()
        : dev.ferry.common.MigrationIds.check("migration_id", request.getMigrationId());
    startOutgoing(id, request.getGuest(), target, null, settings, null, CutoverAuthority.LOCAL, acceptedNanos,
        progress -> replies.send(AgentReply.newBuilder().setProgress(progress).build()),
        report -> {
          replies.send(AgentReply.newBuilder().setReport(report).build());
          replies.end();
        });
  }

  /**
   * Starts the source side of migration {@code id} of guest {@code name} on its own thread; the
   * report goes to {@code done}. Throws if the guest cannot leave now (not running, limit reached).
   */
  private void startOutgoing(String id, String name, InetSocketAddress target, String targetHost,
      MigrationSettings settings, byte[] secret, CutoverAuthority authority, long acceptedNanos,
      SourceMigration.Listener progress,
      Consumer<MigrationReport> done) {
    Guests.Entry entry;
    OutgoingMigrations.Outgoing handle;
    synchronized (guests) {
      entry = guests.require(name);
      if (entry.state != GuestLifecycle.RUNNING) {
        throw new IllegalStateException("guest " + name + " is " + entry.label() + ", not running");
      }
      outgoing.checkRoom(id);
      entry.moveTo(GuestLifecycle.MIGRATING_OUT);
      handle = outgoing.add(id, () -> runMigration(id, entry, target, targetHost, settings, secret, authority,
          acceptedNanos, progress, done));
    }
    handle.thread.start();
  }

  private void runMigration(String id, Guests.Entry entry, InetSocketAddress target, String targetHost,
      MigrationSettings settings, byte[] secret, CutoverAuthority authority, long acceptedNanos,
      SourceMigration.Listener progress,
      Consumer<MigrationReport> done) {
    MigrationReport report;
    OutgoingMigrations.Outgoing handle = outgoing.get(id);
    try {
      NettyMigrationLink link = NettyMigrationLink.connect(transport, target, entry.guest.memory(),
          settings.bandwidthBytesPerSecond(), CONNECT_TIMEOUT_MILLIS, config.tls(), targetHost);
      SourceMigration migration = new SourceMigration(id, hostId(), entry.guest, link, settings, clock, progress,
          failpoints, secret, authority).acceptedAt(acceptedNanos)
          .measuringCpu(dev.ferry.engine.clock.CpuTime.PROCESS);
      handle.started(migration);
      LOG.info("migration {}: sending {} to {}", id, entry.guest.name(), Addresses.format(target));
      report = migration.run();
    } catch (LinkException e) {
      report = MigrationReport.newBuilder().setMigrationId(id).setPhase(MigrationPhase.PHASE_ABORTED)
          .setReason(e.getMessage()).build();
    } catch (RuntimeException e) {
      LOG.error("migration {} could not start", id, e);
      report = MigrationReport.newBuilder().setMigrationId(id).setPhase(MigrationPhase.PHASE_ABORTED)
          .setReason("could not start: " + e).build();
    } catch (java.lang.Error e) {
      outgoing.remove(id);
      throw e;
    }
    try {
      settle(entry, report);
      done.accept(report); // reported (and remembered as finished) before it leaves the outgoing set
    } finally {
      outgoing.remove(id);
    }
  }

  /** After an outgoing migration: free the guest if it left, keep it otherwise. */
  private void settle(Guests.Entry entry, MigrationReport report) {
    switch (report.getPhase()) {
      case PHASE_COMPLETED -> {
        stopKv(entry.guest.name());
        if (storage != null) {
          storage.detach(entry.guest.name());
        }
        guests.remove(entry.guest.name());
        entry.guest.destroy();
        LOG.info("migration {}: {} now runs elsewhere; freed here ({} ms, downtime {} ms)", report.getMigrationId(),
            entry.guest.name(), report.getTotalNs() / 1_000_000, String.format("%.1f", report.getDowntimeNs() / 1e6));
      }
      case PHASE_UNKNOWN -> {
        entry.undecidedMigration = report.getMigrationId();
        entry.moveTo(GuestLifecycle.PAUSED);
      }
      default -> entry.moveTo(GuestLifecycle.RUNNING);
    }
  }

  private AgentReply list() {
    return AgentReply.newBuilder().setGuests(guests.list()).build();
  }

  private static AgentReply status(Guests.Entry entry) {
    return AgentReply.newBuilder().setGuest(Guests.statusOf(entry)).build();
  }

  private static AgentReply ok(String message) {
    return AgentReply.newBuilder().setOk(Ok.newBuilder().setMessage(message)).build();
  }

  private static AgentReply error(String message) {
    return AgentReply.newBuilder().setError(Error.newBuilder().setMessage(message)).build();
  }

  // --- Cluster membership (ClusterMember.Local) ------------------------------------------------

  @Override
  public InetSocketAddress address() {
    return boundAddress;
  }

  @Override
  public long memoryCapacityBytes() {
    return config.memoryCapacityBytes();
  }

  @Override
  public Map<String, String> guestStates() {
    return guests.states();
  }

  @Override
  public long guestMemoryBytes() {
    return guests.memoryBytes();
  }

  @Override
  public void bootGuest(GuestSpec spec, long epoch, String checkpoint) {
    if (storage == null) {
      create(spec);
      return;
    }
    if (checkpoint.isEmpty()) {
      storage.attach(spec, epoch);
      try {
        create(spec);
      } catch (RuntimeException e) {
        storage.detach(spec.getName());
        throw e;
      }
      startKv(spec);
      return;
    }
    Guests.Entry resuming = guests.reserve(spec, GuestLifecycle.RESUMING);
    try {
      VmStorage.Restored restored = storage.restore(spec, epoch, clock, memoryPool);
      Guests.Entry entry = new Guests.Entry(restored.guest(), resuming.state.moveTo(GuestLifecycle.RUNNING));
      entry.stateAtResume = restored.state().getVcpuState();
      entry.digestAtResume = CompletableFuture.completedFuture(restored.digest());
      guests.put(entry);
      restored.guest().resume();
      startKv(spec);
    } catch (RuntimeException e) {
      guests.remove(spec.getName());
      storage.detach(spec.getName());
      throw e;
    }
  }

  @Override
  public String suspendGuest(String name, long epoch) {
    Guests.Entry entry = guests.get(name);
    if (entry == null || entry.guest == null || entry.state != GuestLifecycle.RUNNING || storage == null) {
      throw new IllegalStateException("host " + hostId() + " runs no guest " + name + " that can be suspended");
    }
    entry.moveTo(GuestLifecycle.SUSPENDING);
    stopKv(name); // no write after the checkpoint: memory and disk stay consistent
    entry.guest.pause();
    try {
      storage.suspend(entry.guest, epoch);
    } catch (RuntimeException e) {
      entry.guest.resume();
      entry.moveTo(GuestLifecycle.RUNNING);
      startKv(entry.guest.spec());
      throw e;
    }
    guests.remove(name);
    entry.guest.destroy();
    storage.detach(name);
    return VmStorage.SUSPEND_CHECKPOINT;
  }

  @Override
  public boolean renewLeases() {
    return storage != null && storage.heartbeat();
  }

  @Override
  public void powerOffAll(String why) {
    // Nothing commits from an isolated host: its migrations are cancelled; a guest still in one
    // is destroyed by the next check (its vCPUs are held by the run permit meanwhile).
    for (String id : outgoing.ids()) {
      cancelOutgoing(id, why);
    }
    for (String name : guests.states().keySet()) {
      destroyGuest(name, why);
    }
    LOG.warn("agent {}: powered its guests off: {}", hostId(), why);
  }

  @Override
  public void destroyGuest(String name, String why) {
    Guests.Entry entry = guests.get(name);
    if (entry == null || entry.guest == null || entry.state.inMigration()) {
      return;
    }
    stopKv(name);
    guests.remove(name);
    entry.guest.destroy();
    if (storage != null) {
      storage.detach(name);
    }
    LOG.info("guest {} stopped on {}: {}", name, hostId(), why);
  }

  @Override
  public String undecidedMigration(String name) {
    Guests.Entry entry = guests.get(name);
    return entry == null ? null : entry.undecidedMigration;
  }

  @Override
  public void resolveUndecided(String name, boolean resume, String why) {
    Guests.Entry entry = guests.get(name);
    if (entry == null || entry.undecidedMigration == null) {
      return;
    }
    String migrationId = entry.undecidedMigration;
    entry.undecidedMigration = null;
    if (resume) {
      entry.moveTo(GuestLifecycle.RUNNING);
      entry.guest.resume();
      LOG.warn("migration {}: {}: resuming {} here", migrationId, why, name);
    } else {
      stopKv(name);
      if (storage != null) {
        storage.detach(name);
      }
      guests.remove(name);
      entry.guest.destroy();
      LOG.info("migration {}: {}: freed {} here", migrationId, why, name);
    }
  }

  @Override
  public boolean startOutgoing(dev.ferry.proto.MigrationRecord m, InetSocketAddress target, CutoverAuthority authority,
      SourceMigration.Listener progress, Consumer<MigrationReport> done) {
    try {
      // setup_ms counts from the API's acceptance (the record's creation, on the coordinator's wall clock).
      long sinceCreatedNanos = m.getCreatedMs() == 0 ? 0
          : Math.max(0, System.currentTimeMillis() - m.getCreatedMs()) * 1_000_000L;
      startOutgoing(m.getId(), m.getVm(), target, m.getTargetHost(), MigrationSettings.from(m.getPolicy()),
          m.getSecret().toByteArray(), authority, clock.nanoTime() - sinceCreatedNanos, progress, done);
      return true;
    } catch (IllegalStateException | InvalidConfigException e) {
      done.accept(MigrationReport.newBuilder().setMigrationId(m.getId()).setPhase(MigrationPhase.PHASE_ABORTED)
          .setReason("source " + hostId() + " cannot start it: " + e.getMessage()).build());
      return false;
    }
  }

  @Override
  public void cancelOutgoing(String migrationId, String reason) {
    OutgoingMigrations.Outgoing m = outgoing.get(migrationId);
    if (m != null) {
      m.cancel(reason);
    }
  }

  @Override
  public java.util.Set<String> outgoingMigrations() {
    return outgoing.ids();
  }

  // --- Shutdown ------------------------------------------------------------------------------

  /** Stops listening, cancels outgoing migrations (their guests resume here), then frees every guest. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    guests.shutDown();
    LOG.info("agent {} shutting down", hostId());
    if (member != null) {
      member.close(); // leave the cluster first: the coordinator sees the host go
    }
    kvStarter.shutdownNow();
    reaper.shutdown();
    kvServices.values().forEach(dev.ferry.agent.app.KvService::close);
    kvServices.clear();
    if (storage != null) {
      storage.close();
    }
    if (server != null) {
      server.close();
    }
    outgoing.cancelAllAndWait("agent " + hostId() + " is shutting down", SHUTDOWN_WAIT_MILLIS);
    guests.destroyAll();
    if (runLog != null) {
      Guest.observeRuns(null);
      runLog.close();
    }
    if (transport != null) {
      transport.close();
    }
    memoryPool.close();
    LOG.info("agent {} stopped", hostId());
  }
}
