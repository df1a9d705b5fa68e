package dev.ferry.daemons;

import dev.ferry.common.ExitCodes;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code ferry ca init|issue}: the cluster CA whose certificates authenticate the links between agents. */
@Command(name = "ca",
    mixinStandardHelpOptions = true,
    description = {"The cluster's certificate authority for TLS between agents.",
        "",
        "  ferry ca init DIR                 create the CA (DIR/ca.key 0600, DIR/ca.crt)",
        "  ferry ca issue HOST... --ca DIR   a key and certificate for each HOST, signed by the CA",
        "",
        "Start each agent with --tls-dir pointing at its host's directory; the certificate names",
        "the host (subject CN and DNS SAN), and peers check it against the host they expect."},
    subcommands = {CaCommand.Init.class, CaCommand.Issue.class})
public final class CaCommand implements Runnable {
  /** Host ids as the agents take them (--host-id). */
  private static final Pattern HOST_ID = Pattern.compile("[a-z0-9][a-z0-9-]{0,62}");
  private static final int DAYS_MAX = 36_500;

  @Spec
  CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  @Command(name = "init", mixinStandardHelpOptions = true,
      description = "Create a cluster CA in DIR (created if missing): an EC P-256 key (ca.key, mode 0600) and a"
          + " self-signed certificate (ca.crt). Refuses to overwrite an existing CA.",
      exitCodeListHeading = "%nExit codes:%n",
      exitCodeList = {"0:Created.", "1:Could not write, or DIR already holds a CA.", "2:Invalid option."})
  static final class Init implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "DIR", description = "Where the CA's key and certificate go.")
    Path dir;

    @Option(names = "--days", paramLabel = "N", defaultValue = "3650",
        description = "Validity of the CA certificate in days (default: ${DEFAULT-VALUE}).")
    int days;

    @Override
    public Integer call() {
      if (days < 1 || days > DAYS_MAX) {
        spec.commandLine().getErr().println("ferry ca init: --days: " + days + " is not in 1.." + DAYS_MAX);
        return ExitCodes.USAGE;
      }
      try {
        ClusterCa.init(dir, Duration.ofDays(days));
      } catch (Exception e) {
        spec.commandLine().getErr().println("ferry ca init: " + e.getMessage());
        return ExitCodes.FAILED;
      }
      spec.commandLine().getOut().println("CA created: " + dir.resolve(ClusterCa.CA_CERT) + " (key "
          + dir.resolve(ClusterCa.CA_KEY) + ", keep it private)");
      return ExitCodes.OK;
    }
  }

  @Command(name = "issue", mixinStandardHelpOptions = true,
      description = {"Issue a key and certificate for each HOST, signed by the CA in --ca DIR.",
          "Writes OUT/host.key (0600), OUT/host.crt and OUT/ca.crt: start the agent with --tls-dir OUT."},
      exitCodeListHeading = "%nExit codes:%n",
      exitCodeList = {"0:Issued.", "1:Could not read the CA or write the files.", "2:Invalid option."})
  static final class Issue implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "HOST", arity = "1..*", description = "Host ids (as the agents' --host-id).")
    java.util.List<String> hosts;

    @Option(names = "--ca", paramLabel = "DIR", required = true, description = "The CA's directory (from ferry ca init).")
    Path ca;

    @Option(names = "--out", paramLabel = "OUT",
        description = "Where the files go, with one HOST only (default: DIR/HOST in the CA's directory).")
    Path out;

    @Option(names = "--days", paramLabel = "N", defaultValue = "825",
        description = "Validity of the certificate in days (default: ${DEFAULT-VALUE}).")
    int days;

    @Override
    public Integer call() {
      for (String host : hosts) {
        if (!HOST_ID.matcher(host).matches()) {
          spec.commandLine().getErr().println("ferry ca issue: HOST: '" + host
              + "' must be 1-63 lower-case letters, digits or '-', starting with a letter or digit");
          return ExitCodes.USAGE;
        }
      }
      if (out != null && hosts.size() > 1) {
        spec.commandLine().getErr().println("ferry ca issue: --out: takes one HOST, not " + hosts.size());
        return ExitCodes.USAGE;
      }
      if (days < 1 || days > DAYS_MAX) {
        spec.commandLine().getErr().println("ferry ca issue: --days: " + days + " is not in 1.." + DAYS_MAX);
        return ExitCodes.USAGE;
      }
      try {
        ClusterCa authority = ClusterCa.load(ca);
        for (String host : hosts) {
          Path target = out != null ? out : ca.resolve(host);
          authority.issue(host, target, Duration.ofDays(days));
          spec.commandLine().getOut().println("issued for " + host + ": " + target.resolve(ClusterCa.HOST_CERT)
              + " (start the agent with --tls-dir " + target + ")");
        }
      } catch (Exception e) {
        spec.commandLine().getErr().println("ferry ca issue: " + e.getMessage());
        return ExitCodes.FAILED;
      }
      return ExitCodes.OK;
    }
  }
}
