package dev.ferry.cluster.drs;

/**
 * One VM in a snapshot. {@code host} is null for a VM that runs nowhere (being created, or
 * waiting for an HA restart); {@code cpuDemandCores} is its windowed CPU use; {@code lastMove}
 * is null if it never moved; {@code migrating}: a migration of it is in flight (DRS leaves it alone).
 */
public record Vm(String name, String host, double cpuDemandCores, long memoryBytes, long dirtyRateBytesPerSecond,
    LastMove lastMove, boolean migrating) {

  /** When the VM last moved (epoch ms, the snapshot's clock) and from which host. */
  public record LastMove(long atMillis, String fromHost) {
    public LastMove {
      Checks.name("last move's host", fromHost);
    }
  }

  public Vm {
    Checks.name("vm name", name);
    if (host != null) {
      Checks.name("vm " + name + " host", host);
    }
    Checks.range("vm " + name + " cpu demand (cores)", cpuDemandCores, 0, 1024);
    Checks.range("vm " + name + " memory (bytes)", memoryBytes, 1, 1L << 46);
    Checks.range("vm " + name + " dirty rate (bytes/s)", dirtyRateBytesPerSecond, 0, 1L << 40);
  }

  /** A VM that never moved and is not migrating. */
  public static Vm of(String name, String host, double cpuDemandCores, long memoryBytes) {
    return new Vm(name, host, cpuDemandCores, memoryBytes, 0, null, false);
  }

  public Vm onHost(String newHost) {
    return new Vm(name, newHost, cpuDemandCores, memoryBytes, dirtyRateBytesPerSecond, lastMove, migrating);
  }

  public Vm movedFrom(String fromHost, long atMillis, String toHost) {
    return new Vm(name, toHost, cpuDemandCores, memoryBytes, dirtyRateBytesPerSecond, new LastMove(atMillis, fromHost),
        false);
  }

  public Vm withDemand(double cores) {
    return new Vm(name, host, cores, memoryBytes, dirtyRateBytesPerSecond, lastMove, migrating);
  }

  public Vm withMigrating(boolean inFlight) {
    return new Vm(name, host, cpuDemandCores, memoryBytes, dirtyRateBytesPerSecond, lastMove, inFlight);
  }

  public Vm withDirtyRate(long bytesPerSecond) {
    return new Vm(name, host, cpuDemandCores, memoryBytes, bytesPerSecond, lastMove, migrating);
  }
}
