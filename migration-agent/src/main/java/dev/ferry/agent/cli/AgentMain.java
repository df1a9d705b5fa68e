package dev.ferry.agent.cli;

import picocli.CommandLine;

/** Runs {@code ferry agent} on its own (the benchmark and the integration tests start agents this way). */
public final class AgentMain {
  private AgentMain() {}

  public static void main(String[] args) {
    int code = new CommandLine(new AgentCommand()).execute(args);
    System.exit(code);
  }
}
