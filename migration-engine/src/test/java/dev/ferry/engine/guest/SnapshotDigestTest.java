package dev.ferry.engine.guest;

import static dev.ferry.engine.guest.GuestMemory.PAGE_BYTES;
import static dev.ferry.engine.guest.TestGuests.MIB;
import static dev.ferry.engine.guest.TestGuests.WAIT_MILLIS_MAX;
import static dev.ferry.engine.guest.TestGuests.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.engine.clock.Clock;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The digest of memory at one instant, taken while the guest keeps writing. */
class SnapshotDigestTest {

  @Test
  @Timeout(value = 30, unit = TimeUnit.SECONDS)
  void snapshotDigestOfARunningGuestIsTheDigestAtThePause() throws Exception {
    Guest guest = Guest.boot(TestGuests.spec("snapshot", 16 * MIB, 2, 64 * MIB, 21), Clock.SYSTEM);
    try {
      await("the first steps", WAIT_MILLIS_MAX, () -> guest.steps() > 0);
      guest.pause();
      byte[] expected = MemoryDigest.of(guest.memory());
      long pausedSteps = guest.steps();
      CompletableFuture<byte[]> snapshot = guest.startSnapshotDigest();
      guest.resume();
      byte[] digest = snapshot.get(WAIT_MILLIS_MAX, TimeUnit.MILLISECONDS);
      assertArrayEquals(expected, digest, "the digest must describe memory as it was at the pause");
      await("steps after resume", WAIT_MILLIS_MAX, () -> guest.steps() > pausedSteps + 64);
      guest.pause();
      assertFalse(Arrays.equals(expected, MemoryDigest.of(guest.memory())),
          "the guest wrote since the pause, so a digest now must differ");
    } finally {
      guest.destroy();
    }
    assertTrue(guest.memory().isFreed(), "the digest thread gave its memory reference back");
  }

  @Test
  @Timeout(value = 30, unit = TimeUnit.SECONDS)
  void writesRacingTheDigesterArePreservedFirst() throws Exception {
    // Manual vCPUs run on this thread while the digest thread reads: many writes race it.
    for (long seed = 1; seed <= 3; seed++) {
      Guest guest = Guest.manual(TestGuests.spec("race-" + seed, 16 * MIB, 2, 64 * MIB, seed), Clock.SYSTEM, true);
      try {
        guest.pause();
        byte[] expected = MemoryDigest.of(guest.memory());
        CompletableFuture<byte[]> snapshot = guest.startSnapshotDigest();
        guest.resume();
        while (!snapshot.isDone()) {
          guest.runSteps(16);
        }
        guest.runSteps(16);
        assertArrayEquals(expected, snapshot.get(WAIT_MILLIS_MAX, TimeUnit.MILLISECONDS), "seed " + seed);
        assertFalse(Arrays.equals(expected, MemoryDigest.of(guest.memory())), "seed " + seed);
      } finally {
        guest.destroy();
      }
    }
  }

  @Test
  void pagesWrittenBeforeTheDigesterReachesThemAreDigestedAsTheyWere() {
    Guest guest = Guest.manual(TestGuests.spec("cow", 16 * MIB, 2, 64 * MIB, 5), Clock.SYSTEM, true);
    try {
      byte[] expected = MemoryDigest.of(guest.memory());
      SnapshotDigest digest = new SnapshotDigest(guest.memory());
      guest.memory().installSnapshot(digest);
      guest.runSteps(2_000); // every write goes through beforeWrite: copied aside first
      guest.memory().zeroPage(guest.memory().pageCount() - 1);
      assertFalse(Arrays.equals(expected, MemoryDigest.of(guest.memory())));
      digest.run();
      assertArrayEquals(expected, digest.result().join());
    } finally {
      guest.destroy();
    }
  }

  @Test
  void aDigestIsAbandonedRatherThanWrongWhenTooManyPagesAreRewritten() {
    int pagesMax = (int) (SnapshotDigest.PRESERVED_BYTES_MAX / PAGE_BYTES);
    GuestMemory memory = GuestMemory.allocate(SnapshotDigest.PRESERVED_BYTES_MAX + 16 * MIB);
    try {
      SnapshotDigest digest = new SnapshotDigest(memory);
      memory.installSnapshot(digest);
      for (int page = 0; page <= pagesMax; page++) {
        memory.zeroPage(page);
      }
      digest.run();
      ExecutionException e = assertThrows(ExecutionException.class, () -> digest.result().get());
      assertInstanceOf(IllegalStateException.class, e.getCause());
      assertTrue(e.getCause().getMessage().contains("abandoned"), e.getCause().getMessage());
    } finally {
      memory.release();
    }
  }

  @Test
  void memoryDigestChangesWithOneByteAndDependsOnSize() {
    GuestMemory a = GuestMemory.allocate(16 * MIB);
    GuestMemory b = GuestMemory.allocate(32 * MIB);
    try {
      byte[] zero = MemoryDigest.of(a);
      assertEquals(32, zero.length);
      assertArrayEquals(zero, MemoryDigest.of(a), "a digest is a function of memory");
      assertFalse(Arrays.equals(zero, MemoryDigest.of(b)), "sizes differ");
      int[][] places = {{0, 0}, {1234, 77}, {a.pageCount() - 1, PAGE_BYTES - 1}};
      for (int[] place : places) {
        a.pageView(place[0]).put(place[1], (byte) 0x01);
        byte[] changed = MemoryDigest.of(a);
        assertFalse(Arrays.equals(zero, changed), "byte " + place[1] + " of page " + place[0]);
        a.pageView(place[0]).put(place[1], (byte) 0x00);
        assertArrayEquals(zero, MemoryDigest.of(a));
      }
      // Moving content between pages changes the digest too: page order is part of it.
      a.pageView(1).put(0, (byte) 9);
      byte[] onPage1 = MemoryDigest.of(a);
      a.zeroPage(1);
      a.pageView(2).put(0, (byte) 9);
      assertFalse(Arrays.equals(onPage1, MemoryDigest.of(a)));
      assertEquals(64, MemoryDigest.hex(zero).length());
      assertEquals("-", MemoryDigest.hex(new byte[0]));
    } finally {
      a.release();
      b.release();
    }
  }
}
