package dev.ferry.bench;

import dev.ferry.agent.cli.AgentProcess;
import dev.ferry.agent.transport.AgentClient;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.GuestStatus;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationPolicy;
import dev.ferry.proto.MigrationReport;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/** Two agent processes without a cluster; the benchmark asks the source agent to migrate, as a developer would. */
final class StandaloneHarness implements Harness {
  private final AgentProcess a;
  private final AgentProcess b;
  private final NettyTransport client;
  private final AgentClient source;
  private final AgentClient target;
  private final Path dir;

  StandaloneHarness(Path dir, String transport) throws IOException {
    this.dir = dir;
    List<String> agentArgs = List.of("--transport", transport);
    a = AgentProcess.start("bench-a", dir.resolve("datastore"), dir.resolve("agent-a.log"), agentArgs);
    try {
      b = AgentProcess.start("bench-b", dir.resolve("datastore"), dir.resolve("agent-b.log"), agentArgs);
    } catch (IOException e) {
      a.close();
      throw e;
    }
    client = NettyTransport.create(NettyTransport.Kind.NIO, 1, "bench-client");
    source = new AgentClient(client, a.address());
    target = new AgentClient(client, b.address());
  }

  @Override
  public String mode() {
    return "standalone";
  }

  @Override
  public String describe() {
    return String.format("standalone agents: %s (%s), %s (%s); logs in %s", a.hostId(), a.address(), b.hostId(),
        b.address(), dir);
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
