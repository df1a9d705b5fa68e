package dev.ferry.agent;

import dev.ferry.agent.clock.Clock;
import dev.ferry.agent.config.Addresses;
import dev.ferry.agent.config.InvalidConfigException;
import dev.ferry.agent.config.Sizes;
import dev.ferry.agent.guest.Guest;
import dev.ferry.agent.guest.MemoryPool;
import dev.ferry.agent.precopy.LinkException;
import dev.ferry.agent.precopy.MigrationFailpoints;
import dev.ferry.agent.precopy.MigrationSettings;
import dev.ferry.agent.precopy.SourceMigration;
import dev.ferry.agent.precopy.TargetMigration;
import dev.ferry.agent.transport.AdminService;
import dev.ferry.agent.transport.AgentServer;
import dev.ferry.agent.transport.NettyMigrationLink;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.agent.wire.Lz4;
import dev.ferry.proto.AgentReply;
import dev.ferry.proto.AgentRequest;
import dev.ferry.proto.Error;
import dev.ferry.proto.GuestList;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.GuestStatus;
import dev.ferry.proto.MigrateGuest;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationReport;
import dev.ferry.proto.Ok;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A host agent: runs built-in guests, sends them to other agents and receives them. Until the
 * coordinator exists it takes admin requests directly (create, list, query, destroy, migrate,
 * cancel). Every request from outside is validated before anything changes.
 */
public final class Agent implements AutoCloseable, TargetMigration.Host, AdminService {
  private static final Logger LOG = LoggerFactory.getLogger(Agent.class);
  private static final int EVENT_LOOP_THREADS = 2;
  private static final long CONNECT_TIMEOUT_MILLIS = 5_000;
  private static final long SHUTDOWN_WAIT_MILLIS = 10_000;

  /** What this host knows about one guest. */
  private static final class Entry {
    final Guest guest;
    volatile String state;
    volatile CompletableFuture<byte[]> digestAtResume;
    volatile dev.ferry.proto.GuestState stateAtResume;

    Entry(Guest guest, String state) {
      this.guest = guest;
      this.state = state;
    }
  }

  private final AgentConfig config;
  private final Clock clock;
  private final Map<String, Entry> guests = new ConcurrentHashMap<>();
  private final Map<String, SourceMigration> outgoing = new ConcurrentHashMap<>();
  private final Map<String, Thread> engines = new ConcurrentHashMap<>();
  private final AtomicInteger incoming = new AtomicInteger();
  private NettyTransport transport;
  private MemoryPool memoryPool = MemoryPool.NONE;
  private AgentServer server;
  private InetSocketAddress boundAddress;
  private volatile boolean closing;
  private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

  public Agent(AgentConfig config, Clock clock) {
    this.config = config;
    this.clock = clock;
  }

