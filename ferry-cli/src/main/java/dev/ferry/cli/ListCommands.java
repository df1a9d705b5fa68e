package dev.ferry.cli;

import dev.ferry.common.Table;
import dev.ferry.common.Sizes;
import dev.ferry.proto.HostList;
import dev.ferry.proto.HostState;
import dev.ferry.proto.HostView;
import dev.ferry.proto.MigrationList;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmList;
import dev.ferry.proto.VmRecord;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The listings: {@code ferry hosts}, {@code ferry vms}, {@code ferry migrations [--watch]}. */
final class ListCommands {
  private ListCommands() {}

  @Command(name = "hosts", mixinStandardHelpOptions = true, description = "List the cluster's hosts.",
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Success.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "4:Refused.", "6:Wrong API token."})
  static final class Hosts extends ClusterCommand {
    @Option(names = "--json", description = "Print the API's JSON.")
    boolean json;

    @Override
    int run(ApiClient api) throws IOException {
      HostList.Builder hosts = api.get("v1/hosts", HostList.newBuilder());
      if (json) {
        out().println(ApiClient.json(hosts));
        return 0;
      }
      Table t = new Table("HOST", "STATE", "ADDRESS", "CORES", "CPU", "MEMORY USED/TOTAL", "FREE", "VMS", "MIGRATING OUT/IN");
      for (HostView h : hosts.getHostsList()) {
        var r = h.getRecord();
        t.row(r.getHostId(), h.getUp() ? state(h) : "down" + maintenance(h), r.getAddress(), r.getCpuCores(),
            h.getUp() ? cpu(h.getCpuUsedCores(), r.getCpuCores()) : "",
            h.getUp() ? Sizes.formatBytes(r.getMemoryUsedBytes()) + " / " + Sizes.formatBytes(r.getMemoryBytes()) : "",
            h.getUp() ? Sizes.formatBytes(h.getMemoryFreeBytes()) : "", String.join(",", h.getVmsList()),
            h.getMigrationsOut() + "/" + h.getMigrationsIn());
      }
      t.print(out());
      return 0;
    }

    /** Windowed CPU use against the capacity: "37 % (0.74 cores)". */
    static String cpu(double usedCores, int capacity) {
      return String.format(Locale.ROOT, "%.0f %% (%.2f)", 100 * usedCores / Math.max(1, capacity), usedCores);
    }

    /**
     * The coordinator's view first (the operator's maintenance, in the inventory), then the agent's
     * own: "entering-maintenance (1 VM blocked: db-1: a must rule)", "in-maintenance", "active".
     */
    static String state(HostView h) {
      String maintenance = maintenance(h);
      return maintenance.isEmpty() ? state(h.getRecord().getState()) : maintenance.substring(2);
    }

    /** ", in-maintenance" and the like, or empty. */
    private static String maintenance(HostView h) {
      String blocked = h.getBlockedCount() == 0 ? "" : " (" + h.getBlockedCount()
          + (h.getBlockedCount() == 1 ? " VM" : " VMs") + " blocked: " + String.join("; ", h.getBlockedList().stream()
              .map(b -> b.getVm() + ": " + b.getReason()).toList()) + ")";
      return switch (h.getMaintenance()) {
        case MAINTENANCE_ENTERING -> ", entering-maintenance" + blocked;
        case MAINTENANCE_IN -> ", in-maintenance";
        default -> "";
      };
    }

    private static String state(HostState s) {
      return switch (s) {
        case HOST_ENTERING_MAINTENANCE -> "entering-maintenance";
        case HOST_IN_MAINTENANCE -> "maintenance";
        default -> "active";
      };
    }
  }

  @Command(name = "vms", mixinStandardHelpOptions = true, description = "List the cluster's VMs.",
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Success.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "4:Refused.", "6:Wrong API token."})
  static final class Vms extends ClusterCommand {
    @Option(names = "--json", description = "Print the API's JSON.")
    boolean json;

    @Override
    int run(ApiClient api) throws IOException {
      VmList.Builder vms = api.get("v1/vms", VmList.newBuilder());
      if (json) {
        out().println(ApiClient.json(vms));
        return 0;
      }
      java.util.Map<String, dev.ferry.proto.VmUsage> usage = new java.util.HashMap<>();
      vms.getUsageList().forEach(u -> usage.put(u.getVm(), u));
      Table t = new Table("VM", "HOST", "EPOCH", "POWER", "MEMORY", "VCPUS", "CPU LOAD", "CPU USED", "DIRTYING", "MAC",
          "MIGRATION", "NOTE");
      for (VmRecord v : vms.getVmsList()) {
        dev.ferry.proto.VmUsage u = usage.get(v.getSpec().getName());
        t.row(v.getSpec().getName(), v.getOwnerHost(), v.getEpoch(), power(v), Sizes.formatBytes(v.getSpec().getMemoryBytes()),
            v.getSpec().getVcpus(), String.format(Locale.ROOT, "%.2f", v.getSpec().getWorkload().getCpuLoad()),
            u == null ? "" : String.format(Locale.ROOT, "%.2f cores", u.getCpuCores()),
            Sizes.formatRate(v.getSpec().getWorkload().getDirtyRateBytesPerS()), v.getMac(),
            v.getCurrentMigration(), note(v));
      }
      t.print(out());
      return 0;
    }
  }

  /** The note, else the last boot error (kept until a boot succeeds, so a retried start still shows it). */
  static String note(VmRecord v) {
    if (!v.getNote().isEmpty() || v.getLastBootError().isEmpty()) {
      return v.getNote();
    }
    return "last boot failed: " + v.getLastBootError();
  }

  static String power(VmRecord v) {
    if (v.getDesiredPower() == v.getPower()) {
      return word(v.getPower());
    }
    return switch (v.getDesiredPower()) {
      case POWER_RUNNING -> v.getPower() == PowerState.POWER_SUSPENDED ? "resuming" : "starting";
      case POWER_SUSPENDED -> "suspending";
      default -> "stopping";
    };
  }

  static String word(PowerState p) {
    return switch (p) {
      case POWER_RUNNING -> "running";
      case POWER_SUSPENDED -> "suspended";
      default -> "stopped";
    };
  }

  @Command(name = "migrations", mixinStandardHelpOptions = true,
      description = {"List migrations (queued, running, recently finished).", "",
          "Those queued or running come last, after the most recent finished ones.",
          "With --watch the list redraws every second until Ctrl-C."},
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Success.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "4:Refused.", "6:Wrong API token."})
  static final class Migrations extends ClusterCommand {
    @Option(names = "--json", description = "Print the API's JSON (every migration on record).")
    boolean json;

    @Option(names = "--watch", description = "Redraw every second until Ctrl-C.")
    boolean watch;

    @Option(names = "--finished", paramLabel = "N", defaultValue = "10",
        description = "Finished migrations to show (default: ${DEFAULT-VALUE}).")
    int finished;

    @Override
    int run(ApiClient api) throws IOException, InterruptedException {
      String last = null;
      boolean terminal = System.console() != null;
      do {
        MigrationList.Builder list = api.get("v1/migrations", MigrationList.newBuilder());
        String text = json ? ApiClient.json(list) : render(list.getMigrationsList(), finished);
        if (!text.equals(last)) {
          if (watch && terminal) {
            out().print("\033[H\033[2J");
          }
          out().print(text);
          out().println();
          out().flush();
          last = text;
        }
        if (watch) {
          Thread.sleep(1000);
        }
      } while (watch);
      return 0;
    }
  }

  static String render(List<MigrationRecord> all, int finishedShown) {
    List<MigrationRecord> active = all.stream().filter(m -> isActive(m.getState())).toList();
    List<MigrationRecord> done = all.stream().filter(m -> !isActive(m.getState())).toList();
    done = done.subList(Math.max(0, done.size() - Math.max(0, finishedShown)), done.size());
    Table t = new Table("ID", "VM", "FROM", "TO", "STATE", "PHASE", "ROUND", "SENT", "LEFT", "RATE", "DOWNTIME", "REASON");
    for (List<MigrationRecord> group : List.of(done, active)) {
      for (MigrationRecord m : group) {
        var p = m.getProgress();
        boolean hasReport = m.hasReport() && m.getReport().getTotalNs() > 0;
        t.row(m.getId(), m.getVm(), m.getSourceHost(), m.getTargetHost(), state(m.getState()),
            m.getState() == MigrationState.MIGRATION_QUEUED ? "" : phase(m),
            hasReport ? m.getReport().getRounds() : p.getRound(),
            Sizes.formatBytes(hasReport ? m.getReport().getGuestBytesSent() : p.getGuestBytesSent()),
            isActive(m.getState()) ? Sizes.formatBytes(p.getBytesRemaining()) : "",
            isActive(m.getState()) ? Sizes.formatRate(p.getBandwidthBytesPerS()) : "",
            hasReport && m.getState() == MigrationState.MIGRATION_COMPLETED
                ? String.format(Locale.ROOT, "%.1f ms", m.getReport().getDowntimeNs() / 1e6) : "",
            m.getReason());
      }
    }
    StringBuilder b = new StringBuilder();
    java.io.StringWriter w = new java.io.StringWriter();
    t.print(new PrintWriter(w));
    b.append(w);
    if (active.isEmpty() && done.isEmpty()) {
      b.append("(no migrations)\n");
    }
    return b.toString().stripTrailing();
  }

  static boolean isActive(MigrationState s) {
    return dev.ferry.cluster.model.MigrationStates.isActive(s);
  }

  static String state(MigrationState s) {
    return s.name().replace("MIGRATION_", "").toLowerCase(Locale.ROOT);
  }

  static String phase(MigrationRecord m) {
    try {
      return dev.ferry.common.Labels.phase(m.getPhase());
    } catch (IllegalArgumentException e) {
      return "";
    }
  }
}
