package dev.ferry.cli;

import dev.ferry.common.ExitCodes;
import dev.ferry.common.Sizes;
import dev.ferry.proto.CreateVmRequest;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmRecord;
import java.io.IOException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code ferry vm create|start|stop|suspend|resume|set|delete|show}. */
@Command(name = "vm", mixinStandardHelpOptions = true,
    description = "Create, start, stop, suspend, resume, change or delete a VM (the built-in guest).",
    subcommands = {VmCommands.Create.class, VmCommands.Start.class, VmCommands.Stop.class, VmCommands.Suspend.class,
        VmCommands.Resume.class, VmCommands.Set.class, VmCommands.Delete.class, VmCommands.Show.class})
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
              + ListCommands.word(wanted) + " on " + vm.getOwnerHost()
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
    dev.ferry.common.GuestOptions guestOptions;

    @Option(names = "--host", paramLabel = "HOST", description = "Start it on this host (default: the least loaded that fits).")
    String host;

    @Option(names = "--mac", paramLabel = "MAC", description = "MAC address (default: derived from the name, 52:54:00:...).")
    String mac;

    @Option(names = "--ip", paramLabel = "IP", description = "IP address the guest keeps wherever it runs.")
    String ip;

    @Option(names = "--ha-priority", paramLabel = "PRIORITY",
        description = "high, medium, low or disabled: when its host dies, HA restarts it elsewhere, higher first; "
            + "disabled: never (default: medium).")
    String haPriority;

    @Override
    int run(ApiClient api) throws IOException, InterruptedException {
      GuestSpec guest = guestOptions.spec(name);
      CreateVmRequest.Builder request = CreateVmRequest.newBuilder().setSpec(guest);
      if (haPriority != null) {
        request.setHaPriority(switch (haPriority.toLowerCase(java.util.Locale.ROOT)) {
          case "high" -> dev.ferry.proto.HaPriority.HA_PRIORITY_HIGH;
          case "medium" -> dev.ferry.proto.HaPriority.HA_PRIORITY_MEDIUM;
          case "low" -> dev.ferry.proto.HaPriority.HA_PRIORITY_LOW;
          case "disabled" -> dev.ferry.proto.HaPriority.HA_PRIORITY_DISABLED;
          default -> throw new dev.ferry.common.InvalidConfigException("ha-priority",
              "'" + haPriority + "' is not high, medium, low or disabled");
        });
      }
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
      return finish(api, vm, PowerState.POWER_RUNNING, String.format(java.util.Locale.ROOT,
          "created (%s, %d vCPUs, CPU load %.2f, dirtying %s), running", Sizes.formatBytes(guest.getMemoryBytes()),
          guest.getVcpus(), guest.getWorkload().getCpuLoad(), Sizes.formatRate(guest.getWorkload().getDirtyRateBytesPerS())));
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
      description = "Stop a VM: its memory and vCPU state are discarded; its files on the datastore (config, disk) stay.",
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

  @Command(name = "suspend", mixinStandardHelpOptions = true,
      description = {"Suspend a running VM to the datastore and free its host.", "",
          "Its memory, vCPU state and a digest of its memory are streamed into a checkpoint on the",
          "datastore (written through the VM's lease); 'ferry vm resume' continues it, on any host,",
          "from the exact step it stopped at."},
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Suspended.", "1:It was not suspended in time.",
          "2:Invalid command line.", "3:No coordinator could be reached.", "4:Refused (not running, migrating...).",
          "6:Wrong API token."})
  static final class Suspend extends PowerChange {
    @Override
    int run(ApiClient api) throws IOException, InterruptedException {
      VmRecord vm = api.post("v1/vms/" + name + "/suspend", CreateVmRequest.getDefaultInstance(), VmRecord.newBuilder())
          .build();
      return finish(api, vm, PowerState.POWER_SUSPENDED, "suspended to the datastore");
    }
  }

  @Command(name = "resume", mixinStandardHelpOptions = true,
      description = {"Resume a suspended VM from its checkpoint, on --on HOST or where it was.", "",
          "The VM's owner and epoch move in one write; the host takes the VM's datastore lease with",
          "the new epoch, checks the restored memory against the digest taken at suspend, and",
          "continues the vCPUs from the exact step they stopped at."},
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Running again.", "1:It did not resume (the note says why).",
          "2:Invalid command line.", "3:No coordinator could be reached.", "4:Refused (not suspended, no room...).",
          "6:Wrong API token."})
  static final class Resume extends PowerChange {
    @Option(names = "--on", paramLabel = "HOST", description = "Resume it on this host (default: where it was suspended).")
    String on;

    @Override
    int run(ApiClient api) throws IOException, InterruptedException {
      dev.ferry.proto.ResumeVmRequest.Builder request = dev.ferry.proto.ResumeVmRequest.newBuilder();
      if (on != null) {
        request.setHost(on);
      }
      VmRecord vm = api.post("v1/vms/" + name + "/resume", request.build(), VmRecord.newBuilder()).build();
      return finish(api, vm, PowerState.POWER_RUNNING, "resumed from the datastore, running");
    }
  }

  @Command(name = "set", mixinStandardHelpOptions = true,
      description = {"Change a VM's demand while it runs: its CPU load per vCPU and its dirty rate.", "",
          "The coordinator writes them into the VM's spec; the host running it applies them to the",
          "guest without a restart (within a second), and they move with the VM when it migrates."},
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Changed.", "2:Invalid command line (the message names the option).",
          "3:No coordinator could be reached.", "4:Refused (no such VM).", "6:Wrong API token."})
  static final class Set extends ClusterCommand {
    @Parameters(paramLabel = "VM")
    String name;

    @Option(names = "--cpu-load", paramLabel = "F",
        description = "CPU demand per vCPU, 0 to 1: the share of time each vCPU computes.")
    String cpuLoad;

    @Option(names = "--dirty-rate", paramLabel = "RATE", description = "Bytes the vCPUs dirty per second, e.g. 32MiB/s (0: idle).")
    String dirtyRate;

    @Override
    int run(ApiClient api) throws IOException {
      if (cpuLoad == null && dirtyRate == null) {
        throw new dev.ferry.common.InvalidConfigException("--cpu-load, --dirty-rate", "give at least one");
      }
      dev.ferry.proto.VmSettingsRequest.Builder request = dev.ferry.proto.VmSettingsRequest.newBuilder();
      if (cpuLoad != null) {
        request.setCpuLoad(dev.ferry.common.Specs.cpuLoad("--cpu-load", cpuLoad));
      }
      if (dirtyRate != null) {
        request.setDirtyRateBytesPerS(Sizes.parseRate("--dirty-rate", dirtyRate));
      }
      VmRecord vm = api.post("v1/vms/" + name + "/settings", request.build(), VmRecord.newBuilder()).build();
      out().printf(java.util.Locale.ROOT, "%s: CPU load %.2f per vCPU, dirtying %s%s%n", name,
          vm.getSpec().getWorkload().getCpuLoad(), Sizes.formatRate(vm.getSpec().getWorkload().getDirtyRateBytesPerS()),
          vm.getPower() == PowerState.POWER_RUNNING ? " (applied on " + vm.getOwnerHost() + ")" : " (from its next start)");
      return ExitCodes.OK;
    }
  }

  @Command(name = "show", mixinStandardHelpOptions = true,
      description = "Print one VM's record as JSON (with its note and last_boot_error, if any).",
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Success.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "4:No such VM.", "6:Wrong API token."})
  static final class Show extends ClusterCommand {
    @Parameters(paramLabel = "VM")
    String name;

    @Override
    int run(ApiClient api) throws IOException {
      out().println(ApiClient.json(api.get("v1/vms/" + name, VmRecord.newBuilder())));
      return ExitCodes.OK;
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
