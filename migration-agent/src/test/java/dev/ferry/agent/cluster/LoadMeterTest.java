package dev.ferry.agent.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.cluster.model.Records;
import dev.ferry.proto.VmUsage;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The load report's arithmetic: per-VM CPU cores and dirty rate from counters, host cores from /proc/stat. */
class LoadMeterTest {
  private static final long SECOND = 1_000_000_000L;

  @Test
  void eachGuestsUseIsItsCountersOverTheElapsedTime() {
    Map<String, LoadMeter.GuestCounters> before = Map.of("web-1", new LoadMeter.GuestCounters(0, 0),
        "db-1", new LoadMeter.GuestCounters(5 * SECOND, 1000));
    Map<String, LoadMeter.GuestCounters> after = Map.of("web-1", new LoadMeter.GuestCounters(SECOND, 512),
        "db-1", new LoadMeter.GuestCounters(5 * SECOND + SECOND / 2, 1000),
        "new-1", new LoadMeter.GuestCounters(SECOND, 10));
    List<VmUsage> usage = LoadMeter.vmUsage(before, after, 2 * SECOND);
    assertEquals(List.of("db-1", "web-1"), usage.stream().map(VmUsage::getVm).toList(),
        "sorted; a guest first seen now has no interval yet");
    assertEquals(0.25, usage.get(0).getCpuCores(), 1e-9);
    assertEquals(0, usage.get(0).getDirtyRateBytesPerS());
    assertEquals(0.5, usage.get(1).getCpuCores(), 1e-9);
    assertEquals(512 * 4096 / 2, usage.get(1).getDirtyRateBytesPerS());
  }

  @Test
  void aReplacedGuestsCountersGoingBackCountAsNothingAndTheListIsBounded() {
    List<VmUsage> back = LoadMeter.vmUsage(Map.of("web-1", new LoadMeter.GuestCounters(9 * SECOND, 900)),
        Map.of("web-1", new LoadMeter.GuestCounters(SECOND, 10)), SECOND);
    assertEquals(0.0, back.get(0).getCpuCores());
    assertEquals(0, back.get(0).getDirtyRateBytesPerS());
    Map<String, LoadMeter.GuestCounters> many = new HashMap<>();
    for (int i = 0; i < Records.VM_USAGE_MAX + 10; i++) {
      many.put("vm-" + i, new LoadMeter.GuestCounters(i, i));
    }
    assertEquals(Records.VM_USAGE_MAX, LoadMeter.vmUsage(many, many, SECOND).size());
    assertTrue(LoadMeter.vmUsage(many, many, 0).isEmpty(), "no elapsed time, no figures");
  }

  @Test
  void theHostsCoresComeFromProcStatBusyTicks() {
    String first = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\ncpu1 50 0 50 350 50 0 0 0 0 0\n"
        + "intr 1 2 3\nctxt 5\n";
    String second = "cpu  400 0 200 900 100 0 0 0 0 0\ncpu0 1 0 0 0 0 0 0 0 0 0\ncpu1 1 0 0 0 0 0 0 0 0 0\n";
    LoadMeter.CpuTicks a = LoadMeter.parseProcStat(first);
    LoadMeter.CpuTicks b = LoadMeter.parseProcStat(second);
    assertEquals(new LoadMeter.CpuTicks(200, 1000, 2), a);
    // 400 busy of 600 ticks on 2 CPUs: 1.33 cores.
    assertEquals(2 * 400 / 600.0, LoadMeter.hostCores(a, b), 1e-9);
    assertTrue(Double.isNaN(LoadMeter.hostCores(null, b)), "no earlier reading");
    assertTrue(Double.isNaN(LoadMeter.hostCores(b, b)), "no ticks in between");
    assertNull(LoadMeter.parseProcStat("intr 1 2\n"));
  }

  @Test
  void aRealSampleOnThisMachineIsFiniteAndNonNegative() {
    LoadMeter meter = new LoadMeter();
    meter.sample(System.nanoTime(), Map.of());
    long spin = System.nanoTime();
    while (System.nanoTime() - spin < 50_000_000L) {
      Thread.onSpinWait();
    }
    LoadMeter.Report report = meter.sample(System.nanoTime(), Map.of());
    assertTrue(Double.isFinite(report.hostCores()) && report.hostCores() >= 0, "host cores " + report.hostCores());
  }
}
