package dev.ferry.engine.guest;

import static dev.ferry.engine.guest.TestGuests.MIB;
import static dev.ferry.engine.guest.TestGuests.WAIT_MILLIS_MAX;
import static dev.ferry.engine.guest.TestGuests.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.ferry.engine.clock.Clock;
import dev.ferry.common.InvalidConfigException;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.GuestState;
import dev.ferry.proto.VcpuState;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A guest with vCPU threads: pause is exact, resume runs again, destroy frees; specs are validated. */
class GuestLifecycleTest {
  private static final long PAUSED_OBSERVATION_NANOS = 30_000_000L;

  @Test
  @Timeout(value = 30, unit = TimeUnit.SECONDS)
  void pauseStopsEveryVcpuAndResumeRunsThemAgain() {
    Guest guest = Guest.boot(TestGuests.spec("pause-resume", 16 * MIB, 2, 64 * MIB, 3), Clock.SYSTEM);
    try {
      assertEquals(Guest.State.RUNNING, guest.state());
      await("the first steps", WAIT_MILLIS_MAX, () -> guest.steps() > 0);
      for (int cycle = 0; cycle < 3; cycle++) {
        guest.pause();
        assertEquals(Guest.State.PAUSED, guest.state());
        long paused = guest.steps();
        byte[] digest = MemoryDigest.of(guest.memory());
        int dirty = guest.dirtyLog().countDirty();
        long start = System.nanoTime();
        while (System.nanoTime() - start < PAUSED_OBSERVATION_NANOS) {
          if (guest.steps() != paused) {
            fail("cycle " + cycle + ": a paused guest ran from step " + paused + " to " + guest.steps());
          }
          Thread.onSpinWait();
        }
        assertArrayEquals(digest, MemoryDigest.of(guest.memory()), "cycle " + cycle + ": a paused guest wrote memory");
        assertEquals(dirty, guest.dirtyLog().countDirty(), "cycle " + cycle);
        assertEquals(paused, stepsIn(guest.saveState()), "cycle " + cycle + ": the saved state names the exact step");

        guest.resume();
        assertEquals(Guest.State.RUNNING, guest.state());
        await("steps after resume in cycle " + cycle, WAIT_MILLIS_MAX, () -> guest.steps() > paused);
        await("the first step's time in cycle " + cycle, WAIT_MILLIS_MAX, () -> guest.firstStepNanosAfterResume() != 0);
        assertTrue(guest.firstStepNanosAfterResume() >= guest.resumedNanos(), "cycle " + cycle);
      }
    } finally {
      guest.destroy();
    }
    assertEquals(Guest.State.DESTROYED, guest.state());
    assertTrue(guest.memory().isFreed(), "destroy frees memory once the vCPUs have stopped");
    assertThrows(IllegalStateException.class, guest::pause);
    assertThrows(IllegalStateException.class, guest::resume);
    guest.destroy(); // idempotent
  }

  @Test
  @Timeout(value = 30, unit = TimeUnit.SECONDS)
  void anIdleGuestWritesNothing() {
    Guest guest = Guest.boot(TestGuests.spec("idle", 16 * MIB, 1, 0, 4), Clock.SYSTEM);
    try {
      long start = System.nanoTime();
      while (System.nanoTime() - start < PAUSED_OBSERVATION_NANOS) {
        assertEquals(0, guest.steps());
        Thread.onSpinWait();
      }
      guest.pause();
      assertEquals(0, guest.dirtyLog().countDirty());
    } finally {
      guest.destroy();
    }
  }

  @Test
  @Timeout(value = 30, unit = TimeUnit.SECONDS)
  void anIncomingGuestIsZeroedAndPausedUntilResumed() {
    GuestSpec spec = TestGuests.spec("incoming", 16 * MIB, 2, 64 * MIB, 5);
    Guest guest = Guest.incoming(spec, Clock.SYSTEM);
    try {
      assertEquals(Guest.State.PAUSED, guest.state());
      for (int page = 0; page < guest.memory().pageCount(); page += 97) {
        assertTrue(guest.memory().isZeroPage(page), "page " + page);
      }
      long start = System.nanoTime();
      while (System.nanoTime() - start < PAUSED_OBSERVATION_NANOS) {
        assertEquals(0, guest.steps());
        Thread.onSpinWait();
      }
      guest.resume();
      await("the first steps", WAIT_MILLIS_MAX, () -> guest.steps() > 0);
    } finally {
      guest.destroy();
    }
    assertTrue(guest.memory().isFreed());
  }

