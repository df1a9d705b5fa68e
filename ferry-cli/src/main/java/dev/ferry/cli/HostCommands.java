package dev.ferry.cli;

import dev.ferry.proto.HostView;
import dev.ferry.proto.MaintenanceRequest;
import java.io.IOException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code ferry host maintenance enter|exit HOST}. */
@Command(name = "host", mixinStandardHelpOptions = true, description = "Put a host in maintenance or back in service.",
    subcommands = {HostCommands.Maintenance.class})
final class HostCommands implements Runnable {
  @picocli.CommandLine.Spec
  picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  @Command(name = "maintenance", mixinStandardHelpOptions = true,
      description = {"Maintenance mode, kept in the host's inventory record by the leading coordinator: it survives",
          "a coordinator failover and the agent's restart."},
      subcommands = {HostCommands.Enter.class, HostCommands.Exit.class})
  static final class Maintenance implements Runnable {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
      spec.commandLine().usage(spec.commandLine().getOut());
    }
  }

  abstract static class Action extends ClusterCommand {
    @Parameters(paramLabel = "HOST")
    String host;

    int request(ApiClient api, String action) throws IOException {
      HostView view = api.post("v1/hosts/" + java.net.URLEncoder.encode(host, java.nio.charset.StandardCharsets.UTF_8)
          + "/maintenance", MaintenanceRequest.newBuilder().setAction(action).build(), HostView.newBuilder()).build();
      out().println(host + ": " + ListCommands.Hosts.state(view)
          + (view.getVmsCount() == 0 ? "" : " (VMs on it: " + String.join(",", view.getVmsList()) + ")"));
      return 0;
    }
  }

  @Command(name = "enter", mixinStandardHelpOptions = true,
      description = {"The host takes no new VMs from now on: placement, 'vm create --host', 'migrate --to'",
          "and 'vm resume --on' refuse it. DRS drains it (in every DRS mode): each running VM is",
          "live-migrated to a host its placement chooses, within the concurrency limits. It is",
          "entering-maintenance until no VM runs on it and nothing migrates to or from it, then",
          "in-maintenance (stopped and suspended VMs may stay). A VM that cannot move (no room, a must",
          "rule) is named with the reason in 'ferry hosts'; the others keep moving."},
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:The host is entering (with --wait: in) maintenance.",
          "2:Invalid command line.", "3:No coordinator could be reached.",
          "4:Refused (no such host); with --wait: VMs are blocked and nothing moves any more.",
          "6:Wrong API token."})
  static final class Enter extends Action {
    @picocli.CommandLine.Option(names = "--wait", description = {"Wait until the host is in maintenance, printing each",
        "VM's move as it starts and ends, and the VMs that cannot move with why."})
    boolean wait;

    @picocli.CommandLine.Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "3600",
        description = "With --wait: give up after this long (exit 4; the drain goes on). Default: ${DEFAULT-VALUE}.")
    long timeoutSeconds;

    /** With --wait: blocked VMs and no move under way for this long end the wait. */
    private static final long STUCK_MILLIS = 30_000;

    @Override
    int run(ApiClient api) throws IOException {
      if (timeoutSeconds < 1 || timeoutSeconds > 86_400) {
        throw new dev.ferry.common.InvalidConfigException("--timeout", "must be 1 to 86400 seconds, got " + timeoutSeconds);
      }
      int code = request(api, "enter");
      return code != 0 || !wait ? code : awaitDrained(api);
    }

    private int awaitDrained(ApiClient api) throws IOException {
      long deadline = System.nanoTime() + timeoutSeconds * 1_000_000_000L;
      long stuckSince = 0;
      java.util.Map<String, String> shown = new java.util.HashMap<>();
      while (true) {
        HostView view = api.get("v1/hosts", dev.ferry.proto.HostList.newBuilder()).build().getHostsList().stream()
            .filter(h -> h.getRecord().getHostId().equals(host)).findFirst()
            .orElseThrow(() -> new IOException("the coordinator no longer lists " + host));
        boolean moving = false;
        for (dev.ferry.proto.MigrationRecord m : api.get("v1/migrations",
            dev.ferry.proto.MigrationList.newBuilder()).build().getMigrationsList()) {
          if (!m.getSourceHost().equals(host) || m.getCreatedMs() == 0) {
            continue;
          }
          boolean active = m.getState() == dev.ferry.proto.MigrationState.MIGRATION_QUEUED
              || m.getState() == dev.ferry.proto.MigrationState.MIGRATION_RUNNING;
          moving |= active;
          String line = m.getVm() + ": " + switch (m.getState()) {
            case MIGRATION_QUEUED -> "queued to move to " + m.getTargetHost();
            case MIGRATION_RUNNING -> "moving to " + m.getTargetHost();
            case MIGRATION_COMPLETED -> "moved to " + m.getTargetHost() + (m.hasReport() ? String.format(
                java.util.Locale.ROOT, " (paused %.1f ms)", m.getReport().getDowntimeNs() / 1e6) : "");
            default -> "not moved to " + m.getTargetHost() + ": " + m.getState().name().replace("MIGRATION_", "")
                .toLowerCase(java.util.Locale.ROOT) + (m.getReason().isEmpty() ? "" : " (" + m.getReason() + ")");
          };
          if (!line.equals(shown.put(m.getId(), line))) {
            out().println("  " + line);
          }
        }
        for (dev.ferry.proto.MaintenanceBlock b : view.getBlockedList()) {
          String line = b.getVm() + ": blocked: " + b.getReason();
          if (!line.equals(shown.put("blocked " + b.getVm(), line))) {
            out().println("  " + line);
          }
        }
        out().flush();
        if (view.getMaintenance() == dev.ferry.proto.MaintenanceState.MAINTENANCE_IN) {
          out().println(host + ": in-maintenance");
          return 0;
        }
        if (view.getMaintenance() == dev.ferry.proto.MaintenanceState.MAINTENANCE_NONE) {
          out().println(host + ": taken out of maintenance meanwhile");
          return dev.ferry.common.ExitCodes.REFUSED;
        }
        long now = System.nanoTime();
        stuckSince = moving || view.getBlockedCount() == 0 ? 0 : stuckSince == 0 ? now : stuckSince;
        if (stuckSince != 0 && now - stuckSince > STUCK_MILLIS * 1_000_000L) {
          out().println(host + ": still entering maintenance: " + view.getBlockedCount() + " VM(s) cannot move"
              + " (the drain goes on if that changes)");
          return dev.ferry.common.ExitCodes.REFUSED;
        }
        if (now - deadline > 0) {
          out().println(host + ": still entering maintenance after " + timeoutSeconds + " s (the drain goes on)");
          return dev.ferry.common.ExitCodes.REFUSED;
        }
        try {
          Thread.sleep(1000);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return dev.ferry.common.ExitCodes.REFUSED;
        }
      }
    }
  }

  @Command(name = "exit", mixinStandardHelpOptions = true,
      description = "Return the host to service: it takes new VMs again at once.",
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:The host is in service.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "4:Refused (no such host).", "6:Wrong API token."})
  static final class Exit extends Action {
    @Override
    int run(ApiClient api) throws IOException {
      return request(api, "exit");
    }
  }
}
