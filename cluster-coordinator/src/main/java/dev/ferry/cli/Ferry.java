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
    subcommands = {AgentCommand.class, GuestCommand.class, CommandLine.HelpCommand.class},
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {"0:Success.", "1:The operation failed.", "2:Invalid command line or configuration.",
        "3:Unreachable agent.", "4:Request refused.", "5:Migration outcome unknown."})
public final class Ferry implements Runnable {
  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  public static void main(String[] args) {
    CommandLine cli = new CommandLine(new Ferry());
    cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
      commandLine.getErr().println(commandLine.getCommandName() + ": " + e.getMessage());
      return ExitCodes.FAILED;
    });
    cli.setParameterExceptionHandler((e, unmatched) -> {
      e.getCommandLine().getErr().println(e.getMessage());
      e.getCommandLine().getErr().println("See '" + e.getCommandLine().getCommandSpec().qualifiedName() + " --help'.");
      return ExitCodes.USAGE;
    });
    int code = cli.execute(args);
    System.exit(code);
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
