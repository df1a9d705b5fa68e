package dev.ferry.agent.cluster;

import dev.ferry.cluster.model.Records;
import dev.ferry.proto.VmUsage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What an agent reports about load, measured rather than declared: each guest's CPU from its vCPU
 * threads' CPU time and its dirty rate from its page writes, the host's CPU from the OS
 * ({@code /proc/stat}), each over the time since the previous sample. One sample per report, so
 * the host record carries it all in one write. The arithmetic is pure ({@link #vmUsage},
 * {@link #hostCores}); {@link #sample} keeps the previous counters. Called from one thread.
 */
public final class LoadMeter {
  private static final Path PROC_STAT = Path.of("/proc/stat");
  private static final long PAGE_BYTES = 4096;

  /** A guest's counters at one instant: CPU time of its vCPU threads and page writes so far. */
  public record GuestCounters(long cpuNanos, long steps) {}

  /**
   * The busy and total time of every CPU of the machine, in clock ticks, and how many CPUs there
   * are (the first line of /proc/stat and its per-CPU lines).
   */
  public record CpuTicks(long busy, long total, int cpus) {}

  /** One report: the host's CPU use in cores and the guests' usage. */
  public record Report(double hostCores, List<VmUsage> vms) {}

  private Map<String, GuestCounters> lastGuests = Map.of();
  private long lastNanos;
  private CpuTicks lastTicks;

  /** Usage since the previous sample (none for a guest or the host seen for the first time). */
  public Report sample(long nowNanos, Map<String, GuestCounters> guests) {
    CpuTicks ticks = readProcStat();
    double host = hostCores(lastTicks, ticks);
    if (Double.isNaN(host)) {
      host = jvmHostCores();
    }
    List<VmUsage> vms = lastNanos == 0 ? List.of() : vmUsage(lastGuests, guests, nowNanos - lastNanos);
    lastGuests = Map.copyOf(guests);
    lastNanos = nowNanos;
    lastTicks = ticks;
    return new Report(host, vms);
  }

  /**
   * Each guest present in both samples: CPU cores (CPU time / elapsed) and dirty rate (pages
   * written x 4 KiB / elapsed), sorted by name, at most {@link Records#VM_USAGE_MAX}. A counter
   * that went back (a guest replaced by another of the same name) counts as nothing used.
   */
  public static List<VmUsage> vmUsage(Map<String, GuestCounters> before, Map<String, GuestCounters> now,
      long elapsedNanos) {
    if (elapsedNanos <= 0) {
      return List.of();
    }
    List<VmUsage> out = new ArrayList<>();
    for (Map.Entry<String, GuestCounters> e : new TreeMap<>(now).entrySet()) {
      GuestCounters previous = before.get(e.getKey());
      if (previous == null) {
        continue;
      }
      if (out.size() == Records.VM_USAGE_MAX) {
        break; // the record stays small; a host with more guests than this is not a real one
      }
      long cpu = Math.max(0, e.getValue().cpuNanos() - previous.cpuNanos());
      long steps = Math.max(0, e.getValue().steps() - previous.steps());
      out.add(VmUsage.newBuilder().setVm(e.getKey()).setCpuCores(cpu / (double) elapsedNanos)
          .setDirtyRateBytesPerS((long) (steps * PAGE_BYTES * 1e9 / elapsedNanos)).build());
    }
    return out;
  }

  /** The host's busy cores between two readings, or NaN if there is no earlier reading or no progress. */
  public static double hostCores(CpuTicks before, CpuTicks now) {
    if (before == null || now == null || now.total() <= before.total() || now.cpus() <= 0) {
      return Double.NaN;
    }
    double busyShare = Math.max(0, now.busy() - before.busy()) / (double) (now.total() - before.total());
    return Math.min(1.0, busyShare) * now.cpus();
  }

  /**
   * The aggregate "cpu" line of /proc/stat (user nice system idle iowait irq softirq steal ...):
   * busy is everything but idle and iowait. Null if the text has no such line.
   */
  public static CpuTicks parseProcStat(String text) {
    CpuTicks total = null;
    int cpus = 0;
    for (String line : text.split("\n")) {
      if (line.startsWith("cpu ")) {
        String[] f = line.trim().split("\\s+");
        if (f.length < 5) {
          return null;
        }
        long sum = 0;
        long idle = 0;
        // Fields 9 and 10 (guest, guest_nice) are already counted in user and nice.
        for (int i = 1; i < Math.min(f.length, 9); i++) {
          long v = Long.parseLong(f[i]);
          sum += v;
          if (i == 4 || i == 5) {
            idle += v;
          }
        }
        total = new CpuTicks(sum - idle, sum, 0);
      } else if (line.startsWith("cpu")) {
        cpus++;
      }
    }
    return total == null ? null : new CpuTicks(total.busy(), total.total(), cpus);
  }

  private static CpuTicks readProcStat() {
    try {
      return parseProcStat(Files.readString(PROC_STAT));
    } catch (IOException | RuntimeException e) {
      return null; // not Linux: the JVM's figure below
    }
  }

  private static double jvmHostCores() {
    java.lang.management.OperatingSystemMXBean os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
      return Math.max(0, sun.getCpuLoad()) * Runtime.getRuntime().availableProcessors();
    }
    return 0;
  }
}
