package dev.ferry.agent.cluster;

import java.nio.file.Path;
import java.util.Properties;
import org.apache.zookeeper.server.embedded.ExitHandler;
import org.apache.zookeeper.server.embedded.ZooKeeperServerEmbedded;

/**
 * A ZooKeeper server inside this JVM (the demo, tests, {@code ferry zk-server}, a coordinator
 * with an embedded ensemble of one). It listens on 127.0.0.1 only, without the admin HTTP server,
 * and its fatal errors are logged rather than ending the JVM. It serves only clients that have
 * authenticated with the digest scheme (as Ferry's daemons do, see {@link ZkClients}): the ACLs
 * close Ferry's nodes to strangers, but without enforcement an unauthenticated client could still
 * create and delete nodes where the ACL is open (the root). A client that sends a request before
 * authenticating has its session closed.
 */
public final class EmbeddedZooKeeper implements AutoCloseable {
  private static final long START_TIMEOUT_MILLIS = 30_000;
  private final ZooKeeperServerEmbedded server;
  private final String connect;

  private EmbeddedZooKeeper(ZooKeeperServerEmbedded server, String connect) {
    this.server = server;
    this.connect = connect;
  }

  /** A standalone server on 127.0.0.1:{@code port} keeping its data in {@code dataDir}. */
  public static EmbeddedZooKeeper standalone(int port, Path dataDir) throws Exception {
    return start(baseProperties(port, dataDir), dataDir);
  }

  /**
   * Server {@code myId} of an ensemble: {@code peers[i]} is {@code host:quorumPort:electionPort}
   * of server {@code i + 1}.
   */
  public static EmbeddedZooKeeper ensembleMember(int myId, int clientPort, Path dataDir, String... peers)
      throws Exception {
    Properties p = baseProperties(clientPort, dataDir);
    p.setProperty("initLimit", "10");
    p.setProperty("syncLimit", "5");
    for (int i = 0; i < peers.length; i++) {
      p.setProperty("server." + (i + 1), peers[i]);
    }
    java.nio.file.Files.createDirectories(dataDir);
    java.nio.file.Files.writeString(dataDir.resolve("myid"), Integer.toString(myId));
    return start(p, dataDir);
  }

  private static Properties baseProperties(int port, Path dataDir) {
    Properties p = new Properties();
    p.setProperty("dataDir", dataDir.toAbsolutePath().toString());
    p.setProperty("clientPort", Integer.toString(port));
    p.setProperty("clientPortAddress", "127.0.0.1");
    p.setProperty("admin.enableServer", "false");
    p.setProperty("tickTime", "500");
    p.setProperty("minSessionTimeout", "2000");
    p.setProperty("maxSessionTimeout", "120000");
    p.setProperty("4lw.commands.whitelist", "ruok,srvr,stat");
    p.setProperty("enforce.auth.enabled", "true");
    p.setProperty("enforce.auth.schemes", "digest");
    return p;
  }

  private static EmbeddedZooKeeper start(Properties p, Path dataDir) throws Exception {
    java.nio.file.Files.createDirectories(dataDir);
    ZooKeeperServerEmbedded server = ZooKeeperServerEmbedded.builder()
        .baseDir(dataDir.toAbsolutePath())
        .configuration(p)
        .exitHandler(ExitHandler.LOG_ONLY)
        .build();
    server.start(START_TIMEOUT_MILLIS);
    return new EmbeddedZooKeeper(server, "127.0.0.1:" + p.getProperty("clientPort"));
  }

  /** {@code 127.0.0.1:port} of this server. */
  public String connectString() {
    return connect;
  }

  @Override
  public void close() {
    server.close();
  }
}
