package dev.ferry.bench;

import dev.ferry.proto.CreateVmRequest;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.GuestStatus;
import dev.ferry.proto.HostList;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationPolicy;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationReport;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.StartMigrationRequest;
import dev.ferry.proto.VmRecord;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Predicate;

/**
 * A whole cluster on loopback, each part its own process as {@code scripts/demo} starts them: a
 * ZooKeeper server, one coordinator and two agents. Each run creates the VM on the first agent
 * through the API, migrates it to the second with {@code POST /v1/migrations} and follows
 * {@code GET /v1/migrations/ID} as {@code ferry migrate} does, reads the target's digest through
 * the coordinator ({@code GET /v1/vms/NAME/guest}), then stops and deletes the VM. With TLS, as in
 * {@code scripts/demo}: a certificate of one CA per agent and for the coordinator (which asks an
 * agent for a guest's digest), and agents that require encryption.
 */
final class ClusterHarness implements Harness {
  static final String SOURCE = "bench-a";
  static final String TARGET = "bench-b";
  /** How often the run follows the migration's record (ferry migrate polls every 200 ms; finer here). */
  private static final long POLL_NANOS = 20_000_000L;
  private static final long WAIT_NANOS_MAX = 300_000_000_000L;

  private final Path dir;
  private final List<DaemonProcess> processes = new ArrayList<>();
  private final ClusterApi api;
  private final String apiUrl;
  private final String tls;

  /**
   * @param tls one of {@link StandaloneHarness#TLS_MODES}
   * @param ca issues the coordinator's and agents' certificates; null when {@code tls} is off
   */
  ClusterHarness(Path dir, String transport, String tls, dev.ferry.daemons.ClusterCa ca) throws IOException {
    this.dir = Files.createDirectories(dir);
    this.tls = tls;
    Path credentials = dir.resolve("zk-credentials");
    Path token = dir.resolve("api-token");
    Files.writeString(credentials, "ferry:" + random() + "\n");
    String tokenText = random();
    Files.writeString(token, tokenText + "\n");
    int zkPort = freePort();
    int apiPort = freePort();
    apiUrl = "http://127.0.0.1:" + apiPort;
    List<String> zk = List.of("--zk", "127.0.0.1:" + zkPort, "--zk-credentials-file", credentials.toString());
    try {
      start("zk", "256m", List.of("zk-server", "--port", Integer.toString(zkPort), "--data", dir.resolve("zk").toString()));
      start("coordinator", "256m", concat(List.of("coordinator", "--id", "c1", "--listen", "127.0.0.1:" + apiPort,
          "--token-file", token.toString()), concat(tlsArgs(ca, "coordinator-1", false), zk)));
      for (String host : List.of(SOURCE, TARGET)) {
        start(host, "512m", concat(List.of("agent", "--host-id", host, "--listen", "127.0.0.1:0", "--datastore",
            dir.resolve("datastore").toString(), "--memory-capacity", "4GiB", "--transport", transport), concat(tlsArgs(ca, host, true), zk)));
      }
      api = new ClusterApi(URI.create(apiUrl + "/"), tokenText);
      await("both agents up", () -> api.get("v1/hosts", HostList.newBuilder()).getHostsList().stream()
          .filter(h -> h.getUp()).count() == 2);
    } catch (IOException | RuntimeException e) {
      close();
      throw e;
    }
  }

  /** A certificate for {@code host} and the options that use it; an agent also requires encryption. */
  private List<String> tlsArgs(dev.ferry.daemons.ClusterCa ca, String host, boolean agent) throws IOException {
    if (tls.equals("off")) {
      return List.of();
    }
    Path certs = dir.resolve("tls-" + host);
    try {
      ca.issue(host, certs, java.time.Duration.ofDays(1));
    } catch (java.security.GeneralSecurityException e) {
      throw new IOException("cannot issue a certificate for " + host + ": " + e.getMessage(), e);
    }
    List<String> args = new ArrayList<>(List.of("--tls-dir", certs.toString()));
    if (agent) {
      args.addAll(List.of("--migration-encryption", "required", "--tls-provider", tls.equals("on") ? "auto" : tls));
    }
    return args;
  }

  private void start(String name, String heap, List<String> args) throws IOException {
    DaemonProcess p = DaemonProcess.start(name, dir, heap, args);
    processes.add(p);
    p.awaitReady();
  }

