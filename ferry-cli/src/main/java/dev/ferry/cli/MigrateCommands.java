package dev.ferry.cli;

import dev.ferry.common.ExitCodes;
import dev.ferry.common.Json;
import dev.ferry.common.MigrationOutput;
import dev.ferry.proto.GuestStatus;
import dev.ferry.proto.MigrationPolicy;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationReport;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.StartMigrationRequest;
import java.io.IOException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code ferry migrate} and {@code ferry migration cancel|show}. */
final class MigrateCommands {
  private static final long POLL_MILLIS = 200;
  private static final long UNKNOWN_WAIT_NANOS = 120_000_000_000L;

  private MigrateCommands() {}

  @Command(name = "migrate", mixinStandardHelpOptions = true,
      description = {"Live-migrate a running VM to another host.",
          "",
          "Shows a progress line (phase, round, sent/left, rate, dirty rate, expected downtime, ETA)",
          "and ends with a summary. Over a concurrency limit the migration queues first. Ctrl-C",
          "detaches: the migration goes on (ferry migrations shows it; ferry migration cancel ID",
          "stops it)."},
      exitCodeListHeading = "%nExit codes:%n",
      exitCodeList = {"0:Completed (with --verify: and the memory matched).", "1:Aborted or cancelled; the VM runs on its source.",
          "2:Invalid command line.", "3:No coordinator could be reached.",
          "4:Refused (no such VM or host, no room, in maintenance, already migrating...).",
          "5:The outcome is still unknown; the VM stays paused until it is resolved.", "6:Wrong API token."})
  static final class Migrate extends ClusterCommand {
    @Parameters(paramLabel = "VM")
    String vm;

    @Option(names = "--to", required = true, paramLabel = "HOST", description = "The target host.")
    String to;

    @picocli.CommandLine.Mixin
    dev.ferry.common.PolicyOptions policyOptions;

    @Option(names = "--detach", description = "Print the migration's id and return at once.")
    boolean detach;

    @Option(names = "--json", description = "Print the final record as JSON (no progress line).")
    boolean json;

    @Override
    int run(ApiClient api) throws IOException, InterruptedException {
      MigrationPolicy policy = policyOptions.policy();
      boolean verify = policyOptions.verify();
      MigrationRecord m = api.post("v1/migrations", StartMigrationRequest.newBuilder().setVm(vm).setTargetHost(to)
          .setPolicy(policy).build(), MigrationRecord.newBuilder()).build();
      if (detach) {
        out().println(json ? ApiClient.json(m) : m.getId());
        return ExitCodes.OK;
      }
      if (!json) {
        out().printf("migration %s: %s from %s to %s%n", m.getId(), vm, m.getSourceHost(), m.getTargetHost());
        out().flush();
      }
      m = follow(api, m, json ? null : new MigrationOutput(out(), System.console() != null));
      int code = exitCode(m);
      Json verified = new Json();
      if (verify && code == ExitCodes.OK) {
        code = verify(api, m, verified);
      }
      if (json) {
        out().println(ApiClient.json(m));
      }
      return code;
    }

