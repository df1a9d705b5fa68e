package dev.ferry.agent.cli;

import dev.ferry.common.PolicyOptions;
import dev.ferry.common.GuestOptions;

import dev.ferry.common.ExitCodes;
import dev.ferry.common.MigrationOutput;
import dev.ferry.common.Json;

import dev.ferry.common.Addresses;
import dev.ferry.common.InvalidConfigException;
import dev.ferry.common.Sizes;
import dev.ferry.engine.guest.MemoryDigest;
import dev.ferry.engine.guest.Workload;
import dev.ferry.agent.transport.AgentClient;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.proto.CompressionMode;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.GuestStatus;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationPolicy;
import dev.ferry.proto.MigrationReport;
import dev.ferry.proto.WorkloadSpec;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code ferry guest ...}: talks to one agent directly, for developers, tests and the benchmark
 * until the coordinator owns the cluster.
 */
@Command(name = "guest",
    mixinStandardHelpOptions = true,
    description = "Create, inspect, migrate and destroy built-in guests on one agent directly (developer commands).",
    subcommands = {GuestCommand.Create.class, GuestCommand.ListCmd.class, GuestCommand.Status.class,
        GuestCommand.Destroy.class, GuestCommand.Migrate.class, GuestCommand.Cancel.class},
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {"0:Success.", "1:The migration failed.", "2:Invalid command line.", "3:Agent unreachable.",
        "4:Agent refused the request.", "5:Migration outcome unknown; the guest stays paused."})
public final class GuestCommand {
  @Spec
  CommandSpec spec;

  @Option(names = "--agent", paramLabel = "HOST:PORT", scope = picocli.CommandLine.ScopeType.INHERIT,
      description = "The agent to talk to (default: $FERRY_AGENT or ${DEFAULT-VALUE}).",
      defaultValue = "${env:FERRY_AGENT:-127.0.0.1:7700}")
  String agent;

  /** Agents that require TLS take tools only with a certificate of the cluster CA. */
  @picocli.CommandLine.Mixin
  TlsOptions tlsOptions;

  InetSocketAddress agentAddress() {
    return Addresses.parse("--agent", agent);
  }

  /** Runs one request against the agent; maps errors to exit codes. */
  abstract static class Base implements Callable<Integer> {
    @ParentCommand
    GuestCommand parent;

    @Spec
    CommandSpec spec;

    PrintWriter out() {
      return spec.commandLine().getOut();
    }

    @Override
    public Integer call() {
      PrintWriter err = spec.commandLine().getErr();
      try (NettyTransport transport = NettyTransport.create(NettyTransport.Kind.NIO, 1, "ferry-cli")) {
        return run(new AgentClient(transport, parent.agentAddress(), parent.tlsOptions.load(), null));
      } catch (InvalidConfigException e) {
        err.println("ferry guest " + spec.name() + ": " + e.getMessage());
        return ExitCodes.USAGE;
      } catch (AgentClient.RefusedException e) {
        err.println("ferry guest " + spec.name() + ": " + e.getMessage());
        return ExitCodes.REFUSED;
      } catch (IOException e) {
        err.println("ferry guest " + spec.name() + ": " + e.getMessage());
        return ExitCodes.UNREACHABLE;
      }
    }

    abstract int run(AgentClient client) throws IOException;
  }

  @Command(name = "create", mixinStandardHelpOptions = true, description = "Create and start a built-in guest on the agent.")
  static final class Create extends Base {
    @Parameters(paramLabel = "NAME", description = "Guest name: lower-case letters, digits, '-'.")
    String name;

    @picocli.CommandLine.Mixin
    GuestOptions guest;

    @Override
    int run(AgentClient client) throws IOException {
      GuestSpec guestSpec = guest.spec(name);
      client.create(guestSpec);
      out().printf("created %s on %s: %s, %d vCPUs, dirtying %s%n", name, Addresses.format(client.address()),
          Sizes.formatBytes(guestSpec.getMemoryBytes()), guestSpec.getVcpus(), Sizes.formatRate(guestSpec.getWorkload().getDirtyRateBytesPerS()));
      return ExitCodes.OK;
    }
  }

  @Command(name = "list", mixinStandardHelpOptions = true, description = "List the agent's guests.")
  static final class ListCmd extends Base {
    @Option(names = "--json", description = "One JSON object per line.")
    boolean json;

    @Override
    int run(AgentClient client) throws IOException {
      List<GuestStatus> guests = client.list();
      if (!json) {
        out().printf("%-20s %-12s %10s %5s %12s%n", "NAME", "STATE", "MEMORY", "VCPUS", "DIRTY RATE");
      }
      for (GuestStatus g : guests) {
        out().println(json ? statusJson(g).toString() : String.format(Locale.ROOT, "%-20s %-12s %10s %5d %12s",
            g.getSpec().getName(), g.getState(), Sizes.formatBytes(g.getSpec().getMemoryBytes()), g.getSpec().getVcpus(),
            Sizes.formatRate(g.getSpec().getWorkload().getDirtyRateBytesPerS())));
      }
      return ExitCodes.OK;
    }
  }

  @Command(name = "status", mixinStandardHelpOptions = true, description = "Show one guest.")
  static final class Status extends Base {
    @Parameters(paramLabel = "NAME")
    String name;

    @Option(names = "--json", description = "JSON output.")
    boolean json;