  @Test
  void validateNamesTheBadField() {
    GuestSpec good = TestGuests.spec("ok-name", 16 * MIB, 2, 0, 1);
    Guest.validate(good);
    assertField("name", good.toBuilder().setName("").build());
    assertField("name", good.toBuilder().setName("Upper").build());
    assertField("name", good.toBuilder().setName("-dash-first").build());
    assertField("name", good.toBuilder().setName("a".repeat(64)).build());
    Guest.validate(good.toBuilder().setName("a".repeat(63)).build());
    assertField("vcpus", good.toBuilder().setVcpus(0).build());
    assertField("vcpus", good.toBuilder().setVcpus(Guest.VCPUS_MAX + 1).build());
    Guest.validate(good.toBuilder().setVcpus(Guest.VCPUS_MAX).build());
    assertField("memory_bytes", good.toBuilder().setMemoryBytes(8 * MIB).build());
    assertField("memory_bytes", good.toBuilder().setMemoryBytes(16 * MIB + 1).build());
    assertField("workload.dirty_rate_bytes_per_s",
        good.toBuilder().setWorkload(good.getWorkload().toBuilder().setDirtyRateBytesPerS(-1)).build());
  }

  @Test
  void throttleIsBounded() {
    Guest guest = Guest.manual(TestGuests.spec("throttle", 16 * MIB, 2, MIB, 1), Clock.SYSTEM, false);
    try {
      guest.setThrottlePercent(99);
      assertEquals(99, guest.throttlePercent());
      assertThrows(IllegalArgumentException.class, () -> guest.setThrottlePercent(100));
      assertThrows(IllegalArgumentException.class, () -> guest.setThrottlePercent(-1));
      assertEquals(99, guest.throttlePercent());
    } finally {
      guest.destroy();
    }
  }

  /**
   * The run observer brackets every step: {@code started} before any vCPU runs, {@code stopped}
   * after the last one stopped (the agents' run logs, and so the it-tests' double-run check, rely on it).
   */
  @Test
  @Timeout(value = 30, unit = TimeUnit.SECONDS)
  void theRunObserverSeesEveryStepBetweenStartedAndStopped() {
    java.util.List<String> events = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
    Guest[] observed = new Guest[1];
    Guest.observeRuns(new Guest.RunObserver() {
      @Override
      public void started(String guest) {
        record("started", guest);
      }

      @Override
      public void stopped(String guest) {
        record("stopped", guest);
      }

      private void record(String event, String guest) {
        Guest g = observed[0];
        if (g == null) {
          events.add(event + " " + guest);
          return;
        }
        // Inside the call no vCPU may step: not yet after started, no more after stopped.
        long before = g.steps();
        long start = System.nanoTime();
        while (System.nanoTime() - start < PAUSED_OBSERVATION_NANOS) {
          Thread.onSpinWait();
        }
        long after = g.steps();
        events.add(event + " " + guest + " at step " + before + (after == before ? "" : " (still stepping: " + after + ")"));
      }
    });
    try {
      Guest guest = Guest.boot(TestGuests.spec("observed", 16 * MIB, 2, 64 * MIB, 5), Clock.SYSTEM);
      observed[0] = guest;
      await("the first steps", WAIT_MILLIS_MAX, () -> guest.steps() > 0);
      guest.pause();
      long paused = guest.steps();
      guest.resume();
      await("steps after resume", WAIT_MILLIS_MAX, () -> guest.steps() > paused);
      guest.destroy();
      long destroyed = guest.steps();
      Guest quiet = Guest.incoming(TestGuests.spec("never-resumed", 16 * MIB, 1, MIB, 1), Clock.SYSTEM);
      quiet.destroy();

      assertEquals(java.util.List.of("started observed", "stopped observed at step " + paused,
          "started observed at step " + paused, "stopped observed at step " + destroyed), events);
    } finally {
      Guest.observeRuns(null);
    }
  }

  private static void assertField(String field, GuestSpec spec) {
    InvalidConfigException e = assertThrows(InvalidConfigException.class, () -> Guest.validate(spec), field);
    assertEquals(field, e.field(), e.getMessage());
  }

  private static long stepsIn(GuestState state) {
    long steps = 0;
    for (VcpuState v : state.getVcpusList()) {
      steps += v.getStep();
    }
    return steps;
  }
}
