package dev.ferry.cluster.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.agent.cluster.EmbeddedZooKeeper;
import dev.ferry.agent.cluster.ZkClients;
import dev.ferry.agent.cluster.ZkSettings;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.HaPriority;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.HostState;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmRecord;
import dev.ferry.storage.Datastore;
import dev.ferry.storage.HostHeartbeat;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.apache.curator.framework.CuratorFramework;
import org.apache.zookeeper.CreateMode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * HA with a real coordinator on an embedded ZooKeeper and a real datastore: hosts are ZooKeeper
 * sessions holding their ephemeral node, and heartbeat files this test writes. A host whose
 * session is gone but which keeps writing its heartbeat is not dead; once it also stops, its VMs
 * move to a live host with the epoch bumped (and the admission setting lives in ZooKeeper).
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class HaRestartTest {
  private static final String CREDENTIALS = "ferry:ha-test-secret";
  private static final long HA_TIMEOUT_MS = 2_000;

  @TempDir
  Path dir;

  private EmbeddedZooKeeper zkServer;
  private ZkSettings settings;
  private Coordinator coordinator;
  private CuratorFramework admin;
  private CuratorFramework hostA;
  private CuratorFramework hostB;
  private final ScheduledExecutorService beats = Executors.newSingleThreadScheduledExecutor();
  private HostHeartbeat heartbeats;

  @BeforeEach
  void start() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort();
    }
    zkServer = EmbeddedZooKeeper.standalone(port, dir.resolve("zk"));
    settings = new ZkSettings(zkServer.connectString(), CREDENTIALS, 10_000);
    Path datastore = Files.createDirectories(dir.resolve("datastore"));
    heartbeats = Datastore.open(datastore).heartbeats();
    coordinator = new Coordinator("c1", settings, Coordinator.Options.DEFAULT.withHa(HA_TIMEOUT_MS, datastore)).start("http://x");
    admin = ZkClients.start(settings);
    assertTrue(admin.blockUntilConnected(30, TimeUnit.SECONDS));
    await("c1 leads", Duration.ofSeconds(30), coordinator::leading);
    hostA = register("host-a");
    hostB = register("host-b");
  }

  @AfterEach
  void stop() {
    beats.shutdownNow();
    for (AutoCloseable c : new AutoCloseable[] {hostA, hostB, admin, coordinator, zkServer}) {
      try {
        if (c != null) {
          c.close();
        }
      } catch (Exception ignored) {
        // best effort
      }
    }
  }

  /** A host as the coordinator sees one: its own session holding its ephemeral node. */
  private CuratorFramework register(String id) throws Exception {
    CuratorFramework session = ZkClients.start(settings);
    assertTrue(session.blockUntilConnected(30, TimeUnit.SECONDS));
    session.create().creatingParentsIfNeeded().withMode(CreateMode.EPHEMERAL).forPath(ZkPaths.host(id),
        Records.bytes(HostRecord.newBuilder().setFormatVersion(Records.FORMAT).setHostId(id).setAddress("127.0.0.1:1")
            .setCpuCores(4).setMemoryBytes(8L << 30).setState(HostState.HOST_ACTIVE)
            .setUpdatedMs(System.currentTimeMillis()).build()));
    await(id + " is seen", Duration.ofSeconds(30), () -> coordinator.view().isUp(id));
    // Reports as an agent does (a host silent in ZooKeeper gets no new VMs).
    beats.scheduleWithFixedDelay(() -> {
      try {
        if (session.getZookeeperClient().isConnected()) {
          HostRecord r = Records.host(ZkPaths.host(id), session.getData().forPath(ZkPaths.host(id)));
          session.setData().forPath(ZkPaths.host(id), Records.bytes(r.toBuilder()
              .setUpdatedMs(System.currentTimeMillis()).build()));
        }
      } catch (Exception e) {
        // closed, or the node went with its session
      }
    }, 500, 500, TimeUnit.MILLISECONDS);
    return session;
  }

  private void createVm(String name, String owner, HaPriority priority) throws Exception {
    admin.create().forPath(ZkPaths.vm(name), Records.bytes(VmRecord.newBuilder().setFormatVersion(Records.FORMAT)
        .setSpec(GuestSpec.newBuilder().setName(name).setMemoryBytes(64L << 20).setVcpus(1)).setOwnerHost(owner)
        .setEpoch(3).setDesiredPower(PowerState.POWER_RUNNING).setPower(PowerState.POWER_RUNNING)
        .setHaPriority(priority).build()));
  }

  private VmRecord vm(String name) throws Exception {
    return Records.vm(ZkPaths.vm(name), admin.getData().forPath(ZkPaths.vm(name)));
  }

  @Test
  void aHostCutOffFromZooKeeperButWritingItsHeartbeatKeepsItsVmsUntilTheHeartbeatStops() throws Exception {
    createVm("web-1", "host-a", HaPriority.HA_PRIORITY_HIGH);
    createVm("batch-1", "host-a", HaPriority.HA_PRIORITY_DISABLED);
    AtomicLong sequence = new AtomicLong();
    ScheduledFuture<?> beating = beats.scheduleWithFixedDelay(
        () -> heartbeats.write("host-a", sequence.incrementAndGet(), System.currentTimeMillis()), 0, 200,
        TimeUnit.MILLISECONDS);
    await("host-a has written a heartbeat", Duration.ofSeconds(10), () -> sequence.get() > 2);

    hostA.close(); // its session ends: the node goes
    await("host-a is seen down", Duration.ofSeconds(30), () -> !coordinator.view().isUp("host-a"));
    // Three timeouts with the heartbeat going: host-a is alive, only cut off from ZooKeeper.
    long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(3 * HA_TIMEOUT_MS);
    while (System.nanoTime() < until) {
      assertEquals("host-a", vm("web-1").getOwnerHost(), "no restart while host-a's heartbeat changes");
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
    }

    beating.cancel(false);
    await("web-1 restarts on host-b", Duration.ofSeconds(30), () -> {
      try {
        return vm("web-1").getOwnerHost().equals("host-b");
      } catch (Exception e) {
        return false;
      }
    });
    VmRecord moved = vm("web-1");
    assertEquals(4, moved.getEpoch(), "the move bumps the epoch once");
    assertEquals(PowerState.POWER_RUNNING, moved.getDesiredPower());
    assertTrue(moved.getHaRestart().contains("host-a died"), moved.getHaRestart());
    assertEquals("host-a", vm("batch-1").getOwnerHost(), "HA leaves a VM with priority disabled");
    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(2 * HA_TIMEOUT_MS));
    assertEquals(4, vm("web-1").getEpoch(), "restarted once, not again");
  }

  @Test
  void aDeadHostThatRegistersAgainBeforeTheMoveKeepsItsVms() throws Exception {
    createVm("web-2", "host-a", HaPriority.HA_PRIORITY_MEDIUM);
    hostA.close();
    await("host-a is seen down", Duration.ofSeconds(30), () -> !coordinator.view().isUp("host-a"));
    hostA = register("host-a"); // back (a restarted agent) well within the timeout
    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(3 * HA_TIMEOUT_MS));
    assertEquals("host-a", vm("web-2").getOwnerHost());
    assertEquals(3, vm("web-2").getEpoch());
  }

  @Test
  void failoverHostsPersistInZooKeeperAndRefuseCreatesThatBreakThem() throws Exception {
    assertEquals(1, coordinator.requests().haStatus().getSettings().getFailoverHosts(), "default 1");
    coordinator.requests().configureHa(dev.ferry.proto.HaSettings.newBuilder().setFailoverHosts(1).build());
    assertEquals(1, Records.haSettings(ZkPaths.HA_SETTINGS, admin.getData().forPath(ZkPaths.HA_SETTINGS))
        .getFailoverHosts(), "stored where a new leader reads it");
    await("the caches show both hosts", Duration.ofSeconds(10), () -> coordinator.view().liveHosts().size() == 2);
    // Two 8 GiB hosts, one kept for failover: 8 GiB for VMs.
    GuestSpec big = dev.ferry.common.Specs.guest("db-1", "6GiB", 1, "0", null, 20, 80, "mixed", 5);
    VmRecord created = coordinator.requests().createVm(dev.ferry.proto.CreateVmRequest.newBuilder().setSpec(big).build());
    assertEquals(HaPriority.HA_PRIORITY_MEDIUM, created.getHaPriority(), "medium unless asked otherwise");
    assertEquals(HaPriority.HA_PRIORITY_LOW,
        coordinator.requests().setHaPriority("db-1", HaPriority.HA_PRIORITY_LOW).getHaPriority(), "changeable");
    assertEquals(400, org.junit.jupiter.api.Assertions.assertThrows(Refused.class,
        () -> coordinator.requests().setHaPriority("db-1", HaPriority.HA_PRIORITY_UNSPECIFIED)).status());
    GuestSpec more = dev.ferry.common.Specs.guest("db-2", "3GiB", 1, "0", null, 20, 80, "mixed", 5);
    await("the caches show db-1", Duration.ofSeconds(10), () -> coordinator.view().vms().containsKey("db-1"));
    Refused refused = org.junit.jupiter.api.Assertions.assertThrows(Refused.class,
        () -> coordinator.requests().createVm(dev.ferry.proto.CreateVmRequest.newBuilder().setSpec(more).build()));
    assertEquals(409, refused.status());
    assertTrue(refused.getMessage().contains("admission control keeps room for 1 host failure"), refused.getMessage());
    coordinator.requests().configureHa(dev.ferry.proto.HaSettings.newBuilder().setFailoverHosts(0).build());
    coordinator.requests().createVm(dev.ferry.proto.CreateVmRequest.newBuilder().setSpec(more).build());
  }

  private static void await(String what, Duration timeout, java.util.function.BooleanSupplier condition) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting until " + what);
      }
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(50));
    }
  }
}
