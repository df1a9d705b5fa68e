package dev.ferry.cluster.drs;

/**
 * One host in a snapshot. {@code cpuUsedCores} is the coordinator's windowed measure of the whole
 * host's CPU use (its VMs and their overhead), {@code memoryUsedBytes} what its VMs hold.
 */
public record Host(String id, double cpuCapacityCores, double cpuUsedCores, long memoryCapacityBytes,
    long memoryUsedBytes, HostState state) {

  public Host {
    Checks.name("host id", id);
    Checks.range("host " + id + " cpu capacity (cores)", cpuCapacityCores, 0.01, 4096);
    Checks.range("host " + id + " cpu used (cores)", cpuUsedCores, 0, 4096);
    Checks.range("host " + id + " memory capacity (bytes)", memoryCapacityBytes, 1, 1L << 50);
    Checks.range("host " + id + " memory used (bytes)", memoryUsedBytes, 0, 1L << 50);
    if (state == null) {
      throw new IllegalArgumentException("host " + id + " state: missing");
    }
  }

  public static Host active(String id, double cpuCapacityCores, double cpuUsedCores, long memoryCapacityBytes,
      long memoryUsedBytes) {
    return new Host(id, cpuCapacityCores, cpuUsedCores, memoryCapacityBytes, memoryUsedBytes, HostState.ACTIVE);
  }

  public Host withState(HostState newState) {
    return new Host(id, cpuCapacityCores, cpuUsedCores, memoryCapacityBytes, memoryUsedBytes, newState);
  }

  public Host withUse(double cpuCores, long memoryBytes) {
    return new Host(id, cpuCapacityCores, cpuCores, memoryCapacityBytes, memoryBytes, state);
  }
}
