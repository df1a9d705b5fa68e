package dev.ferry.cluster.api;

import dev.ferry.agent.cluster.EmbeddedZooKeeper;
import dev.ferry.agent.cluster.ZkClients;
import dev.ferry.agent.cluster.ZkSettings;
import dev.ferry.cluster.coordinator.Coordinator;
import dev.ferry.cluster.coordinator.Planner;
import java.net.InetSocketAddress;
import java.net.http.HttpClient;
import java.nio.file.Path;
import java.time.Duration;
import org.apache.curator.framework.CuratorFramework;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/**
 * The API tests' cluster, fresh for each test: a real embedded ZooKeeper, coordinator {@code a}
 * (leading, API {@code apiA}), coordinator {@code b} (standing by, API {@code apiB}), an admin
 * client and an HTTP client.
 */
abstract class TwoCoordinatorsTestBase {
  static final String TOKEN = "test-token-0123456789abcdef";

  @TempDir
  Path dir;

  EmbeddedZooKeeper zkServer;
  Coordinator a;
  Coordinator b;
  ApiServer apiA;
  ApiServer apiB;
  CuratorFramework admin;
  final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  /** The ZooKeeper digest credentials of this test class. */
  abstract String credentials();

  @BeforeEach
  void startCoordinators() throws Exception {
    zkServer = EmbeddedZooKeeper.standalone(freePort(), dir.resolve("zk"));
    ZkSettings settings = new ZkSettings(zkServer.connectString(), credentials(), 10_000);
    a = new Coordinator("a", settings, Planner.Limits.DEFAULT);
    apiA = new ApiServer(a, TOKEN).bind(new InetSocketAddress("127.0.0.1", 0));
    a.start(url(apiA));
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (!a.leading()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("coordinator a did not take the lead within 30 s");
      }
      Thread.sleep(20);
    }
    b = new Coordinator("b", settings, Planner.Limits.DEFAULT);
    apiB = new ApiServer(b, TOKEN).bind(new InetSocketAddress("127.0.0.1", 0));
    b.start(url(apiB));
    admin = ZkClients.start(settings);
  }

  @AfterEach
  void stopCoordinators() {
    for (AutoCloseable c : new AutoCloseable[] {admin, apiB, b, apiA, a, zkServer}) {
      try {
        if (c != null) {
          c.close();
        }
      } catch (Exception ignored) {
        // best effort
      }
    }
  }

  static String url(ApiServer api) {
    return "http://127.0.0.1:" + api.boundAddress().getPort();
  }

  static int freePort() throws Exception {
    try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }
}
