package dev.ferry.cluster.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.proto.HostRecord;
import dev.ferry.proto.VmUsage;
import org.junit.jupiter.api.Test;

/** The coordinator's load windows: a median over the last reports, so one spike moves nothing. */
class LoadWindowsTest {
  @Test
  void oneSpikeMovesNothingALastingChangeDoes() {
    SlidingMedian w = new SlidingMedian(5, 30_000);
    long t = 1_000;
    for (double v : new double[] {0.2, 0.2, 0.2, 0.2}) {
      w.add(t += 2_000, v);
    }
    w.add(t += 2_000, 1.9); // a spike
    assertEquals(0.2, w.median(t).getAsDouble(), 1e-9);
    w.add(t += 2_000, 1.8);
    assertEquals(0.2, w.median(t).getAsDouble(), 1e-9, "two high of five: still the usual");
    w.add(t += 2_000, 1.7);
    assertEquals(1.7, w.median(t).getAsDouble(), 1e-9, "three of five: the load has changed");
    assertEquals(5, w.samples(), "bounded to the window's size");
  }

  @Test
  void duplicatesBadValuesAndOldSamplesDoNotCount() {
    SlidingMedian w = new SlidingMedian(4, 10_000);
    w.add(1_000, 1.0);
    w.add(1_000, 9.0); // the same report seen again
    w.add(500, 9.0); // older
    w.add(2_000, Double.NaN);
    w.add(3_000, -1);
    assertEquals(1, w.samples());
    w.add(4_000, 3.0);
    assertEquals(2.0, w.median(4_000).getAsDouble(), 1e-9, "even count: the mean of the middle two");
    assertEquals(3.0, w.median(12_000).getAsDouble(), 1e-9, "the sample from 1 000 has aged out");
    assertTrue(w.median(20_000).isEmpty());
    assertTrue(w.expired(20_000));
    assertThrows(IllegalArgumentException.class, () -> new SlidingMedian(0, 1));
  }

  @Test
  void hostAndVmWindowsAreFedByHostRecordsAndFollowAVmAcrossHosts() {
    LoadWindows loads = new LoadWindows(3);
    long now = System.currentTimeMillis();
    loads.record(host("h1", now - 4_000, 1.0, usage("web-1", 0.5, 100)));
    loads.record(host("h1", now - 2_000, 1.2, usage("web-1", 0.6, 200)));
    loads.record(host("h1", now - 2_000, 9.9, usage("web-1", 9.9, 999))); // the same report again
    loads.record(host("h2", now, 0.7, usage("web-1", 0.7, 300))); // after a migration to h2
    LoadWindows.Snapshot s = loads.snapshot(now);
    assertEquals(1.1, s.hostCores().get("h1"), 1e-9);
    assertEquals(0.7, s.hostCores().get("h2"), 1e-9);
    assertEquals(0.6, s.vms().get("web-1").cpuCores(), 1e-9);
    assertEquals(200, s.vms().get("web-1").dirtyRateBytesPerS());
    LoadWindows.Snapshot later = loads.snapshot(now + LoadWindows.MAX_AGE_MILLIS + 1);
    assertFalse(later.hostCores().containsKey("h1"), "a host that stopped reporting fades out");
    assertTrue(later.vms().isEmpty());
    assertThrows(IllegalArgumentException.class, () -> new LoadWindows(LoadWindows.SIZE_MAX + 1));
  }

  private static HostRecord host(String id, long at, double load, VmUsage... vms) {
    return HostRecord.newBuilder().setHostId(id).setUpdatedMs(at).setLoad(load)
        .addAllVmUsage(java.util.List.of(vms)).build();
  }

  private static VmUsage usage(String vm, double cores, long dirty) {
    return VmUsage.newBuilder().setVm(vm).setCpuCores(cores).setDirtyRateBytesPerS(dirty).build();
  }
}
