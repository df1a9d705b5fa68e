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
    description = "DRS, the cluster's automatic placement and balancing: its settings.",
    subcommands = {DrsCommands.Config.class})
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

  /** "DRS: full, threshold 3, every 60 s (the defaults: never set)". */
  static String describe(DrsConfig config) {
    String mode = config.getMode() == DrsMode.UNRECOGNIZED ? "unknown-" + config.getModeValue()
        : config.getMode().name().replaceFirst("^DRS_", "").toLowerCase(Locale.ROOT);
    return "DRS: " + mode + ", threshold " + config.getThreshold() + ", every " + config.getIntervalSeconds() + " s"
        + (config.getUpdatedMs() == 0 ? " (the defaults: never set)" : "");
  }
}
