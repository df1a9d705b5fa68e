package dev.ferry.cluster.drs;

/**
 * A migration under way: it counts against the concurrency limits, and its VM counts on
 * {@code to} for CPU and rules and on both hosts for memory until it ends.
 */
public record InFlight(String vm, String from, String to) {
  public InFlight {
    Checks.name("migration's vm", vm);
    Checks.name("migration " + vm + " source", from);
    Checks.name("migration " + vm + " target", to);
  }
}