    @Override
    int run(AgentClient client) throws IOException {
      GuestStatus g = client.status(name);
      out().println(json ? statusJson(g).toString()
          : String.format(Locale.ROOT, "%s: %s, %s, %d vCPUs, digest at resume %s", name, g.getState(),
              Sizes.formatBytes(g.getSpec().getMemoryBytes()), g.getSpec().getVcpus(),
              MemoryDigest.hex(g.getDigestAtResume().toByteArray())));
      return ExitCodes.OK;
    }
  }

  static Json statusJson(GuestStatus g) {
    List<Object> steps = new ArrayList<>();
    g.getVcpuStateAtResume().getVcpusList().forEach(v -> steps.add(v.getStep()));
    return new Json().put("name", g.getSpec().getName()).put("state", g.getState())
        .put("memory_bytes", g.getSpec().getMemoryBytes()).put("vcpus", g.getSpec().getVcpus())
        .put("dirty_rate_bytes_per_s", g.getSpec().getWorkload().getDirtyRateBytesPerS())
        .put("digest_at_resume", g.getDigestAtResume().isEmpty() ? null : MemoryDigest.hex(g.getDigestAtResume().toByteArray()))
        .put("vcpu_steps_at_resume", steps);
  }

  @Command(name = "destroy", mixinStandardHelpOptions = true, description = "Stop a guest and free its memory.")
  static final class Destroy extends Base {
    @Parameters(paramLabel = "NAME")
    String name;

    @Override
    int run(AgentClient client) throws IOException {
      out().println(client.destroy(name));
      return ExitCodes.OK;
    }
  }

  @Command(name = "cancel", mixinStandardHelpOptions = true,
      description = "Cancel an outgoing migration; the guest keeps running on the source.")
  static final class Cancel extends Base {
    @Parameters(paramLabel = "MIGRATION")
    String migrationId;

    @Override
    int run(AgentClient client) throws IOException {
      out().println(client.cancel(migrationId));
      return ExitCodes.OK;
    }
  }

  @Command(name = "migrate", mixinStandardHelpOptions = true,
      description = "Live-migrate a guest from the agent (--agent) to another agent (--to), with a live progress line.")
  static final class Migrate extends Base {
    @Parameters(paramLabel = "NAME")
    String name;

    @Option(names = "--to", required = true, paramLabel = "HOST:PORT", description = "The target agent.")
    String to;

    @Option(names = "--id", paramLabel = "ID", description = "Migration id (default: generated).")
    String id;

    @picocli.CommandLine.Mixin
    PolicyOptions policyOptions;

    @Option(names = "--json", description = "Print the final report as JSON (no progress line).")
    boolean json;

    @Override
    int run(AgentClient client) throws IOException {
      MigrationPolicy policy = policyOptions.policy();
      boolean verify = policyOptions.verify();
      InetSocketAddress target = Addresses.parse("--to", to);
      MigrationOutput output = new MigrationOutput(out(), System.console() != null);
      MigrationReport report = client.migrate(name, target, policy, id == null ? "" : id, p -> {
        if (!json) {
          output.progress(p);
        }
      });
      Json result = reportJson(report);
      if (!json) {
        output.report(report);
      }
      int code = switch (report.getPhase()) {
        case PHASE_COMPLETED -> ExitCodes.OK;
        case PHASE_UNKNOWN -> ExitCodes.UNKNOWN;
        default -> ExitCodes.FAILED;
      };
      if (verify && code == ExitCodes.OK) {
        code = verify(client, target, report, result);
      }
      if (json) {
        out().println(result);
      }
      return code;
    }

    private int verify(AgentClient source, InetSocketAddress target, MigrationReport report, Json result)
        throws IOException {
      AgentClient targetClient = new AgentClient(source.transport(), target, source.tls(), null);
      GuestStatus status = targetClient.awaitDigestAtResume(name, java.time.Duration.ofSeconds(60));
      boolean same = status.getDigestAtResume().equals(report.getSourceDigest());
      boolean sameStep = status.getVcpuStateAtResume().equals(report.getStateAtPause());
      result.put("memory_identical", same).put("vcpu_continues_from_pause", sameStep);
      if (!json) {
        out().printf("memory at resume %s memory at pause (sha256 %s)%n", same ? "==" : "!=",
            MemoryDigest.hex(status.getDigestAtResume().toByteArray()));
        out().printf("vCPUs resumed at step %s, %s the steps they paused at%n",
            status.getVcpuStateAtResume().getVcpusList().stream().map(v -> String.valueOf(v.getStep())).toList(),
            sameStep ? "exactly" : "NOT");
      }
      return same && sameStep ? ExitCodes.OK : ExitCodes.FAILED;
    }
  }

  static Json reportJson(MigrationReport r) {
    return new Json().put("migration_id", r.getMigrationId())
        .put("phase", dev.ferry.engine.precopy.MigrationPhase.fromProto(r.getPhase()).label())
        .put("reason", r.getReason()).put("total_ms", r.getTotalNs() / 1e6).put("downtime_ms", r.getDowntimeNs() / 1e6)
        .put("rounds", r.getRounds()).put("guest_bytes_sent", r.getGuestBytesSent())
        .put("wire_bytes_sent", r.getWireBytesSent()).put("pages_zero", r.getPagesZero())
        .put("pages_raw", r.getPagesRaw()).put("pages_lz4", r.getPagesLz4())
        .put("throttle_percent_max", r.getThrottlePercentMax())
        .put("source_digest", r.getSourceDigest().isEmpty() ? null : MemoryDigest.hex(r.getSourceDigest().toByteArray()))
        .put("completed", r.getPhase() == MigrationPhase.PHASE_COMPLETED);
  }
}
