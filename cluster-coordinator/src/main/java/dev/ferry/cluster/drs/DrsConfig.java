package dev.ferry.cluster.drs;

/**
 * DRS settings. {@code threshold} 1 makes only mandatory moves (maintenance, rules); 2–5 balance
 * towards a lower and lower spread ({@link Balancer#targetSpread}). {@code recentMoveWindowMillis}:
 * a VM that moved within it is never moved back to the host it left, and moves elsewhere for
 * balance only for a large benefit (no ping-pong).
 */
public record DrsConfig(Mode mode, int threshold, Limits limits, long recentMoveWindowMillis) {

  public static final DrsConfig DEFAULT = new DrsConfig(Mode.FULL, 3, Limits.DEFAULT, 30 * 60_000L);

  /**
   * What the coordinator does with a plan: {@code MANUAL} recommends every move; {@code PARTIAL}
   * places VMs itself and recommends moves; {@code FULL} applies moves. Maintenance evacuations
   * were asked for by an operator and are applied in every mode.
   */
  public enum Mode { MANUAL, PARTIAL, FULL }

  /** Concurrent migrations out of and into each host, and in the cluster (in-flight ones included). */
  public record Limits(int outPerHost, int inPerHost, int cluster) {
    public static final Limits DEFAULT = new Limits(2, 2, 8);

    public Limits {
      Checks.range("limits out per host", outPerHost, 1, 64);
      Checks.range("limits in per host", inPerHost, 1, 64);
      Checks.range("limits cluster", cluster, 1, 100_000);
    }
  }

  public DrsConfig {
    if (mode == null) {
      throw new IllegalArgumentException("drs mode: missing (manual, partial or full)");
    }
    Checks.range("drs threshold", threshold, 1, 5);
    if (limits == null) {
      throw new IllegalArgumentException("drs limits: missing");
    }
    Checks.range("drs recent move window (ms)", recentMoveWindowMillis, 0, 7 * 24 * 3600_000L);
  }

  public DrsConfig withThreshold(int newThreshold) {
    return new DrsConfig(mode, newThreshold, limits, recentMoveWindowMillis);
  }

  public DrsConfig withLimits(Limits newLimits) {
    return new DrsConfig(mode, threshold, newLimits, recentMoveWindowMillis);
  }

  public DrsConfig withMode(Mode newMode) {
    return new DrsConfig(newMode, threshold, limits, recentMoveWindowMillis);
  }
}