    private MigrationRecord follow(ApiClient api, MigrationRecord m, MigrationOutput output)
        throws IOException, InterruptedException {
      boolean queuedShown = false;
      dev.ferry.proto.MigrationProgress lastShown = null;
      long unknownSince = 0;
      while (true) {
        m = api.get("v1/migrations/" + m.getId(), MigrationRecord.newBuilder()).build();
        if (output != null && m.getState() == MigrationState.MIGRATION_QUEUED && !queuedShown) {
          out().println("queued: waiting for a free migration slot (" + m.getSourceHost() + " out, " + m.getTargetHost()
              + " in, or the cluster's limit)");
          out().flush();
          queuedShown = true;
        }
        if (output != null && m.getState() == MigrationState.MIGRATION_RUNNING && m.hasProgress()
            && !m.getProgress().equals(lastShown) && !isEnd(m.getProgress().getPhase())) {
          lastShown = m.getProgress();
          output.progress(lastShown);
        }
        if (m.getState() == MigrationState.MIGRATION_UNKNOWN) {
          unknownSince = unknownSince == 0 ? System.nanoTime() : unknownSince;
          if (System.nanoTime() - unknownSince > UNKNOWN_WAIT_NANOS) {
            break;
          }
        } else if (!ListCommands.isActive(m.getState())) {
          break;
        }
        Thread.sleep(POLL_MILLIS);
      }
      if (output != null) {
        MigrationReport report = m.getReport();
        if (m.getState() == MigrationState.MIGRATION_COMPLETED && report.getTotalNs() > 0) {
          output.report(report);
        } else {
          output.report(report.toBuilder().setMigrationId(m.getId())
              .setPhase(m.getState() == MigrationState.MIGRATION_COMPLETED ? dev.ferry.proto.MigrationPhase.PHASE_COMPLETED
                  : m.getState() == MigrationState.MIGRATION_CANCELLED ? dev.ferry.proto.MigrationPhase.PHASE_CANCELLED
                  : m.getState() == MigrationState.MIGRATION_UNKNOWN ? dev.ferry.proto.MigrationPhase.PHASE_UNKNOWN
                  : dev.ferry.proto.MigrationPhase.PHASE_ABORTED)
              .setReason(m.getReason()).build());
        }
        if (m.getState() == MigrationState.MIGRATION_COMPLETED) {
          out().printf("%s now runs on %s%n", m.getVm(), m.getTargetHost());
        } else if (m.getState() != MigrationState.MIGRATION_UNKNOWN) {
          out().printf("%s keeps running on %s%n", m.getVm(), m.getSourceHost());
        } else {
          out().printf("%s stays paused until the outcome is read back (ferry migrations shows it)%n", m.getVm());
        }
        out().flush();
      }
      return m;
    }

    /**
     * Asks the target's agent, through the coordinator, for the digest it took at resume and
     * compares it with the source's at pause. The digest is taken after the resume, outside the
     * pause, so it may take a few seconds to appear.
     */
    private int verify(ApiClient api, MigrationRecord m, Json result) throws IOException {
      if (m.getReport().getSourceDigest().isEmpty()) {
        spec.commandLine().getErr().println("ferry migrate: cannot verify: the source took no digest");
        return ExitCodes.FAILED;
      }
      GuestStatus status = awaitDigestAtResume(api, m.getVm(), Duration.ofSeconds(60));
      boolean same = status.getDigestAtResume().equals(m.getReport().getSourceDigest());
      boolean sameStep = status.getVcpuStateAtResume().equals(m.getReport().getStateAtPause());
      result.put("memory_identical", same).put("vcpu_continues_from_pause", sameStep);
      if (!json) {
        out().printf(Locale.ROOT, "memory on %s at resume %s memory on %s at pause (sha256 %s)%n", m.getTargetHost(),
            same ? "==" : "!=", m.getSourceHost(), HexFormat.of().formatHex(status.getDigestAtResume().toByteArray()));
        out().printf("vCPUs resumed at step %s, %s the steps they paused at%n",
            status.getVcpuStateAtResume().getVcpusList().stream().map(v -> String.valueOf(v.getStep())).toList(),
            sameStep ? "exactly" : "NOT");
        out().flush();
      }
      return same && sameStep ? ExitCodes.OK : ExitCodes.FAILED;
    }

    private static GuestStatus awaitDigestAtResume(ApiClient api, String vm, Duration timeout) throws IOException {
      long deadline = System.nanoTime() + timeout.toNanos();
      while (true) {
        GuestStatus status = api.get("v1/vms/" + vm + "/guest", GuestStatus.newBuilder()).build();
        if (!status.getDigestAtResume().isEmpty()) {
          return status;
        }
        if (System.nanoTime() > deadline) {
          throw new IOException("no digest for " + vm + " after " + timeout.toSeconds() + " s");
        }
        try {
          Thread.sleep(100);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException("interrupted", e);
        }
      }
    }
  }