  @Override
  public String mode() {
    return "cluster";
  }

  @Override
  public String tls() {
    return tls;
  }

  @Override
  public String describe() {
    return "cluster (tls " + tls + "): ZooKeeper, coordinator at " + apiUrl + ", agents " + SOURCE + " and " + TARGET + "; logs in " + dir;
  }

  @Override
  public Outcome migrate(GuestSpec spec, MigrationPolicy policy) throws IOException {
    String name = spec.getName();
    api.post("v1/vms", CreateVmRequest.newBuilder().setSpec(spec).setHost(SOURCE).build(), VmRecord.newBuilder());
    awaitVm(name, v -> v.getPower() == PowerState.POWER_RUNNING && v.getOwnerHost().equals(SOURCE), "running");
    MigrationRecord m = api.post("v1/migrations", StartMigrationRequest.newBuilder().setVm(name).setTargetHost(TARGET)
        .setPolicy(policy).build(), MigrationRecord.newBuilder()).build();
    String id = m.getId();
    long deadline = System.nanoTime() + WAIT_NANOS_MAX;
    while (isActive(m.getState()) && System.nanoTime() < deadline) {
      LockSupport.parkNanos(POLL_NANOS);
      m = api.get("v1/migrations/" + id, MigrationRecord.newBuilder()).build();
    }
    MigrationReport report = m.getReport().toBuilder().setMigrationId(id).setPhase(phaseOf(m.getState()))
        .setReason(m.getReason()).build();
    Boolean identical = null;
    Boolean continues = null;
    if (m.getState() == MigrationState.MIGRATION_COMPLETED) {
      GuestStatus status = awaitDigest(name);
      identical = status.getDigestAtResume().equals(report.getSourceDigest());
      continues = status.getVcpuStateAtResume().equals(report.getStateAtPause());
    }
    api.post("v1/vms/" + name + "/stop", CreateVmRequest.getDefaultInstance(), VmRecord.newBuilder());
    awaitVm(name, v -> v.getPower() == PowerState.POWER_STOPPED, "stopped");
    api.delete("v1/vms/" + name);
    return new Outcome(report, identical, continues);
  }

  private GuestStatus awaitDigest(String name) throws IOException {
    GuestStatus[] status = new GuestStatus[1];
    await("the digest of " + name + " at resume", () -> {
      status[0] = api.get("v1/vms/" + name + "/guest", GuestStatus.newBuilder()).build();
      return !status[0].getDigestAtResume().isEmpty();
    });
    return status[0];
  }

  private void awaitVm(String name, Predicate<VmRecord> condition, String what) throws IOException {
    await(name + " " + what, () -> condition.test(api.get("v1/vms/" + name, VmRecord.newBuilder()).build()));
  }

  private interface Check {
    boolean done() throws IOException;
  }

  private static void await(String what, Check check) throws IOException {
    long deadline = System.nanoTime() + WAIT_NANOS_MAX;
    while (!check.done()) {
      if (System.nanoTime() > deadline) {
        throw new IOException("timed out waiting for " + what);
      }
      LockSupport.parkNanos(POLL_NANOS);
    }
  }

  private static boolean isActive(MigrationState s) {
    return s == MigrationState.MIGRATION_QUEUED || s == MigrationState.MIGRATION_RUNNING;
  }

  private static MigrationPhase phaseOf(MigrationState s) {
    return switch (s) {
      case MIGRATION_COMPLETED -> MigrationPhase.PHASE_COMPLETED;
      case MIGRATION_CANCELLED -> MigrationPhase.PHASE_CANCELLED;
      case MIGRATION_UNKNOWN, MIGRATION_RUNNING, MIGRATION_QUEUED -> MigrationPhase.PHASE_UNKNOWN;
      default -> MigrationPhase.PHASE_ABORTED;
    };
  }

  private static List<String> concat(List<String> a, List<String> b) {
    List<String> all = new ArrayList<>(a);
    all.addAll(b);
    return all;
  }

  private static String random() {
    byte[] bytes = new byte[16];
    new SecureRandom().nextBytes(bytes);
    return HexFormat.of().formatHex(bytes);
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  @Override
  public void close() {
    // Agents first (they leave the cluster cleanly), then the coordinator, then ZooKeeper.
    for (int i = processes.size() - 1; i >= 0; i--) {
      processes.get(i).close();
    }
  }
}
