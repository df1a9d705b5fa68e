package dev.ferry.engine.guest;

import static dev.ferry.engine.guest.TestGuests.MIB;
import static dev.ferry.engine.guest.TestGuests.assertSameMemory;
import static dev.ferry.engine.guest.TestGuests.firstDifferentPage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.engine.clock.Clock;
import dev.ferry.common.InvalidConfigException;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.GuestState;
import dev.ferry.proto.VcpuState;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A guest's memory plus its saved vCPU state is its whole future: a copy restored from them
 * writes exactly what the original writes. That is what makes a migrated guest the same guest.
 */
class GuestDeterminismTest {
  private static final int VCPUS = 3;
  private static final long STEPS_BEFORE = 700;
  private static final long STEPS_AFTER = 2_000;

  private final List<Guest> guests = new ArrayList<>();

  @AfterEach
  void destroyGuests() {
    for (Guest guest : guests) {
      guest.destroy();
      assertTrue(guest.memory().isFreed(), guest.name());
    }
  }

  private Guest manual(GuestSpec spec, boolean filled) {
    Guest guest = Guest.manual(spec, Clock.SYSTEM, filled);
    guests.add(guest);
    return guest;
  }

  private static GuestSpec spec(long seed) {
    return TestGuests.spec("det-" + seed, 16 * MIB, VCPUS, 64 * MIB, seed);
  }

  @Test
  void aCopyRestoredFromMemoryAndStateContinuesIdentically() {
    for (long seed = 1; seed <= 3; seed++) {
      GuestSpec spec = spec(seed);
      Guest a = manual(spec, true);
      a.runSteps(STEPS_BEFORE);
      a.pause();
      assertEquals(STEPS_BEFORE * VCPUS, a.steps(), "seed " + seed);
      GuestState saved = a.saveState();
      byte[] atPause = MemoryDigest.of(a.memory());
      a.dirtyLog().clear();

      Guest b = manual(spec, false);
      assertEquals(Guest.State.PAUSED, b.state(), "an unfilled manual guest starts paused");
      copyMemory(a, b);
      b.restoreState(saved);
      assertEquals(saved, b.saveState(), "seed " + seed);
      assertEquals(a.steps(), b.steps(), "seed " + seed);

      a.resume();
      b.resume();
      a.runSteps(STEPS_AFTER);
      b.runSteps(STEPS_AFTER);
      a.pause();
      b.pause();

      assertEquals(a.saveState(), b.saveState(), "seed " + seed + ": vCPU states after the same steps");
      assertSameMemory(a.memory(), b.memory(), "seed " + seed);
      assertDirtyLogsEqual(a, b, seed);
      assertFalse(Arrays.equals(atPause, MemoryDigest.of(a.memory())),
          "seed " + seed + ": the continuation must have changed memory, or the comparison proves nothing");
    }
  }

  @Test
  void aRestoredGeneratorThatDiffersWritesDifferentMemory() {
    GuestSpec spec = spec(7);
    Guest a = manual(spec, true);
    a.runSteps(STEPS_BEFORE);
    a.pause();
    GuestState saved = a.saveState();

    Guest b = manual(spec, false);
    copyMemory(a, b);
    b.restoreState(mutateVcpu(saved, 1, v -> v.toBuilder().setRngS0(v.getRngS0() ^ 1).build()));
    a.resume();
    b.resume();
    a.runSteps(STEPS_AFTER);
    b.runSteps(STEPS_AFTER);
    a.pause();
    b.pause();
    assertTrue(firstDifferentPage(a.memory(), b.memory()) >= 0,
        "a vCPU whose generator differs must write different pages or content");
    assertNotEquals(a.saveState(), b.saveState());
  }

  @Test
  void aRestoredStepCounterThatDiffersShowsInTheStateButNotInMemory() {
    // The step counter is bookkeeping: the generator alone chooses what each step writes.
    GuestSpec spec = spec(8);
    Guest a = manual(spec, true);
    a.runSteps(STEPS_BEFORE);
    a.pause();
    GuestState saved = a.saveState();

    Guest b = manual(spec, false);
    copyMemory(a, b);
    b.restoreState(mutateVcpu(saved, 0, v -> v.toBuilder().setStep(v.getStep() + 1).build()));
    a.resume();
    b.resume();
    a.runSteps(STEPS_AFTER);
    b.runSteps(STEPS_AFTER);
    a.pause();
    b.pause();
    assertNotEquals(a.saveState(), b.saveState());
    assertEquals(a.steps() + 1, b.steps());
    assertSameMemory(a.memory(), b.memory(), "same generators");
  }

