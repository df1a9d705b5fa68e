package dev.ferry.cluster.api;

import dev.ferry.agent.cluster.EmbeddedZooKeeper;
import dev.ferry.agent.cluster.ZkClients;
import dev.ferry.agent.cluster.ZkSettings;
import dev.ferry.cluster.coordinator.Coordinator;
import dev.ferry.cluster.coordinator.Planner;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import org.apache.curator.framework.CuratorFramework;

/**
 * The API tests' cluster: a real embedded ZooKeeper, coordinator {@code a} (leading, API
 * {@code apiA}), coordinator {@code b} (standing by, API {@code apiB}) and an admin client.
 */
final class TwoCoordinators implements AutoCloseable {
  final EmbeddedZooKeeper zkServer;
  final Coordinator a;
  final Coordinator b;
  final ApiServer apiA;
  final ApiServer apiB;
  final CuratorFramework admin;

  private TwoCoordinators(EmbeddedZooKeeper zkServer, Coordinator a, ApiServer apiA, Coordinator b, ApiServer apiB,
      CuratorFramework admin) {
    this.zkServer = zkServer;
    this.a = a;
    this.apiA = apiA;
    this.b = b;
    this.apiB = apiB;
    this.admin = admin;
  }

  static TwoCoordinators start(Path dir, String credentials, String token) throws Exception {
    EmbeddedZooKeeper zkServer = EmbeddedZooKeeper.standalone(freePort(), dir.resolve("zk"));
    ZkSettings settings = new ZkSettings(zkServer.connectString(), credentials, 10_000);
    Coordinator a = new Coordinator("a", settings, Planner.Limits.DEFAULT);
    ApiServer apiA = new ApiServer(a, token).bind(new InetSocketAddress("127.0.0.1", 0));
    a.start(url(apiA));
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (!a.leading()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("coordinator a did not take the lead within 30 s");
      }
      Thread.sleep(20);
    }
    Coordinator b = new Coordinator("b", settings, Planner.Limits.DEFAULT);
    ApiServer apiB = new ApiServer(b, token).bind(new InetSocketAddress("127.0.0.1", 0));
    b.start(url(apiB));
    return new TwoCoordinators(zkServer, a, apiA, b, apiB, ZkClients.start(settings));
  }

  static String url(ApiServer api) {
    return "http://127.0.0.1:" + api.boundAddress().getPort();
  }

  @Override
  public void close() {
    for (AutoCloseable c : new AutoCloseable[] {admin, apiB, b, apiA, a, zkServer}) {
      try {
        c.close();
      } catch (Exception ignored) {
        // best effort
      }
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }
}
