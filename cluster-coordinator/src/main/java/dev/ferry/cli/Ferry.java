package dev.ferry.cli;

import dev.ferry.agent.cli.AgentCommand;
import dev.ferry.agent.cli.ExitCodes;
import dev.ferry.agent.cli.GuestCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code ferry}: the one command-line entry point for daemons and operators. */
@Command(name = "ferry",
    mixinStandardHelpOptions = true,
    versionProvider = Ferry.Version.class,
    description = {"Ferry: live VM migration across a cluster of host agents.", ""},
    subcommands = {CoordinatorCommand.class, AgentCommand.class, ZkServerCommand.class, ListCommands.Hosts.class,
        ListCommands.Vms.class, VmCommands.class, MigrateCommands.Migrate.class, ListCommands.Migrations.class,
        MigrateCommands.MigrationCmd.class, DatastoreCommand.class, GuestCommand.class, CommandLine.HelpCommand.class},
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
    CommandLine cli = new CommandLine(new Ferry());
    cli.setUsageHelpWidth(100); // the descriptions are written for 100 columns
    cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
      commandLine.getErr().println(commandLine.getCommandSpec().qualifiedName() + ": " + e.getMessage());
      return e instanceof dev.ferry.agent.config.InvalidConfigException ? ExitCodes.USAGE : ExitCodes.FAILED;
    });
    cli.setParameterExceptionHandler((e, unmatched) -> {
      e.getCommandLine().getErr().println(e.getMessage());
      e.getCommandLine().getErr().println("See '" + e.getCommandLine().getCommandSpec().qualifiedName() + " --help'.");
      return ExitCodes.USAGE;
    });
    return cli;
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