  @Test
  void aPausedManualGuestRunsNoSteps() {
    Guest a = manual(spec(9), true);
    a.pause();
    byte[] before = MemoryDigest.of(a.memory());
    a.runSteps(100);
    assertEquals(0, a.steps());
    assertArrayEquals(before, MemoryDigest.of(a.memory()));
    assertEquals(0, a.dirtyLog().countDirty());
    a.resume();
    a.runSteps(1);
    assertEquals(VCPUS, a.steps());
  }

  @Test
  void aFilledGuestDependsOnlyOnItsSpec() {
    Guest a = manual(spec(11), true);
    Guest b = manual(spec(11), true);
    Guest c = manual(spec(12), true);
    assertSameMemory(a.memory(), b.memory(), "same seed");
    assertTrue(firstDifferentPage(a.memory(), c.memory()) >= 0, "different seeds fill differently");
  }

  @Test
  void restoreStateRejectsForeignStatesNamingTheField() {
    Guest a = manual(spec(13), true);
    a.runSteps(10);
    a.pause();
    GuestState good = a.saveState();

    InvalidConfigException e = assertThrows(InvalidConfigException.class,
        () -> a.restoreState(good.toBuilder().setFormatVersion(Guest.STATE_FORMAT_VERSION + 1).build()));
    assertEquals("device_state.state.format_version", e.field());

    e = assertThrows(InvalidConfigException.class, () -> a.restoreState(good.toBuilder().removeVcpus(2).build()));
    assertEquals("device_state.state.vcpus", e.field());
    assertTrue(e.getMessage().contains("has 2 vCPUs"), e.getMessage());

    e = assertThrows(InvalidConfigException.class,
        () -> a.restoreState(good.toBuilder().addVcpus(good.getVcpus(0).toBuilder().setIndex(3)).build()));
    assertEquals("device_state.state.vcpus", e.field());

    e = assertThrows(InvalidConfigException.class, () -> a.restoreState(mutateVcpu(good, 2,
        v -> v.toBuilder().setRngS0(0).setRngS1(0).setRngS2(0).setRngS3(0).build())));
    assertEquals("device_state.state.vcpus[2]", e.field());

    e = assertThrows(InvalidConfigException.class,
        () -> a.restoreState(mutateVcpu(good, 1, v -> v.toBuilder().setIndex(0).build())));
    assertEquals("device_state.state.vcpus[1]", e.field());

    // Validated before anything changes: vCPU 0 of a state whose vCPU 2 is bad is not applied.
    GuestState half = mutateVcpu(mutateVcpu(good, 0, v -> v.toBuilder().setStep(999).build()), 2,
        v -> v.toBuilder().setIndex(7).build());
    assertThrows(InvalidConfigException.class, () -> a.restoreState(half));
    assertEquals(good, a.saveState());
  }

  @Test
  void stateIsSavedAndRestoredOnlyWhilePaused() {
    Guest a = manual(spec(14), true);
    assertEquals(Guest.State.RUNNING, a.state());
    assertThrows(IllegalStateException.class, a::saveState);
    a.pause();
    GuestState saved = a.saveState();
    a.resume();
    assertThrows(IllegalStateException.class, () -> a.restoreState(saved));
    assertThrows(IllegalStateException.class, a::startSnapshotDigest);
  }

  private static void copyMemory(Guest from, Guest to) {
    for (int page = 0; page < from.memory().pageCount(); page++) {
      to.memory().writePage(page, from.memory().pageView(page));
    }
  }

  private static GuestState mutateVcpu(GuestState state, int index, UnaryOperator<VcpuState> change) {
    return state.toBuilder().setVcpus(index, change.apply(state.getVcpus(index))).build();
  }

  private static void assertDirtyLogsEqual(Guest a, Guest b, long seed) {
    PageBitmap dirtyA = new PageBitmap(a.memory().pageCount());
    PageBitmap dirtyB = new PageBitmap(b.memory().pageCount());
    int countA = a.dirtyLog().fetchAndClear(dirtyA);
    assertEquals(countA, b.dirtyLog().fetchAndClear(dirtyB), "seed " + seed);
    assertTrue(countA > 0, "seed " + seed);
    for (int page = 0; page < dirtyA.pageCount(); page++) {
      assertEquals(dirtyA.get(page), dirtyB.get(page), "seed " + seed + ": dirty bit of page " + page);
    }
  }
}
