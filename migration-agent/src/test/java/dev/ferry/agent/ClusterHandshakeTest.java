package dev.ferry.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.ferry.agent.cluster.EmbeddedZooKeeper;
import dev.ferry.agent.cluster.ZkClients;
import dev.ferry.agent.cluster.ZkSettings;
import dev.ferry.agent.testing.RawPeer;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.common.MigrationIds;
import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.precopy.MigrationSecrets;
import dev.ferry.proto.AgentRequest;
import dev.ferry.proto.Control;
import dev.ferry.proto.CreateGuest;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.HelloAck;
import dev.ferry.proto.MigrationPolicy;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmRecord;
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Agents in a cluster (embedded ZooKeeper, real sockets on loopback) facing peers that have proved
 * nothing: the records decide what a target allocates, and a stray handshake disturbs nothing.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ClusterHandshakeTest {
  private static final String CREDENTIALS = "ferry:test-password";
  @TempDir
  Path dir;

  private EmbeddedZooKeeper zooKeeper;
  private CuratorFramework zk;
  private Agent a;
  private Agent b;

  @AfterEach
  void stop() {
    for (AutoCloseable c : new AutoCloseable[] {a, b, zk, zooKeeper}) {
      try {
        if (c != null) {
          c.close();
        }
      } catch (Exception ignored) {
        // best effort
      }
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket probe = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return probe.getLocalPort();
    }
  }

  private ZkSettings settings(int port) {
    return new ZkSettings("127.0.0.1:" + port, CREDENTIALS, 10_000);
  }

  private void startZooKeeper(int port) throws Exception {
    zooKeeper = EmbeddedZooKeeper.standalone(port, dir.resolve("zk"));
    zk = ZkClients.start(settings(port));
    assertTrue(zk.blockUntilConnected(30, TimeUnit.SECONDS));
  }

  private Agent agent(String host, int zkPort, int listenPort) {
    return new Agent(AgentConfig.of(host, new InetSocketAddress("127.0.0.1", listenPort), dir.resolve("datastore"),
        NettyTransport.Kind.AUTO, 1L << 30, 2, 2).withZk(settings(zkPort)), Clock.SYSTEM);
  }

  private static GuestSpec spec(int vcpus, String dirtyRate) {
    return dev.ferry.common.Specs.guest("web-1", "64MiB", vcpus, dirtyRate, null, 20, 80, "mixed", 5);
  }

  private void create(String path, com.google.protobuf.Message record) throws Exception {
    zk.create().creatingParentsIfNeeded().forPath(path, Records.bytes(record));
  }

  private MigrationRecord migration(String id) throws Exception {
    return Records.migration(ZkPaths.migration(id), zk.getData().forPath(ZkPaths.migration(id)));
  }

  @Test
  void aStrayHelloReservesNothingAndTheTargetAllocatesTheRecordsSpec() throws Exception {
    int zkPort = freePort();
    startZooKeeper(zkPort);
    a = agent("host-a", zkPort, 0).start();
    b = agent("host-b", zkPort, 0).start();
    GuestSpec recorded = spec(1, "1MiB/s");
    create(ZkPaths.vm("web-1"), VmRecord.newBuilder().setFormatVersion(Records.FORMAT).setSpec(recorded)
        .setOwnerHost("host-a").setEpoch(1).setDesiredPower(PowerState.POWER_RUNNING).build());
    RawPeer.await(() -> "running".equals(a.guestStates().get("web-1")), Duration.ofSeconds(30), "web-1 on host-a");

    // Running, to host-b, but with a source that is not there yet: only the stray peer talks.
    String id = MigrationIds.random();
    MigrationRecord m = MigrationRecord.newBuilder().setFormatVersion(Records.FORMAT).setId(id).setVm("web-1")
        .setSourceHost("host-nobody").setTargetHost("host-b").setPolicy(MigrationPolicy.getDefaultInstance())
        .setState(MigrationState.MIGRATION_RUNNING).setSecret(ByteString.copyFrom(MigrationSecrets.newSecret()))
        .setVmEpoch(1).build();
    create(ZkPaths.migration(id), m);
    try (RawPeer stray = new RawPeer(b.address())) {
      GuestSpec strayGuest = spec(3, "0").toBuilder().setKvPort(17001).build();
      stray.send(RawPeer.hello(id, strayGuest));
      HelloAck ack = stray.receive().getHelloAck();
      assertTrue(ack.getAccepted(), ack.getReason());
      assertTrue(b.guestStates().isEmpty(), "nothing reserved or allocated for a peer that proved nothing");

      // The stray connection stays open while the real source moves the VM.
      zk.setData().forPath(ZkPaths.migration(id), Records.bytes(m.toBuilder().setSourceHost("host-a").build()));
      RawPeer.await(() -> {
        try {
          return migration(id).hasReport(); // no coordinator here to settle the state: the source's report
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      }, Duration.ofSeconds(60), "the migration to end");
      MigrationRecord ended = migration(id);
      assertEquals(dev.ferry.proto.MigrationPhase.PHASE_COMPLETED, ended.getReport().getPhase(),
          ended.getReport().getReason());
      assertFalse(ended.getCommitOpId().isEmpty(), "committed");
    }
    assertEquals("running", b.guestStates().get("web-1"));
    GuestSpec onDisk = GuestSpec.parseFrom(dev.ferry.storage.Datastore.open(dir.resolve("datastore")).vm("web-1")
        .readConfig());
    assertEquals(recorded, onDisk, "vm.conf holds the record's spec, never a peer's");
  }

  @Test
  void aMutatingAdminRequestIsRefusedAtTheRouter() throws Exception {
    int zkPort = freePort();
    startZooKeeper(zkPort);
    b = agent("host-b", zkPort, 0).start();
    try (RawPeer peer = new RawPeer(b.address())) {
      peer.send(Control.newBuilder().setRequest(AgentRequest.newBuilder().setCreateGuest(
          CreateGuest.newBuilder().setSpec(spec(1, "0")))).build());
      String refusal = peer.receive().getReply().getError().getMessage();
      assertTrue(refusal.startsWith("this host is managed by its cluster's coordinator: CREATE_GUEST is not served"),
          refusal);
    }
    assertTrue(b.guestStates().isEmpty());
  }

  @Test
  void anAgentListensOnlyOnceItHasJoinedItsCluster() throws Exception {
    int zkPort = freePort();
    int listenPort = freePort();
    CompletableFuture<Agent> started = CompletableFuture.supplyAsync(() -> {
      try {
        return agent("host-b", zkPort, listenPort).start();
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
    });
    try {
      // ZooKeeper is not up: the agent is still joining, and its port takes nothing.
      for (int i = 0; i < 5; i++) {
        assertThrows(ConnectException.class, () -> new Socket("127.0.0.1", listenPort).close());
        assertTrue(!started.isDone(), "still joining");
        java.util.concurrent.locks.LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
      }
      startZooKeeper(zkPort);
      b = started.get(60, TimeUnit.SECONDS);
      new Socket("127.0.0.1", listenPort).close();
    } finally {
      if (b == null) {
        started.thenAccept(Agent::close);
      }
    }
  }
}
