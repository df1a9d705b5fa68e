package dev.ferry.daemons;

import dev.ferry.common.Table;
import dev.ferry.common.ExitCodes;
import dev.ferry.common.Json;
import dev.ferry.common.Sizes;
import dev.ferry.storage.Datastore;
import dev.ferry.storage.StorageException;
import dev.ferry.storage.VmSummary;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code ferry datastore ls}: what the shared datastore holds, read from the files themselves. */
@Command(name = "datastore", mixinStandardHelpOptions = true,
    description = "Look at the shared datastore (every host mounts it; this reads its files directly).",
    subcommands = {DatastoreCommand.Ls.class})
final class DatastoreCommand implements Runnable {
  @picocli.CommandLine.Spec
  picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  @Command(name = "ls", mixinStandardHelpOptions = true,
      description = "List the VMs on the datastore: size, lease owner and epoch, heartbeat age.",
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Success.", "2:Invalid command line (no such directory)."})
  static final class Ls implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--datastore", paramLabel = "DIR", defaultValue = "${env:FERRY_DATASTORE}",
        description = "The datastore directory (default: $FERRY_DATASTORE).")
    Path datastore;

    @Option(names = "--json", description = "One JSON object per VM.")
    boolean json;

    @Override
    public Integer call() {
      if (datastore == null || !Files.isDirectory(datastore)) {
        spec.commandLine().getErr().println("ferry datastore ls: --datastore: "
            + (datastore == null ? "required (or FERRY_DATASTORE)" : datastore + " is not a directory"));
        return ExitCodes.USAGE;
      }
      List<VmSummary> vms;
      try {
        vms = Datastore.open(datastore).list();
      } catch (StorageException e) {
        spec.commandLine().getErr().println("ferry datastore ls: " + e.getMessage());
        return ExitCodes.FAILED;
      }
      var out = spec.commandLine().getOut();
      if (json) {
        for (VmSummary vm : vms) {
          Json j = new Json().put("vm", vm.name()).put("size_bytes", vm.sizeBytes());
          vm.lease().ifPresent(l -> j.put("lease_host", l.host()).put("lease_epoch", l.epoch())
              .put("heartbeat_age_ms", l.heartbeatAgeMillis()));
          vm.leaseProblem().ifPresent(p -> j.put("lease_problem", p));
          out.println(j);
        }
        out.flush();
        return ExitCodes.OK;
      }
      Table t = new Table("VM", "SIZE", "LEASE HOST", "EPOCH", "HEARTBEAT AGE", "PROBLEM");
      for (VmSummary vm : vms) {
        t.row(vm.name(), Sizes.formatBytes(vm.sizeBytes()), vm.lease().map(l -> l.host()).orElse(""),
            vm.lease().map(l -> Long.toString(l.epoch())).orElse(""),
            vm.lease().map(l -> String.format(Locale.ROOT, "%.1f s", l.heartbeatAgeMillis() / 1000.0)).orElse(""),
            vm.leaseProblem().orElse(""));
      }
      if (vms.isEmpty()) {
        out.println("(no VMs on " + datastore + ")");
      } else {
        t.print(out);
      }
      out.flush();
      return ExitCodes.OK;
    }
  }
}
