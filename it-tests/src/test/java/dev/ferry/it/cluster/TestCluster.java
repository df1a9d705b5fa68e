package dev.ferry.it.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dev.ferry.cluster.model.Records;
import dev.ferry.agent.cluster.ZkClients;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.agent.cluster.ZkSettings;
import dev.ferry.common.Addresses;
import dev.ferry.agent.transport.AgentClient;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.cli.Ferry;
import dev.ferry.proto.CoordinatorEpoch;
import dev.ferry.proto.GuestStatus;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.VmRecord;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.apache.curator.framework.CuratorFramework;
import picocli.CommandLine;

/**
 * A whole cluster of real processes on loopback for one test: ZooKeeper (one server or a
 * three-server ensemble), coordinators and agents, each a {@code ferry} daemon in its own JVM,
 * plus what a test needs to look at it — the CLI (run in this JVM against the real API), an
 * authenticated ZooKeeper client for reading records, and agent clients for the guests' state.
 */
final class TestCluster implements AutoCloseable {
  final Path dir;
  final Path credentials;
  final Path token;
  final String zkConnect;
  final List<FerryProcess> zkServers = new ArrayList<>();
  final Map<String, FerryProcess> coordinators = new LinkedHashMap<>();
  final Map<String, String> coordinatorUrls = new LinkedHashMap<>();
  final Map<String, FerryProcess> agents = new LinkedHashMap<>();
  private final NettyTransport transport = NettyTransport.create(NettyTransport.Kind.NIO, 1, "it-client");
  private CuratorFramework zk;
  /** The cluster's CA, as the demo sets it up: every agent requires TLS with a certificate of it. */
  private final dev.ferry.daemons.ClusterCa ca;
  private final dev.ferry.agent.transport.MigrationTls clientTls;

  private TestCluster(Path dir, String zkConnect) throws IOException {
    this.dir = dir;
    this.zkConnect = zkConnect;
    this.credentials = dir.resolve("zk-credentials");
    this.token = dir.resolve("api-token");
    Files.writeString(credentials, "ferry:it-" + Long.toHexString(System.nanoTime()) + "-secret\n");
    Files.writeString(token, "it-token-" + Long.toHexString(System.nanoTime()) + "-0123456789\n");
    try {
      ca = dev.ferry.daemons.ClusterCa.init(dir.resolve("ca"), Duration.ofDays(1));
      clientTls = dev.ferry.agent.transport.MigrationTls.loadDir(dev.ferry.agent.transport.MigrationTls.Mode.REQUIRED,
          tlsDir("it-client"), dev.ferry.agent.transport.MigrationTls.Provider.AUTO);
    } catch (java.security.GeneralSecurityException e) {
      throw new IOException("cannot make the cluster CA: " + e.getMessage(), e);
    }
  }

  /** Issues a certificate for {@code host} (once) and returns the directory for its --tls-dir. */
  private Path tlsDir(String host) throws IOException {
    Path out = dir.resolve("ca").resolve(host);
    if (!Files.exists(out.resolve(dev.ferry.daemons.ClusterCa.HOST_CERT))) {
      try {
        ca.issue(host, out, Duration.ofDays(1));
      } catch (java.security.GeneralSecurityException e) {
        throw new IOException("cannot issue a certificate for " + host + ": " + e.getMessage(), e);
      }
    }
    return out;
  }

