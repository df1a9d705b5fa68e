package dev.ferry.cli;

import dev.ferry.common.InvalidConfigException;
import dev.ferry.proto.DrsConfig;
import dev.ferry.proto.DrsConfigRequest;
import dev.ferry.proto.DrsMode;
import java.io.IOException;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code ferry drs config}: DRS's persistent settings. */
@Command(name = "drs", mixinStandardHelpOptions = true,
    description = "DRS, the cluster's automatic placement and balancing: its settings, its last run, its moves.",
    subcommands = {DrsCommands.Status.class, DrsCommands.Recommendations.class, DrsCommands.Apply.class,
        DrsCommands.Config.class})
final class DrsCommands implements Runnable {
  static final int THRESHOLD_MIN = 1;
  static final int THRESHOLD_MAX = 5;
  static final int INTERVAL_MIN = 5;
  static final int INTERVAL_MAX = 3600;

  @picocli.CommandLine.Spec
  picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  /** The modes as the operator types them. */
  enum Mode {
    manual(DrsMode.DRS_MANUAL), partial(DrsMode.DRS_PARTIAL), full(DrsMode.DRS_FULL);

    final DrsMode proto;

    Mode(DrsMode proto) {
      this.proto = proto;
    }
  }

  @Command(name = "config", mixinStandardHelpOptions = true,
      description = {"Show DRS's settings, or change those given. They are kept in ZooKeeper by the leading",
          "coordinator and survive a failover. Until set: full, threshold 3, every 60 s (vSphere's defaults).", "",
          "  manual   DRS recommends moves and placements; the operator applies them.",
          "  partial  DRS places new VMs itself and recommends moves.",
          "  full     DRS places new VMs and applies its moves itself.", "",
          "The threshold runs from 1 (only mandatory moves: rules and maintenance) to 5 (aggressive)."},
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Success.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "4:Refused.", "6:Wrong API token."})
  static final class Config extends ClusterCommand {
    @Option(names = "--mode", paramLabel = "MODE", description = "manual, partial or full.")
    Mode mode;

    @Option(names = "--threshold", paramLabel = "N", description = "The migration threshold, " + THRESHOLD_MIN + " to "
        + THRESHOLD_MAX + ".")
    Integer threshold;

    @Option(names = "--interval", paramLabel = "SECONDS", description = "Seconds between two DRS runs, " + INTERVAL_MIN
        + " to " + INTERVAL_MAX + ".")
    Integer interval;

    @Option(names = "--json", description = "Print the API's JSON.")
    boolean json;

    @Override
    int run(ApiClient api) throws IOException {
      DrsConfig config;
      if (mode == null && threshold == null && interval == null) {
        config = api.get("v1/drs/config", DrsConfig.newBuilder()).build();
      } else {
        config = api.put("v1/drs/config", request(), DrsConfig.newBuilder()).build();
      }
      out().println(json ? ApiClient.json(config) : describe(config));
      return 0;
    }

    /** The fields given, each checked here first: the error names the option. */
    DrsConfigRequest request() {
      DrsConfigRequest.Builder request = DrsConfigRequest.newBuilder();
      if (mode != null) {
        request.setMode(mode.proto);
      }
      if (threshold != null) {
        if (threshold < THRESHOLD_MIN || threshold > THRESHOLD_MAX) {
          throw new InvalidConfigException("--threshold", "must be " + THRESHOLD_MIN + " to " + THRESHOLD_MAX
              + ", got " + threshold);
        }
        request.setThreshold(threshold);
      }
      if (interval != null) {
        if (interval < INTERVAL_MIN || interval > INTERVAL_MAX) {
          throw new InvalidConfigException("--interval", "must be " + INTERVAL_MIN + " to " + INTERVAL_MAX
              + " seconds, got " + interval);
        }
        request.setIntervalSeconds(interval);
      }
      return request.build();
    }
  }

  @Command(name = "status", mixinStandardHelpOptions = true,
      description = {"DRS's settings and its last run: the CPU spread now (the standard deviation of each active",
          "host's CPU use over its capacity), after the recommended moves, the threshold's target, and the",
          "moves it started by itself."},
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Success.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "6:Wrong API token."})
  static final class Status extends ClusterCommand {
    @Option(names = "--json", description = "Print the API's JSON.")
    boolean json;

    @Override
    int run(ApiClient api) throws IOException {
      dev.ferry.proto.DrsStatus status = api.get("v1/drs", dev.ferry.proto.DrsStatus.newBuilder()).build();
      if (json) {
        out().println(ApiClient.json(status));
        return 0;
      }
      out().println(describe(status.getConfig()));
      if (status.getLastRunMs() == 0) {
        out().println("no run yet");
        return 0;
      }
      out().printf(Locale.ROOT, "last run %s: spread %.2f, after the recommended moves %.2f, target %s%n",
          java.time.Instant.ofEpochMilli(status.getLastRunMs()).truncatedTo(java.time.temporal.ChronoUnit.SECONDS),
          status.getSpread(), status.getSpreadAfter(), Double.isInfinite(status.getTargetSpread())
              ? "none (threshold 1: mandatory moves only)" : String.format(Locale.ROOT, "%.2f", status.getTargetSpread()));
      out().printf(Locale.ROOT, "%d recommendation(s), %d blocked; %d move(s) started by DRS since this coordinator leads%n",
          status.getRecommendationsCount(), status.getBlockedCount(), status.getMovesApplied());
      return 0;
    }
  }

  @Command(name = "recommendations", mixinStandardHelpOptions = true,
      description = {"The moves DRS's last run recommends, each with its reason; 'auto' ones it starts by",
          "itself (maintenance drains in every mode, the rest in full mode). Apply others with 'ferry drs apply'."},
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Success.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "6:Wrong API token."})
  static final class Recommendations extends ClusterCommand {
    @Option(names = "--json", description = "Print the API's JSON.")
    boolean json;

    @Override
    int run(ApiClient api) throws IOException {
      dev.ferry.proto.DrsStatus status = api.get("v1/drs/recommendations", dev.ferry.proto.DrsStatus.newBuilder()).build();
      if (json) {
        out().println(ApiClient.json(status));
        return 0;
      }
      if (status.getRecommendationsCount() == 0 && status.getBlockedCount() == 0) {
        out().println("no recommendations");
        return 0;
      }
      dev.ferry.common.Table t = new dev.ferry.common.Table("ID", "VM", "FROM", "TO", "KIND", "AUTO", "REASON");
      for (dev.ferry.proto.DrsRecommendation r : status.getRecommendationsList()) {
        t.row(r.getId(), r.getVm(), r.getFromHost(), r.getToHost(), r.getKind(), r.getAutomatic() ? "yes" : "no",
            r.getReason());
      }
      t.print(out());
      for (dev.ferry.proto.DrsBlocked b : status.getBlockedList()) {
        out().println("blocked: " + b.getVm() + " on " + b.getHost() + ": " + b.getReason());
      }
      return 0;
    }
  }

  @Command(name = "apply", mixinStandardHelpOptions = true,
      description = {"Starts the moves DRS's last run recommends: those named (IDs from 'ferry drs recommendations'),",
          "or all of them. Each is a live migration like 'ferry migrate' starts."},
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Every move started.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "4:A move was refused (the reason is printed).", "6:Wrong API token."})
  static final class Apply extends ClusterCommand {
    @picocli.CommandLine.Parameters(paramLabel = "ID", arity = "0..*", description = "Recommendation ids (none: all).")
    java.util.List<String> ids = new java.util.ArrayList<>();

    @Override
    int run(ApiClient api) throws IOException {
      for (String id : ids) {
        if (!id.matches("drs-[0-9a-f]{1,32}")) {
          throw new InvalidConfigException("ID", "'" + id + "' is not a recommendation id (drs-...)");
        }
      }
      dev.ferry.proto.DrsApplyResult result = api.post("v1/drs/apply",
          dev.ferry.proto.DrsApplyRequest.newBuilder().addAllIds(ids).build(),
          dev.ferry.proto.DrsApplyResult.newBuilder()).build();
      for (dev.ferry.proto.MigrationRecord m : result.getStartedList()) {
        out().println("started " + m.getId() + ": " + m.getVm() + " " + m.getSourceHost() + " -> " + m.getTargetHost());
      }
      result.getRefusedMap().forEach((id, why) -> spec.commandLine().getErr().println("not started " + id + ": " + why));
      if (result.getStartedCount() == 0 && result.getRefusedCount() == 0) {
        out().println("nothing to apply");
      }
      return result.getRefusedCount() == 0 ? 0 : dev.ferry.common.ExitCodes.REFUSED;
    }
  }

  /** "DRS: full, threshold 3, every 60 s (the defaults: never set)". */
  static String describe(DrsConfig config) {
    String mode = config.getMode() == DrsMode.UNRECOGNIZED ? "unknown-" + config.getModeValue()
        : config.getMode().name().replaceFirst("^DRS_", "").toLowerCase(Locale.ROOT);
    return "DRS: " + mode + ", threshold " + config.getThreshold() + ", every " + config.getIntervalSeconds() + " s"
        + (config.getUpdatedMs() == 0 ? " (the defaults: never set)" : "");
  }
}
