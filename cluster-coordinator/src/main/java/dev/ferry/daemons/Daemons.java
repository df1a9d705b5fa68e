package dev.ferry.daemons;

import dev.ferry.agent.cli.AgentCommand;
import dev.ferry.agent.cli.GuestCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The daemons and host tools: {@code ferry agent|coordinator|zk-server|datastore|guest|ca}.
 * {@code scripts/ferry} runs this program for those words and the operator CLI
 * ({@code dev.ferry.cli.Ferry}, module ferry-cli) for every other.
 */
@Command(name = "ferry",
    mixinStandardHelpOptions = true,
    description = {"Ferry's daemons and host tools.", ""},
    subcommands = {CoordinatorCommand.class, AgentCommand.class, ZkServerCommand.class, DatastoreCommand.class,
        GuestCommand.class, CaCommand.class, CommandLine.HelpCommand.class})
public final class Daemons implements Runnable {
  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  public static void main(String[] args) {
    System.exit(commandLine().execute(args));
  }

  /** The daemons' command line with the same error handling as the operator CLI. */
  public static CommandLine commandLine() {
    return dev.ferry.common.CommandLines.withFerryErrors(new CommandLine(new Daemons()));
  }
}
