package dev.ferry.agent.cluster;

import dev.ferry.common.InvalidConfigException;

/**
 * The HA timeout, shared by agents and coordinators (both take {@code --ha-timeout SECONDS}, and
 * both must be given the same value): a host whose ZooKeeper session is gone and whose datastore
 * heartbeat has not changed for this long is dead, and its VMs restart elsewhere. An agent that
 * cannot prove it is alive (no ZooKeeper round trip, no datastore heartbeat) for half of it stops
 * its guests by itself, so they are off before anyone restarts them.
 */
public final class HaTimeout {
  public static final int SECONDS_DEFAULT = 15;
  public static final int SECONDS_MIN = 2;
  public static final int SECONDS_MAX = 600;
  /** An agent's heartbeat period: often enough that a lost beat or two does not stop its guests. */
  public static final long HEARTBEAT_MILLIS_MAX = 2_000;

  private HaTimeout() {}

  /** {@code text} (whole seconds) as milliseconds, or an error naming {@code field}. */
  public static long parseMillis(String field, String text) {
    long seconds;
    try {
      seconds = Long.parseLong(text.trim());
    } catch (NumberFormatException e) {
      throw new InvalidConfigException(field, "'" + text + "' is not a whole number of seconds");
    }
    InvalidConfigException.requireRange(field, seconds, SECONDS_MIN, SECONDS_MAX);
    return seconds * 1000;
  }

  /** How often an agent proves it is alive: a sixth of the timeout, at most every 2 s. */
  public static long heartbeatMillis(long haTimeoutMillis) {
    return Math.max(100, Math.min(HEARTBEAT_MILLIS_MAX, haTimeoutMillis / 6));
  }
}
