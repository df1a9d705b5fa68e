package dev.ferry.engine.clock;

import java.lang.management.ManagementFactory;

/**
 * CPU time this process has used, for the per-migration CPU figures (the engine subtracts the
 * guest's vCPU threads). {@link #NONE} where nobody reads them.
 */
public interface CpuTime {
  /** Process CPU time in nanoseconds (user + system, every thread). */
  long processNanos();

  CpuTime NONE = () -> 0;

  CpuTime PROCESS = () -> ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os
      ? Math.max(0, os.getProcessCpuTime()) : 0;
}
