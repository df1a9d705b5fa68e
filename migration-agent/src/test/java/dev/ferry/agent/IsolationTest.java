package dev.ferry.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.agent.cluster.EmbeddedZooKeeper;
import dev.ferry.agent.cluster.ZkClients;
import dev.ferry.agent.cluster.ZkSettings;
import dev.ferry.agent.testing.RawPeer;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.guest.RunPermit;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmRecord;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.apache.curator.framework.CuratorFramework;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * An agent in a cluster (embedded ZooKeeper, a real datastore directory) that loses ZooKeeper:
 * while it still writes its datastore heartbeat it keeps its guest running (HA would not restart
 * it: it is alive), and once it cannot write the heartbeat either it powers the guest off by
 * itself at half the HA timeout, before any coordinator would restart it elsewhere.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class IsolationTest {
  private static final String CREDENTIALS = "ferry:isolation-test";
  private static final long HA_TIMEOUT_MS = 4_000;

  @TempDir
  Path dir;

  private EmbeddedZooKeeper zooKeeper;
  private CuratorFramework zk;
  private Agent agent;

  @AfterEach
  void stop() {
    for (AutoCloseable c : new AutoCloseable[] {agent, zk, zooKeeper}) {
      try {
        if (c != null) {
          c.close();
        }
      } catch (Exception ignored) {
        // best effort
      }
    }
  }

  @Test
  void anAgentCutOffFromZooKeeperAndTheDatastorePowersItsGuestsOff() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort();
    }
    zooKeeper = EmbeddedZooKeeper.standalone(port, dir.resolve("zk"));
    ZkSettings settings = new ZkSettings("127.0.0.1:" + port, CREDENTIALS, 4_000);
    zk = ZkClients.start(settings);
    assertTrue(zk.blockUntilConnected(30, TimeUnit.SECONDS));
    Path datastore = dir.resolve("datastore");
    agent = new Agent(AgentConfig.of("host-a", new InetSocketAddress("127.0.0.1", 0), datastore,
        NettyTransport.Kind.AUTO, 1L << 30, 2, 2).withZk(settings), Clock.SYSTEM, HA_TIMEOUT_MS).start();
    zk.create().creatingParentsIfNeeded().forPath(ZkPaths.vm("web-1"), Records.bytes(VmRecord.newBuilder()
        .setFormatVersion(Records.FORMAT).setSpec(dev.ferry.common.Specs.guest("web-1", "32MiB", 1, "1MiB/s", null,
            20, 80, "mixed", 5)).setOwnerHost("host-a").setEpoch(1).setDesiredPower(PowerState.POWER_RUNNING).build()));
    RawPeer.await(() -> "running".equals(agent.guestStates().get("web-1")), Duration.ofSeconds(30), "web-1 runs");
    zk.close();
    zk = null;

    // ZooKeeper goes; the datastore heartbeat still proves the host alive: the guest runs on.
    zooKeeper.close();
    zooKeeper = null;
    long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(2 * HA_TIMEOUT_MS);
    while (System.nanoTime() < until) {
      assertEquals("running", agent.guestStates().get("web-1"), "cut off from ZooKeeper only, the guest keeps running");
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
    }
    assertTrue(RunPermit.allows(System.nanoTime()));

    // The datastore goes too (its hosts/ directory becomes a file: no heartbeat can be written).
    Path hosts = datastore.resolve("hosts");
    try (var files = Files.list(hosts)) {
      for (Path f : files.toList()) {
        Files.delete(f);
      }
    }
    Files.delete(hosts);
    Files.writeString(hosts, "not a directory");
    long cutOff = System.nanoTime();
    RawPeer.await(() -> agent.guestStates().isEmpty(), Duration.ofSeconds(30), "the isolated agent powers web-1 off");
    assertFalse(RunPermit.allows(System.nanoTime()), "no proof of life: the guests here may not run");
    // The vCPUs stopped at the permit's deadline: at most half the timeout after the last proof,
    // which began before the cut, so well before a coordinator could restart web-1 elsewhere.
    assertTrue(RunPermit.deadlineNanos() - cutOff <= TimeUnit.MILLISECONDS.toNanos(HA_TIMEOUT_MS / 2),
        "the run permit ended within half the HA timeout of the cut");
  }
}
