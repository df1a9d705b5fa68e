package dev.ferry.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * {@code ferry}: the operator's commands. They speak only the coordinator's HTTP API, so this
 * module needs nothing but the records' schema and the JDK's HTTP client; the daemons
 * ({@code agent}, {@code coordinator}, {@code zk-server}, {@code datastore}, {@code guest}, {@code ca}) are
 * another program that {@code scripts/ferry} starts by the same name.
 */
@Command(name = "ferry",
    mixinStandardHelpOptions = true,
    versionProvider = Ferry.Version.class,
    description = {"Ferry: live VM migration across a cluster of host agents.", ""},
    subcommands = {ListCommands.Hosts.class,
        ListCommands.Vms.class, VmCommands.class, MigrateCommands.Migrate.class, ListCommands.Migrations.class,
        MigrateCommands.MigrationCmd.class, EventsCommand.class, HaCommands.class, HostCommands.class,
        DrsCommands.class, RuleCommands.class, CommandLine.HelpCommand.class},
    footerHeading = "%nDaemons and host tools (same launcher, each with its own --help):%n",
    footer = {"  agent        Run a host agent.", "  coordinator  Run a coordinator (one leads, the rest stand by).",
        "  zk-server    Run a ZooKeeper server for a small cluster.",
        "  datastore    Inspect the shared datastore from a host that mounts it.",
        "  guest        Drive a standalone development agent directly.",
        "  ca           The cluster CA: certificates for TLS between agents."},
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {"0:Success.", "1:The operation ran and failed (a migration aborted or was cancelled).",
        "2:Invalid command line or configuration.", "3:No coordinator (or agent) could be reached.",
        "4:The request was refused; the message says why.", "5:A migration's outcome is still unknown.",
        "6:The coordinator refused the API token."})
public final class Ferry implements Runnable {
  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  public static void main(String[] args) {
    System.exit(commandLine().execute(args));
  }

  /** The CLI with its error handling, as {@code main} runs it (tests run commands in-process through it). */
  public static CommandLine commandLine() {
    return dev.ferry.common.CommandLines.withFerryErrors(new CommandLine(new Ferry()));
  }

  /** The version from the jar manifest. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = Ferry.class.getPackage().getImplementationVersion();
      return new String[] {"ferry " + (v == null ? "dev" : v)};
    }
  }
}
