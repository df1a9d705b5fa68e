package dev.ferry.bench;

import dev.ferry.agent.cli.AgentProcess;
import dev.ferry.agent.transport.AgentClient;
import dev.ferry.agent.transport.MigrationTls;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.daemons.ClusterCa;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.GuestStatus;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationPolicy;
import dev.ferry.proto.MigrationReport;
import java.io.IOException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Two agent processes without a cluster; the benchmark asks the source agent to migrate, as a
 * developer would. A link's encryption is the agents' setting, not a migration's, so each TLS mode
 * has its own pair of agents; with TLS their certificates (and the benchmark's client one) come
 * from a throw-away CA.
 */
final class StandaloneHarness implements Harness {
  /** The --tls modes: off, or TLS 1.3 with the agents' choice of provider (on) or a forced one. */
  static final List<String> TLS_MODES = List.of("off", "on", "openssl", "jdk");
  private static final Duration CERT_VALIDITY = Duration.ofDays(1);

  private final String tls;
  private final AgentProcess a;
  private final AgentProcess b;
  private final NettyTransport client;
  private final AgentClient source;
  private final AgentClient target;
  private final Path dir;

  /**
   * @param tls one of {@link #TLS_MODES}
   * @param ca issues the agents' certificates; null when {@code tls} is off
   * @param suffix added to the host ids, so that the agents of several harnesses differ
   */
  StandaloneHarness(Path dir, String transport, String tls, ClusterCa ca, String suffix) throws IOException {
    this.dir = dir;
    this.tls = tls;
    MigrationTls clientTls = tls.equals("off") ? MigrationTls.OFF : clientTls(dir, ca, suffix);
    a = AgentProcess.start("bench-a" + suffix, dir.resolve("datastore"), dir.resolve("agent-a" + suffix + ".log"),
        agentArgs(dir, transport, ca, "bench-a" + suffix));
    try {
      b = AgentProcess.start("bench-b" + suffix, dir.resolve("datastore"), dir.resolve("agent-b" + suffix + ".log"),
          agentArgs(dir, transport, ca, "bench-b" + suffix));
    } catch (IOException | RuntimeException e) {
      a.close();
      throw e;
    }
    client = NettyTransport.create(NettyTransport.Kind.NIO, 1, "bench-client");
    source = new AgentClient(client, a.address(), clientTls, a.hostId());
    target = new AgentClient(client, b.address(), clientTls, b.hostId());
  }

  private static MigrationTls clientTls(Path dir, ClusterCa ca, String suffix) throws IOException {
    Path certs = dir.resolve("tls-bench-client" + suffix);
    issue(ca, "bench-client" + suffix, certs);
    return MigrationTls.loadDir(MigrationTls.Mode.REQUIRED, certs, MigrationTls.Provider.AUTO);
  }

  private List<String> agentArgs(Path dir, String transport, ClusterCa ca, String host) throws IOException {
    List<String> args = new ArrayList<>(List.of("--transport", transport));
    if (!tls.equals("off")) {
      Path certs = dir.resolve("tls-" + host);
      issue(ca, host, certs);
      args.addAll(List.of("--tls-dir", certs.toString(), "--migration-encryption", "required",
          "--tls-provider", tls.equals("on") ? "auto" : tls));
    }
    return args;
  }

  private static void issue(ClusterCa ca, String host, Path out) throws IOException {
    try {
      ca.issue(host, out, CERT_VALIDITY);
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot issue a certificate for " + host + ": " + e.getMessage(), e);
    }
  }

  @Override
  public String mode() {
    return "standalone";
  }

  @Override
  public String tls() {
    return tls;
  }

  @Override
  public String describe() {
    return String.format("standalone agents (tls %s): %s (%s), %s (%s); logs in %s", tls, a.hostId(), a.address(),
        b.hostId(), b.address(), dir);
  }

  @Override
  public Outcome migrate(GuestSpec spec, MigrationPolicy policy) throws IOException {
    source.create(spec);
    MigrationReport report = source.migrate(spec.getName(), b.address(), policy, p -> { });
    if (report.getPhase() != MigrationPhase.PHASE_COMPLETED) {
      source.destroy(spec.getName());
      return new Outcome(report, null, null);
    }
    GuestStatus status = target.awaitDigestAtResume(spec.getName(), Duration.ofSeconds(120));
    target.destroy(spec.getName());
    return new Outcome(report, status.getDigestAtResume().equals(report.getSourceDigest()),
        status.getVcpuStateAtResume().equals(report.getStateAtPause()));
  }

  @Override
  public void close() {
    client.close();
    b.close();
    a.close();
  }
}