  /** ZooKeeper with {@code zkServers} servers (1 or 3), all started and ready. */
  static TestCluster start(Path dir, int zkServers) throws IOException {
    List<Integer> clientPorts = new ArrayList<>();
    List<String> peers = new ArrayList<>();
    for (int i = 0; i < zkServers; i++) {
      clientPorts.add(freePort());
      peers.add("127.0.0.1:" + freePort() + ":" + freePort());
    }
    TestCluster c = new TestCluster(dir, String.join(",", clientPorts.stream().map(p -> "127.0.0.1:" + p).toList()));
    try {
      for (int i = 0; i < zkServers; i++) {
        List<String> args = new ArrayList<>(List.of("zk-server", "--port", clientPorts.get(i).toString(), "--data",
            dir.resolve("zk-" + (i + 1)).toString()));
        if (zkServers > 1) {
          args.addAll(List.of("--server-id", Integer.toString(i + 1), "--ensemble", String.join(",", peers)));
        }
        c.zkServers.add(FerryProcess.start("zk-" + (i + 1), dir, List.of(), args));
      }
      for (FerryProcess p : c.zkServers) {
        p.awaitReady();
      }
    } catch (IOException | RuntimeException e) {
      c.close();
      throw e;
    }
    return c;
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  List<String> zkArgs() {
    return List.of("--zk", zkConnect, "--zk-credentials-file", credentials.toString());
  }

  void startCoordinator(String id, String... extra) throws IOException {
    int port = freePort();
    List<String> args = new ArrayList<>(List.of("coordinator", "--id", id, "--listen", "127.0.0.1:" + port,
        "--token-file", token.toString(), "--tls-dir", tlsDir(id).toString()));
    args.addAll(zkArgs());
    args.addAll(List.of(extra));
    FerryProcess p = FerryProcess.start(id, dir, List.of(), args);
    coordinators.put(id, p);
    coordinatorUrls.put(id, "http://127.0.0.1:" + port);
    p.awaitReady();
  }

  void startAgent(String hostId, List<String> jvmArgs, String... extra) throws IOException {
    List<String> args = new ArrayList<>(List.of("agent", "--host-id", hostId, "--listen", "127.0.0.1:0",
        "--datastore", dir.resolve("datastore").toString(), "--memory-capacity", "2GiB",
        "--tls-dir", tlsDir(hostId).toString(), "--migration-encryption", "required"));
    args.addAll(zkArgs());
    args.addAll(List.of(extra));
    FerryProcess p = FerryProcess.start(hostId, dir, jvmArgs, args);
    agents.put(hostId, p);
    p.awaitReady();
  }

  /** An authenticated client, as the daemons connect. */
  CuratorFramework zk() {
    if (zk == null) {
      zk = ZkClients.start(new ZkSettings(zkConnect, firstLine(credentials), 10_000));
    }
    return zk;
  }

  static String firstLine(Path file) {
    try {
      return Files.readAllLines(file).get(0).trim();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  VmRecord vm(String name) throws Exception {
    return Records.vm(ZkPaths.vm(name), zk().getData().forPath(ZkPaths.vm(name)));
  }

  MigrationRecord migration(String id) throws Exception {
    return Records.migration(ZkPaths.migration(id), zk().getData().forPath(ZkPaths.migration(id)));
  }

  CoordinatorEpoch coordinatorEpoch() throws Exception {
    return Records.epoch(ZkPaths.COORDINATOR_EPOCH, zk().getData().forPath(ZkPaths.COORDINATOR_EPOCH));
  }

  /** The result of one CLI command. */
  record Cli(int exitCode, String out, String err) {
    @Override
    public String toString() {
      return "exit " + exitCode + "\n--- stdout\n" + out + "--- stderr\n" + err;
    }
  }

  /** Runs {@code ferry args...} in this JVM against every coordinator's API. */
  Cli cli(String... args) {
    List<String> all = new ArrayList<>(List.of(args));
    int insertAt = 0;
    while (insertAt < all.size() && !all.get(insertAt).startsWith("-") && insertAt < subcommandDepth(args)) {
      insertAt++;
    }
    List<String> connection = new ArrayList<>();
    if (!all.get(0).equals("datastore")) { // reads the files, not the API
      connection.addAll(List.of("--coordinator", String.join(",", coordinatorUrls.values())));
    }
    if (!all.contains("--token-file") && !all.get(0).equals("datastore")) {
      connection.addAll(List.of("--token-file", token.toString()));
    }
    all.addAll(insertAt, connection);
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    // As scripts/ferry does: host tools run from the daemons' program, the rest from the operator CLI.
    CommandLine cli = all.get(0).equals("datastore") ? dev.ferry.daemons.Daemons.commandLine() : Ferry.commandLine();
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    int code = cli.execute(all.toArray(String[]::new));
    return new Cli(code, out.toString(), err.toString());
  }

  /** How many leading words name (sub)commands: "vm create NAME" -> 2, "migrate NAME" -> 1. */
  private static int subcommandDepth(String[] args) {
    if (args.length == 0) {
      return 1;
    }
    return switch (args[0]) {
      case "vm", "migration", "datastore", "ha", "drs", "rule" -> 2;
      case "host" -> 3; // host maintenance enter|exit
      default -> 1;
    };
  }

  /** Where each agent says {@code guest} is, and in what state (only agents still alive). */
  Map<String, String> whereIs(String guest) throws IOException {
    Map<String, String> found = new LinkedHashMap<>();
    for (Map.Entry<String, FerryProcess> e : agents.entrySet()) {
      if (!e.getValue().isAlive()) {
        continue;
      }
      for (GuestStatus g : agentClient(e.getKey()).list()) {
        if (g.getSpec().getName().equals(guest)) {
          found.put(e.getKey(), g.getState());
        }
      }
    }
    return found;
  }

  /** A client for agent {@code hostId}, at the address from its ready line. */
  AgentClient agentClient(String hostId) throws IOException {
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("ready on (\\S+)").matcher(agents.get(hostId).awaitReady());
    if (!m.find()) {
      throw new IOException("agent " + hostId + " printed no address");
    }
    return new AgentClient(transport, Addresses.parse("address", m.group(1)), clientTls, hostId);
  }

  /** Asserts that exactly {@code hostId} runs {@code guest} (and no other agent holds it at all). */
  void assertRunsOnlyOn(String guest, String hostId) throws Exception {
    Map<String, String> where = awaitValue(() -> {
      Map<String, String> w = whereIs(guest);
      return w.size() == 1 && "running".equals(w.get(hostId)) ? w : null;
    }, Duration.ofSeconds(30));
    if (where == null) {
      fail(guest + " should run on " + hostId + " only, but the agents say " + whereIs(guest));
    }
    assertEquals(hostId, vm(guest).getOwnerHost(), "the VM record names the host that runs it");
  }

  interface Probe<T> {
    T get() throws Exception;
  }

  /** Polls {@code probe} until it returns non-null, or null after {@code timeout}. */
  static <T> T awaitValue(Probe<T> probe, Duration timeout) throws Exception {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      T value = probe.get();
      if (value != null || System.nanoTime() > deadline) {
        return value;
      }
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
    }
  }

  static void await(String what, Duration timeout, BooleanSupplier condition) throws Exception {
    if (awaitValue(() -> condition.getAsBoolean() ? Boolean.TRUE : null, timeout) == null) {
      fail("timed out after " + timeout.toSeconds() + " s waiting until " + what);
    }
  }

  String logs() {
    StringBuilder b = new StringBuilder();
    List<FerryProcess> all = new ArrayList<>(zkServers);
    all.addAll(coordinators.values());
    all.addAll(agents.values());
    for (FerryProcess p : all) {
      String text = p.logText();
      b.append("\n===== ").append(p.name).append(" (last lines)\n")
          .append(text.lines().skip(Math.max(0, text.lines().count() - 40)).reduce("", (x, y) -> x + y + "\n"));
    }
    return b.toString();
  }

  @Override
  public void close() {
    if (zk != null) {
      zk.close();
    }
    transport.close();
    agents.values().forEach(FerryProcess::close);
    coordinators.values().forEach(FerryProcess::close);
    zkServers.forEach(FerryProcess::close);
  }
}
