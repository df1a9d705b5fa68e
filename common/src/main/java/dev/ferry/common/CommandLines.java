package dev.ferry.common;

import picocli.CommandLine;

/** The error handling every Ferry command line shares: one line naming the command, and its exit code. */
public final class CommandLines {
  private CommandLines() {
  }

  /** {@code cli} with Ferry's exit codes: bad input 2 (the message names the option), failures 1. */
  public static CommandLine withFerryErrors(CommandLine cli) {
    cli.setUsageHelpWidth(100); // the descriptions are written for 100 columns
    cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
      commandLine.getErr().println(commandLine.getCommandSpec().qualifiedName() + ": " + e.getMessage());
      return e instanceof InvalidConfigException ? ExitCodes.USAGE : ExitCodes.FAILED;
    });
    cli.setParameterExceptionHandler((e, unmatched) -> {
      e.getCommandLine().getErr().println(e.getMessage());
      e.getCommandLine().getErr().println("See '" + e.getCommandLine().getCommandSpec().qualifiedName() + " --help'.");
      return ExitCodes.USAGE;
    });
    return cli;
  }
}
