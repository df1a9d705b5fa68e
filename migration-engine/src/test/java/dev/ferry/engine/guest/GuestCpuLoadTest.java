package dev.ferry.engine.guest;

import static dev.ferry.engine.guest.TestGuests.MIB;
import static dev.ferry.engine.guest.TestGuests.WAIT_MILLIS_MAX;
import static dev.ferry.engine.guest.TestGuests.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.common.InvalidConfigException;
import dev.ferry.engine.clock.Clock;
import dev.ferry.proto.GuestSpec;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The guest's CPU demand is real: its vCPU threads' CPU time follows the load asked (compared as
 * a ratio between two loads, so a slow or busy machine does not decide), it changes on a running
 * guest with the dirty rate, a pause stops a computing vCPU, and bad values are refused naming the
 * field.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class GuestCpuLoadTest {
  private static final long WINDOW_NANOS = 600_000_000L;

  private static GuestSpec spec(String name, double cpuLoad, long dirtyRate) {
    GuestSpec spec = TestGuests.spec(name, 16 * MIB, 1, dirtyRate, 7);
    return spec.toBuilder().setWorkload(spec.getWorkload().toBuilder().setCpuLoad(cpuLoad)).build();
  }

  /** CPU time of the guest's vCPUs over a window of wall time, per second of wall time. */
  private static double cpuShare(Guest guest) {
    long cpu0 = guest.vcpuCpuNanos();
    long t0 = System.nanoTime();
    LockSupport.parkNanos(WINDOW_NANOS);
    return (guest.vcpuCpuNanos() - cpu0) / (double) (System.nanoTime() - t0);
  }

  @Test
  void busyVcpusBurnTheCpuAskedForAndALoadChangeTakesEffectWhileRunning() {
    Guest guest = Guest.boot(spec("load", 0.1, 0), Clock.SYSTEM);
    try {
      double low = cpuShare(guest);
      guest.setDemand(0.8, 0);
      assertEquals(0.8, guest.spec().getWorkload().getCpuLoad(), "the spec shows the new demand");
      double high = cpuShare(guest);
      guest.setDemand(0.0, 0);
      double idle = cpuShare(guest);
      // Expected 0.1, 0.8 and ~0: the ratio holds even when the machine is busy and the threads get less.
      assertTrue(high > 3 * low, "load 0.8 must burn far more than 0.1: " + high + " vs " + low);
      assertTrue(low > 2 * idle, "load 0.1 must burn more than an idle guest: " + low + " vs " + idle);
      assertTrue(high > 0.2, "load 0.8 burns a real share of a core: " + high);
    } finally {
      guest.destroy();
    }
  }

  @Test
  void theDirtyRateChangesOnARunningGuest() {
    Guest guest = Guest.boot(spec("dirty", 0.0, 0), Clock.SYSTEM);
    try {
      LockSupport.parkNanos(50_000_000L);
      assertEquals(0, guest.steps(), "an idle guest writes nothing");
      guest.setDemand(0.0, 16 * MIB);
      await("steps at the new dirty rate", WAIT_MILLIS_MAX, () -> guest.steps() > 100);
      assertEquals(16 * MIB, guest.spec().getWorkload().getDirtyRateBytesPerS());
    } finally {
      guest.destroy();
    }
  }

  @Test
  void aComputingGuestPausesExactly() {
    Guest guest = Guest.boot(spec("pause", 1.0, 4 * MIB), Clock.SYSTEM);
    try {
      await("the first steps", WAIT_MILLIS_MAX, () -> guest.steps() > 0);
      guest.pause();
      long steps = guest.steps();
      long cpu = guest.vcpuCpuNanos();
      LockSupport.parkNanos(100_000_000L);
      assertEquals(steps, guest.steps(), "no step while paused");
      assertTrue(guest.vcpuCpuNanos() - cpu < 20_000_000L, "a paused vCPU does not compute: "
          + (guest.vcpuCpuNanos() - cpu) + " ns in 100 ms");
      guest.resume();
      await("steps after the resume", WAIT_MILLIS_MAX, () -> guest.steps() > steps);
    } finally {
      guest.destroy();
    }
  }

  @Test
  void badLoadsAreRefusedNamingTheField() {
    for (double bad : new double[] {-0.1, 1.01, Double.NaN, Double.POSITIVE_INFINITY}) {
      InvalidConfigException e = assertThrows(InvalidConfigException.class,
          () -> Guest.validate(spec("bad", bad, 0)), "cpu_load " + bad);
      assertEquals("workload.cpu_load", e.field());
    }
    Guest guest = Guest.boot(spec("bad-set", 0.2, 0), Clock.SYSTEM);
    try {
      InvalidConfigException e = assertThrows(InvalidConfigException.class, () -> guest.setDemand(2.0, 0));
      assertEquals("workload.cpu_load", e.field());
      e = assertThrows(InvalidConfigException.class, () -> guest.setDemand(0.5, -1));
      assertEquals("workload.dirty_rate_bytes_per_s", e.field());
      assertEquals(0.2, guest.spec().getWorkload().getCpuLoad(), "a refused change changes nothing");
    } finally {
      guest.destroy();
    }
  }
}
