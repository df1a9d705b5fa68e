package dev.ferry.cluster.coordinator;

import dev.ferry.proto.HostRecord;
import dev.ferry.proto.VmUsage;
import java.util.HashMap;
import java.util.Map;
import java.util.OptionalDouble;

/**
 * The coordinator's view of load over time: a {@link SlidingMedian} per host (CPU cores in use)
 * and per VM (CPU cores, dirty rate), fed with every host record the caches see (each agent
 * report). A VM's window follows the VM across hosts (a migration does not reset it); windows
 * no longer reported fade out after the age limit. Thread-safe: fed from the cache's listener,
 * read by the API and the leader's round.
 */
public final class LoadWindows {
  /** The last 5 reports: about 10 s at the agents' default interval of 2 s. */
  public static final int SIZE_DEFAULT = 5;
  public static final int SIZE_MAX = 60;
  /** A sample older than this does not count, whatever the window's size. */
  public static final long MAX_AGE_MILLIS = 30_000;

  /** One VM's windowed use. */
  public record VmLoad(double cpuCores, long dirtyRateBytesPerS) {}

  /** The windowed values at one instant: host id to CPU cores in use, VM name to its use. */
  public record Snapshot(Map<String, Double> hostCores, Map<String, VmLoad> vms) {
    public static final Snapshot EMPTY = new Snapshot(Map.of(), Map.of());
  }

  private final int size;
  private final Map<String, SlidingMedian> hosts = new HashMap<>();
  private final Map<String, SlidingMedian> vmCpu = new HashMap<>();
  private final Map<String, SlidingMedian> vmDirty = new HashMap<>();

  /** @param size the reports each window keeps (1-{@value #SIZE_MAX}) */
  public LoadWindows(int size) {
    if (size < 1 || size > SIZE_MAX) {
      throw new IllegalArgumentException("load-window: must be between 1 and " + SIZE_MAX + ", got " + size);
    }
    this.size = size;
  }

  /** Takes one report (a host record as written); the same record seen twice counts once. */
  public synchronized void record(HostRecord host) {
    long at = host.getUpdatedMs();
    if (at <= 0 || host.getHostId().isEmpty()) {
      return;
    }
    window(hosts, host.getHostId()).add(at, host.getLoad());
    for (VmUsage u : host.getVmUsageList()) {
      window(vmCpu, u.getVm()).add(at, u.getCpuCores());
      window(vmDirty, u.getVm()).add(at, u.getDirtyRateBytesPerS());
    }
  }

  private SlidingMedian window(Map<String, SlidingMedian> windows, String key) {
    return windows.computeIfAbsent(key, k -> new SlidingMedian(size, MAX_AGE_MILLIS));
  }

  /** The medians at {@code nowMillis}; windows whose samples have all aged out are forgotten. */
  public synchronized Snapshot snapshot(long nowMillis) {
    for (Map<String, SlidingMedian> windows : java.util.List.of(hosts, vmCpu, vmDirty)) {
      windows.values().removeIf(w -> w.expired(nowMillis));
    }
    Map<String, Double> hostCores = new HashMap<>();
    hosts.forEach((id, w) -> w.median(nowMillis).ifPresent(v -> hostCores.put(id, v)));
    Map<String, VmLoad> vms = new HashMap<>();
    vmCpu.forEach((vm, w) -> {
      OptionalDouble cpu = w.median(nowMillis);
      SlidingMedian dirty = vmDirty.get(vm);
      OptionalDouble rate = dirty == null ? OptionalDouble.empty() : dirty.median(nowMillis);
      if (cpu.isPresent()) {
        vms.put(vm, new VmLoad(cpu.getAsDouble(), (long) rate.orElse(0)));
      }
    });
    return new Snapshot(Map.copyOf(hostCores), Map.copyOf(vms));
  }
}
