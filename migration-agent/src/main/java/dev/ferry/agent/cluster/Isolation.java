package dev.ferry.agent.cluster;

import dev.ferry.engine.guest.RunPermit;

/**
 * An agent's answer to isolation. Each proof that the cluster still counts this host alive — a
 * ZooKeeper round trip or a datastore heartbeat written — moves the process's {@link RunPermit}
 * to half the HA timeout past the moment the proof began; the coordinator restarts this host's
 * VMs only after a whole timeout with neither (session gone, heartbeat unchanged). Past the
 * permit the vCPUs take no step, and the agent powers its guests off ({@link #lapsed}), so a VM
 * is off here before it can be restarted elsewhere, and a frozen agent (SIGSTOP, a long GC) that
 * wakes up late finds the permit passed and stops its stale copies without running them.
 *
 * <p>The proof's start, not its end, counts: a reply that was waiting in a socket while the
 * process was frozen proves nothing about the time after the request was sent.
 */
public final class Isolation {
  private final long graceNanos;
  private volatile long provenNanos;

  /** Starts with a permit from {@code nowNanos} (the agent has just joined). */
  public Isolation(long haTimeoutMillis, long nowNanos) {
    this.graceNanos = haTimeoutMillis * 1_000_000L / 2;
    this.provenNanos = nowNanos;
    RunPermit.until(nowNanos + graceNanos);
  }

  /** A proof of life that began at {@code startedNanos}. */
  public void proven(long startedNanos) {
    if (startedNanos - provenNanos > 0) {
      provenNanos = startedNanos;
      RunPermit.extendTo(startedNanos + graceNanos);
    }
  }

  /** True once the permit has run out at {@code nowNanos}: the guests here must be powered off. */
  public boolean lapsed(long nowNanos) {
    return nowNanos - (provenNanos + graceNanos) >= 0;
  }

  /** How long since the last proof began, at {@code nowNanos}. */
  public long silentMillis(long nowNanos) {
    return (nowNanos - provenNanos) / 1_000_000L;
  }

  /** No permit any more (the agent leaves the cluster): guests are not held back. */
  public static void release() {
    RunPermit.until(Long.MAX_VALUE);
  }
}
