package dev.ferry.cli;

import dev.ferry.common.Sizes;
import dev.ferry.proto.HaSettings;
import dev.ferry.proto.HaStatus;
import java.io.IOException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code ferry ha config}: HA's settings. */
@Command(name = "ha", mixinStandardHelpOptions = true,
    description = {"High availability: the VMs of a dead host restart on the others.",
        "",
        "A host is dead when its ZooKeeper session is gone and its datastore heartbeat has not",
        "changed for the coordinators' --ha-timeout; its running VMs then boot again from their",
        "disks on other hosts, high priority first (vm create --ha-priority)."},
    subcommands = {HaCommands.Config.class})
final class HaCommands implements Runnable {
  @picocli.CommandLine.Spec
  picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  @Command(name = "config", mixinStandardHelpOptions = true,
      description = {"Show HA's settings, or change them.",
          "",
          "--failover-hosts N keeps memory free for N host failures: vm create and vm resume are",
          "refused when the VMs that should run would no longer fit on the hosts left after the N",
          "largest fail. The setting lives in ZooKeeper and survives a coordinator failover."},
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Success.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "4:Refused.", "6:Wrong API token."})
  static final class Config extends ClusterCommand {
    @Option(names = "--failover-hosts", paramLabel = "N",
        description = "Host failures admission control keeps memory for (0 turns it off; default 1).")
    Integer failoverHosts;

    @Option(names = "--json", description = "Print the API's JSON.")
    boolean json;

    @Override
    int run(ApiClient api) throws IOException {
      HaStatus status;
      if (failoverHosts != null) {
        if (failoverHosts < 0 || failoverHosts > 64) {
          throw new dev.ferry.common.InvalidConfigException("failover-hosts", failoverHosts + " is out of range (0..64)");
        }
        status = api.post("v1/ha", HaSettings.newBuilder().setFailoverHosts(failoverHosts).build(),
            HaStatus.newBuilder()).build();
      } else {
        status = api.get("v1/ha", HaStatus.newBuilder()).build();
      }
      if (json) {
        out().println(ApiClient.json(status));
        return 0;
      }
      out().printf("failover hosts: %d (reserved %s; %s admissible for more VMs)%n",
          status.getSettings().getFailoverHosts(), Sizes.formatBytes(status.getReservedBytes()),
          Sizes.formatBytes(status.getAdmissibleBytes()));
      out().printf("HA timeout:     %s%n", status.getHaTimeoutMs() == 0 ? "HA is off (coordinator without --datastore)"
          : status.getHaTimeoutMs() / 1000 + " s");
      if (status.getDeadHostsCount() > 0) {
        out().printf("dead hosts:     %s%n", String.join(", ", status.getDeadHostsList()));
      }
      return 0;
    }
  }
}
