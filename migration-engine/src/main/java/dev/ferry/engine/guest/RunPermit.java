package dev.ferry.engine.guest;

/**
 * Until when this process's guests may run, on {@link System#nanoTime()}'s time line: one per
 * process (like the run observer). A cluster agent moves the deadline forward each time it has
 * proof that the cluster still counts it alive (a ZooKeeper round trip or a datastore heartbeat),
 * to half the HA timeout past that proof; HA restarts a host's VMs elsewhere only after a full
 * timeout without either. So a frozen agent (SIGSTOP, a long GC) whose VMs were restarted
 * elsewhere finds the deadline passed when it wakes, and its vCPUs take no further step: they
 * check it before every step. Standalone agents and tests never set it: no deadline.
 */
public final class RunPermit {
  private static final java.util.concurrent.atomic.AtomicLong DEADLINE = new java.util.concurrent.atomic.AtomicLong(Long.MAX_VALUE);

  private RunPermit() {}

  /** The guests of this process may run until {@code nanos} (System.nanoTime); Long.MAX_VALUE: always. */
  public static void until(long nanos) {
    DEADLINE.set(nanos);
  }

  /** Moves the deadline to {@code nanos} unless it is later already (agents in one test JVM share it). */
  public static void extendTo(long nanos) {
    DEADLINE.accumulateAndGet(nanos, (now, next) -> next - now > 0 ? next : now);
  }

  public static long deadlineNanos() {
    return DEADLINE.get();
  }

  /** True while the guests may run, at {@code nowNanos} (the agent's clock: System.nanoTime). */
  public static boolean allows(long nowNanos) {
    long deadline = DEADLINE.get();
    return deadline == Long.MAX_VALUE || nowNanos - deadline < 0;
  }
}