  /** Creates the datastore directory if needed, picks the transport and binds the listen address. */
  public Agent start() throws IOException {
    Files.createDirectories(config.datastore());
    memoryPool = new MemoryPool(config.memoryPoolBytes());
    transport = NettyTransport.create(config.transport(), config.allocator(), EVENT_LOOP_THREADS,
        "agent-" + config.hostId());
    server = new AgentServer(transport, this, this, clock);
    boundAddress = server.bind(config.listen());
    LOG.info("LZ4: {}", Lz4.describe());
    LOG.info("guest memory: {}", Guest.preload());
    preloadProtocol();
    LOG.info("agent {} listening on {} (transport {}, datastore {}, capacity {}, memory pool {})", config.hostId(),
        Addresses.format(boundAddress), transport.describe(), config.datastore(),
        Sizes.formatBytes(config.memoryCapacityBytes()), Sizes.formatBytes(config.memoryPoolBytes()));
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

  public InetSocketAddress address() {
    return boundAddress;
  }

  public String transportName() {
    return transport.describe();
  }

  @Override
  public String hostId() {
    return config.hostId();
  }

  // --- Admission -------------------------------------------------------------------------------

  private synchronized void admit(GuestSpec spec) {
    if (closing) {
      throw new TargetMigration.Refused("host " + hostId() + " is shutting down");
    }
    Guest.validate(spec);
    if (guests.containsKey(spec.getName())) {
      throw new TargetMigration.Refused("host " + hostId() + " already has a guest named " + spec.getName());
    }
    long used = guests.values().stream().mapToLong(e -> e.guest.spec().getMemoryBytes()).sum();
    long free = config.memoryCapacityBytes() - used;
    if (spec.getMemoryBytes() > free) {
      throw new TargetMigration.Refused("host " + hostId() + " has " + Sizes.formatBytes(free) + " free, "
          + spec.getName() + " needs " + Sizes.formatBytes(spec.getMemoryBytes()));
    }
  }

  @Override
  public Guest admitIncoming(String migrationId, GuestSpec spec) {
    synchronized (this) {
      if (incoming.get() >= config.migrationsInMax()) {
        throw new TargetMigration.Refused("host " + hostId() + " already receives " + incoming.get()
            + " migrations (limit " + config.migrationsInMax() + ")");
      }
      admit(spec);
      Guest guest = Guest.incoming(spec, clock, memoryPool);
      guests.put(spec.getName(), new Entry(guest, "incoming"));
      incoming.incrementAndGet();
      LOG.info("migration {}: admitted {} into {} memory", migrationId, spec.getName(),
          guest.memory().isFresh() ? "fresh" : "pooled");
      guest.prefaultInBackground();
      return guest;
    }
  }

  @Override
  public void incomingFailed(String migrationId, Guest guest, String reason) {
    incoming.decrementAndGet();
    guests.remove(guest.name());
    guest.destroy();
  }

  @Override
  public void incomingCommitted(String migrationId, Guest guest, dev.ferry.proto.GuestState resumedFrom,
      CompletableFuture<byte[]> digest) {
    incoming.decrementAndGet();
    Entry entry = guests.get(guest.name());
    if (entry != null) {
      entry.state = "running";
      entry.digestAtResume = digest;
      entry.stateAtResume = resumedFrom;
    }
  }

  // --- Admin requests ----------------------------------------------------------------------------

  @Override
  public void handle(AgentRequest request, ReplySink replies) {
    try {
      switch (request.getBodyCase()) {
        case CREATE_GUEST -> replies.send(status(create(request.getCreateGuest().getSpec())));
        case LIST -> replies.send(list());
        case QUERY -> replies.send(status(require(request.getQuery().getGuest())));
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

  private Entry create(GuestSpec spec) {
    synchronized (this) {
      admit(spec);
      guests.put(spec.getName(), new Entry(null, "booting"));
    }
    try {
      Guest guest = Guest.boot(spec, clock, memoryPool);
      Entry entry = new Entry(guest, "running");
      guests.put(spec.getName(), entry);
      LOG.info("guest {} created: {}, {} vCPUs, dirty rate {}", spec.getName(), Sizes.formatBytes(spec.getMemoryBytes()),
          spec.getVcpus(), Sizes.formatRate(spec.getWorkload().getDirtyRateBytesPerS()));
      return entry;
    } catch (RuntimeException e) {
      guests.remove(spec.getName());
      throw e;
    }
  }

  private Entry require(String name) {
    Entry entry = guests.get(name);
    if (entry == null || entry.guest == null) {
      throw new IllegalStateException("host " + hostId() + " has no guest named " + name);
    }
    return entry;
  }

  private AgentReply destroy(String name) {
    Entry entry = require(name);
    if (!entry.state.equals("running") && !entry.state.startsWith("paused")) {
      throw new IllegalStateException("guest " + name + " is " + entry.state + "; cancel its migration first");
    }
    guests.remove(name);
    entry.guest.destroy();
    return ok("guest " + name + " destroyed on " + hostId());
  }

  private AgentReply cancel(String migrationId) {
    SourceMigration migration = outgoing.get(migrationId);
    if (migration == null) {
      throw new IllegalStateException("host " + hostId() + " runs no outgoing migration " + migrationId);
    }
    if (!migration.cancel("cancelled by operator")) {
      throw new IllegalStateException("migration " + migrationId + " is past its commit; it can no longer be cancelled");
    }
    return ok("migration " + migrationId + " is cancelling; the guest keeps running on " + hostId());
  }

  private void migrate(MigrateGuest request, ReplySink replies) {
    MigrationSettings settings = MigrationSettings.from(request.getPolicy());
    InetSocketAddress target = Addresses.parse("target_address", request.getTargetAddress());
    String id = request.getMigrationId().isEmpty() ? "m-" + UUID.randomUUID().toString().substring(0, 8)
        : request.getMigrationId();
    Entry entry;
    synchronized (this) {
      entry = require(request.getGuest());
      if (!entry.state.equals("running")) {
        throw new IllegalStateException("guest " + request.getGuest() + " is " + entry.state + ", not running");
      }
      if (outgoing.size() >= config.migrationsOutMax()) {
        throw new IllegalStateException("host " + hostId() + " already sends " + outgoing.size()
            + " migrations (limit " + config.migrationsOutMax() + ")");
      }
      if (outgoing.containsKey(id)) {
        throw new IllegalStateException("a migration named " + id + " already runs");
      }
      entry.state = "migrating-out";
    }
    Thread engine = new Thread(() -> runMigration(id, entry, target, settings, replies), "migrate-" + id);
    engine.setDaemon(true);
    engines.put(id, engine);
    engine.start();
  }

  private void runMigration(String id, Entry entry, InetSocketAddress target, MigrationSettings settings,
      ReplySink replies) {
    MigrationReport report;
    try {
      NettyMigrationLink link = NettyMigrationLink.connect(transport, target, entry.guest.memory(),
          settings.bandwidthBytesPerSecond(),
          CONNECT_TIMEOUT_MILLIS);
      SourceMigration migration = new SourceMigration(id, hostId(), entry.guest, link, settings, clock,
          progress -> replies.send(AgentReply.newBuilder().setProgress(progress).build()), MigrationFailpoints.NONE);
      outgoing.put(id, migration);
      LOG.info("migration {}: sending {} to {}", id, entry.guest.name(), Addresses.format(target));
      report = migration.run();
    } catch (LinkException e) {
      report = MigrationReport.newBuilder().setMigrationId(id).setPhase(MigrationPhase.PHASE_ABORTED)
          .setReason(e.getMessage()).build();
    } catch (RuntimeException e) {
      LOG.error("migration {} could not start", id, e);
      report = MigrationReport.newBuilder().setMigrationId(id).setPhase(MigrationPhase.PHASE_ABORTED)
          .setReason("could not start: " + e).build();
    } finally {
      outgoing.remove(id);
      engines.remove(id);
    }
    settle(entry, report);
    replies.send(AgentReply.newBuilder().setReport(report).build());
    replies.end();
  }

  /** After an outgoing migration: free the guest if it left, keep it otherwise. */
  private void settle(Entry entry, MigrationReport report) {
    switch (report.getPhase()) {
      case PHASE_COMPLETED -> {
        guests.remove(entry.guest.name());
        entry.guest.destroy();
        LOG.info("migration {}: {} now runs elsewhere; freed here ({} ms, downtime {} ms)", report.getMigrationId(),
            entry.guest.name(), report.getTotalNs() / 1_000_000, String.format("%.1f", report.getDowntimeNs() / 1e6));
      }
      case PHASE_UNKNOWN -> entry.state = "paused (migration " + report.getMigrationId() + " outcome unknown)";
      default -> entry.state = "running";
    }
  }

  private AgentReply list() {
    GuestList.Builder list = GuestList.newBuilder();
    guests.values().stream().filter(e -> e.guest != null)
        .sorted(java.util.Comparator.comparing(e -> e.guest.name()))
        .forEach(e -> list.addGuests(statusOf(e)));
    return AgentReply.newBuilder().setGuests(list).build();
  }

  private AgentReply status(Entry entry) {
    return AgentReply.newBuilder().setGuest(statusOf(entry)).build();
  }

  private GuestStatus statusOf(Entry entry) {
    GuestStatus.Builder status = GuestStatus.newBuilder().setSpec(entry.guest.spec()).setState(entry.state)
        .setFirstStepNanosAfterResume(entry.guest.firstStepNanosAfterResume())
        .setSteps(entry.guest.steps());
    if (entry.stateAtResume != null) {
      status.setVcpuStateAtResume(entry.stateAtResume);
    }
    CompletableFuture<byte[]> digest = entry.digestAtResume;
    if (digest != null && digest.isDone() && !digest.isCompletedExceptionally()) {
      status.setDigestAtResume(com.google.protobuf.ByteString.copyFrom(digest.join()));
    }
    return status.build();
  }

  private static AgentReply ok(String message) {
    return AgentReply.newBuilder().setOk(Ok.newBuilder().setMessage(message)).build();
  }

  private static AgentReply error(String message) {
    return AgentReply.newBuilder().setError(Error.newBuilder().setMessage(message)).build();
  }

  // --- Shutdown ------------------------------------------------------------------------------

  /** Stops listening, cancels outgoing migrations (their guests resume here), then frees every guest. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    closing = true;
    LOG.info("agent {} shutting down", hostId());
    if (server != null) {
      server.close();
    }
    outgoing.values().forEach(m -> m.cancel("agent " + hostId() + " is shutting down"));
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(SHUTDOWN_WAIT_MILLIS);
    for (Thread engine : engines.values()) {
      try {
        engine.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    for (Entry entry : guests.values()) {
      if (entry.guest != null) {
        entry.guest.destroy();
      }
    }
    guests.clear();
    if (transport != null) {
      transport.close();
    }
    memoryPool.close();
    LOG.info("agent {} stopped", hostId());
  }
}
