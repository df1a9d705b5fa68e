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
          "and 'vm resume --on' refuse it. It is entering-maintenance until no VM runs on it and nothing",
          "migrates to or from it, then in-maintenance (stopped and suspended VMs may stay). This Ferry",
          "does not drain the host yet: move its running VMs off with 'ferry migrate VM --to HOST' (or",
          "stop them). There is no --wait until it does."},
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:The host is entering (or in) maintenance.",
          "2:Invalid command line.", "3:No coordinator could be reached.", "4:Refused (no such host).",
          "6:Wrong API token."})
  static final class Enter extends Action {
    @Override
    int run(ApiClient api) throws IOException {
      return request(api, "enter");
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
