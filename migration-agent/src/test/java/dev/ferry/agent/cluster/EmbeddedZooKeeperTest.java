package dev.ferry.agent.cluster;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The bundled ZooKeeper server serves only clients that authenticated with the digest scheme. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class EmbeddedZooKeeperTest {
  @TempDir
  Path dir;
  private EmbeddedZooKeeper server;

  @BeforeEach
  void start() throws Exception {
    server = EmbeddedZooKeeper.standalone(freePort(), dir.resolve("zk"));
  }

  @AfterEach
  void stop() {
    server.close();
  }

  @Test
  void aClientWithoutCredentialsCannotCreateAtTheRoot() throws Exception {
    try (ZooKeeper stranger = connect()) {
      assertThrows(KeeperException.SessionClosedRequireAuthException.class,
          () -> stranger.create("/planted", new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
    }
    try (ZooKeeper member = connect()) {
      member.addAuthInfo("digest", "ferry:secret".getBytes(StandardCharsets.UTF_8));
      assertNull(member.exists("/planted", false), "the stranger's node was not created");
    }
  }

  @Test
  void aClientWithDigestCredentialsCanCreate() throws Exception {
    try (ZooKeeper member = connect()) {
      member.addAuthInfo("digest", "ferry:secret".getBytes(StandardCharsets.UTF_8));
      member.create("/ferry-test", new byte[0], ZooDefs.Ids.CREATOR_ALL_ACL, CreateMode.PERSISTENT);
      assertNotNull(member.exists("/ferry-test", false));
    }
  }

  private ZooKeeper connect() throws Exception {
    CountDownLatch connected = new CountDownLatch(1);
    ZooKeeper zk = new ZooKeeper(server.connectString(), 10_000, event -> {
      if (event.getState() == Watcher.Event.KeeperState.SyncConnected) {
        connected.countDown();
      }
    });
    if (!connected.await(30, TimeUnit.SECONDS)) {
      zk.close();
      throw new IllegalStateException("no connection to " + server.connectString());
    }
    return zk;
  }

  private static int freePort() throws Exception {
    try (java.net.ServerSocket socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }
}
