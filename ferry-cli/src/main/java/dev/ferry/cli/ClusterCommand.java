package dev.ferry.cli;

import dev.ferry.common.ExitCodes;
import dev.ferry.common.InvalidConfigException;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** What every operator command shares: finding the coordinator, and mapping failures to exit codes. */
abstract class ClusterCommand implements Callable<Integer> {
  static final String[] EXIT_CODES = {
      "0:Success.",
      "1:The operation ran and failed (a migration aborted or was cancelled).",
      "2:Invalid command line or configuration.",
      "3:No coordinator could be reached.",
      "4:The coordinator refused the request (the message says why).",
      "5:A migration's outcome is still unknown; the VM stays paused until it is resolved.",
      "6:The coordinator refused the API token."};

  @Mixin
  ClientOptions clientOptions;

  @Spec
  CommandSpec spec;

  PrintWriter out() {
    return spec.commandLine().getOut();
  }

  @Override
  public Integer call() {
    PrintWriter err = spec.commandLine().getErr();
    String name = spec.qualifiedName();
    try {
      return run(clientOptions.client());
    } catch (InvalidConfigException e) {
      err.println(name + ": " + e.getMessage());
      return ExitCodes.USAGE;
    } catch (ApiClient.RefusedException e) {
      err.println(name + ": " + e.getMessage());
      return e.status == 401 ? ExitCodes.AUTH : ExitCodes.REFUSED;
    } catch (IOException e) {
      err.println(name + ": " + e.getMessage());
      return ExitCodes.UNREACHABLE;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return ExitCodes.FAILED;
    }
  }

  abstract int run(ApiClient api) throws IOException, InterruptedException;
}