  private static boolean isEnd(dev.ferry.proto.MigrationPhase phase) {
    return phase == dev.ferry.proto.MigrationPhase.PHASE_COMPLETED || phase == dev.ferry.proto.MigrationPhase.PHASE_ABORTED
        || phase == dev.ferry.proto.MigrationPhase.PHASE_CANCELLED;
  }

  static int exitCode(MigrationRecord m) {
    return switch (m.getState()) {
      case MIGRATION_COMPLETED -> ExitCodes.OK;
      case MIGRATION_UNKNOWN, MIGRATION_RUNNING, MIGRATION_QUEUED -> ExitCodes.UNKNOWN;
      default -> ExitCodes.FAILED;
    };
  }

  @Command(name = "migration", mixinStandardHelpOptions = true, description = "Show or cancel one migration.",
      subcommands = {Cancel.class, Show.class})
  static final class MigrationCmd implements Runnable {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
      spec.commandLine().usage(spec.commandLine().getOut());
    }
  }

  @Command(name = "cancel", mixinStandardHelpOptions = true,
      description = "Cancel a queued or running migration before its commit: the VM keeps running on its source.",
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Cancelled (or the cancel was requested with --no-wait).",
          "1:It completed or aborted anyway.", "2:Invalid command line.", "3:No coordinator could be reached.",
          "4:Refused (no such migration, already over, past its commit).", "6:Wrong API token."})
  static final class Cancel extends ClusterCommand {
    @Parameters(paramLabel = "ID")
    String id;

    @Option(names = "--no-wait", description = "Return once the cancel is requested.")
    boolean noWait;

    @Override
    int run(ApiClient api) throws IOException, InterruptedException {
      MigrationRecord m = api.post("v1/migrations/" + id + "/cancel", StartMigrationRequest.getDefaultInstance(),
          MigrationRecord.newBuilder()).build();
      long deadline = System.nanoTime() + 60_000_000_000L;
      while (!noWait && ListCommands.isActive(m.getState()) && System.nanoTime() < deadline) {
        Thread.sleep(POLL_MILLIS);
        m = api.get("v1/migrations/" + id, MigrationRecord.newBuilder()).build();
      }
      out().printf("migration %s: %s%s%n", id, noWait ? "cancel requested" : ListCommands.state(m.getState()),
          m.getReason().isEmpty() ? "" : " (" + m.getReason() + ")");
      return noWait || m.getState() == MigrationState.MIGRATION_CANCELLED ? ExitCodes.OK : ExitCodes.FAILED;
    }
  }

  @Command(name = "show", mixinStandardHelpOptions = true,
      description = {"Show one migration: its hosts, state and report, with where its pause went", "(step by step)"
          + " and the downtime budget's split; --json prints the whole record."},
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Success.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "4:No such migration.", "6:Wrong API token."})
  static final class Show extends ClusterCommand {
    @Parameters(paramLabel = "ID")
    String id;

    @Option(names = "--json", description = "Print the record as JSON (the report's pause_steps among it).")
    boolean json;

    @Override
    int run(ApiClient api) throws IOException {
      MigrationRecord m = api.get("v1/migrations/" + id, MigrationRecord.newBuilder()).build();
      if (json) {
        out().println(ApiClient.json(m));
        return ExitCodes.OK;
      }
      out().printf("migration %s: %s from %s to %s, %s%s%n", m.getId(), m.getVm(), m.getSourceHost(), m.getTargetHost(),
          ListCommands.state(m.getState()), m.getReason().isEmpty() ? "" : " (" + m.getReason() + ")");
      if (m.hasReport() && m.getReport().getTotalNs() > 0) {
        new MigrationOutput(out(), false).report(m.getReport());
      } else if (m.hasProgress()) {
        out().println(MigrationOutput.progressLine(m.getProgress()));
      }
      out().flush();
      return ExitCodes.OK;
    }
  }
}
