package dev.ferry.cli;

import dev.ferry.agent.cli.ExitCodes;
import dev.ferry.agent.config.Sizes;
import dev.ferry.proto.CreateVmRequest;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmRecord;
import java.io.IOException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code ferry vm create|start|stop|delete}. */
@Command(name = "vm", mixinStandardHelpOptions = true,
    description = "Create, start, stop or delete a VM (the built-in guest) through the coordinator.",
    subcommands = {VmCommands.Create.class, VmCommands.Start.class, VmCommands.Stop.class, VmCommands.Delete.class})
final class VmCommands implements Runnable {
  @picocli.CommandLine.Spec
  picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  /** Waits until the owner's agent reports {@code power}; false if it did not within the timeout. */
  static VmRecord awaitPower(ApiClient api, String name, PowerState power, int timeoutSeconds)
      throws IOException, InterruptedException {
    long deadline = System.nanoTime() + timeoutSeconds * 1_000_000_000L;
    VmRecord vm;
    do {
      vm = api.get("v1/vms/" + name, VmRecord.newBuilder()).build();
      if (vm.getPower() == power || !vm.getNote().isEmpty()) {
        return vm;
      }
      Thread.sleep(200);
    } while (System.nanoTime() < deadline);
    return vm;
  }

  abstract static class PowerChange extends ClusterCommand {
    @Parameters(paramLabel = "VM")
    String name;

    @Option(names = "--no-wait", description = "Return once the coordinator has the request.")
    boolean noWait;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "60",
        description = "How long to wait for the host (default: ${DEFAULT-VALUE}).")
    int timeout;

    int finish(ApiClient api, VmRecord vm, PowerState wanted, String done) throws IOException, InterruptedException {
      if (!noWait) {
        vm = awaitPower(api, name, wanted, timeout);
        if (vm.getPower() != wanted) {
          spec.commandLine().getErr().println(spec.qualifiedName() + ": " + name + " is not "
              + (wanted == PowerState.POWER_RUNNING ? "running" : "stopped") + " on " + vm.getOwnerHost()
              + (vm.getNote().isEmpty() ? " after " + timeout + " s" : ": " + vm.getNote()));
          return ExitCodes.FAILED;
        }
      }
      out().printf("%s %s on %s (epoch %d)%n", name, noWait ? "requested: " + done : done, vm.getOwnerHost(), vm.getEpoch());
      return ExitCodes.OK;
    }
  }

  @Command(name = "create", mixinStandardHelpOptions = true,
      description = "Create a VM running the built-in guest; it starts on --host or on the least loaded host that fits.",
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Created and running.", "1:Created, but it did not start.",
          "2:Invalid command line.", "3:No coordinator could be reached.", "4:Refused (name taken, no room...).",
          "6:Wrong API token."})
  static final class Create extends PowerChange {
    @picocli.CommandLine.Mixin
    dev.ferry.agent.cli.GuestOptions guestOptions;

    @Option(names = "--host", paramLabel = "HOST", description = "Start it on this host (default: the least loaded that fits).")
    String host;

    @Option(names = "--mac", paramLabel = "MAC", description = "MAC address (default: derived from the name, 52:54:00:...).")
    String mac;

    @Option(names = "--ip", paramLabel = "IP", description = "IP address the guest keeps wherever it runs.")
    String ip;

    @Override
    int run(ApiClient api) throws IOException, InterruptedException {
      GuestSpec guest = guestOptions.spec(name);
      CreateVmRequest.Builder request = CreateVmRequest.newBuilder().setSpec(guest);
      if (host != null) {
        request.setHost(host);
      }
      if (mac != null) {
        request.setMac(mac);
      }
      if (ip != null) {
        request.setIp(ip);
      }
      VmRecord vm = api.post("v1/vms", request.build(), VmRecord.newBuilder()).build();
      return finish(api, vm, PowerState.POWER_RUNNING, String.format("created (%s, %d vCPUs, dirtying %s), running",
          Sizes.formatBytes(guest.getMemoryBytes()), guest.getVcpus(), Sizes.formatRate(guest.getWorkload().getDirtyRateBytesPerS())));
    }
  }

  @Command(name = "start", mixinStandardHelpOptions = true, description = "Start a stopped VM on its host.",
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Running.", "1:It did not start.",
          "2:Invalid command line.", "3:No coordinator could be reached.", "4:Refused.", "6:Wrong API token."})
  static final class Start extends PowerChange {
    @Override
    int run(ApiClient api) throws IOException, InterruptedException {
      VmRecord vm = api.post("v1/vms/" + name + "/start", CreateVmRequest.getDefaultInstance(), VmRecord.newBuilder()).build();
      return finish(api, vm, PowerState.POWER_RUNNING, "running");
    }
  }

  @Command(name = "stop", mixinStandardHelpOptions = true,
      description = "Stop a VM (its memory is discarded; the built-in guest has no disk yet).",
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Stopped.", "1:It did not stop in time.",
          "2:Invalid command line.", "3:No coordinator could be reached.", "4:Refused (it is migrating...).",
          "6:Wrong API token."})
  static final class Stop extends PowerChange {
    @Override
    int run(ApiClient api) throws IOException, InterruptedException {
      VmRecord vm = api.post("v1/vms/" + name + "/stop", CreateVmRequest.getDefaultInstance(), VmRecord.newBuilder()).build();
      return finish(api, vm, PowerState.POWER_STOPPED, "stopped");
    }
  }

  @Command(name = "delete", mixinStandardHelpOptions = true, description = "Delete a stopped VM's record.",
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Deleted.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "4:Refused (not stopped, no such VM).", "6:Wrong API token."})
  static final class Delete extends ClusterCommand {
    @Parameters(paramLabel = "VM")
    String name;

    @Override
    int run(ApiClient api) throws IOException {
      api.delete("v1/vms/" + name);
      out().println(name + " deleted");
      return ExitCodes.OK;
    }
  }
}
