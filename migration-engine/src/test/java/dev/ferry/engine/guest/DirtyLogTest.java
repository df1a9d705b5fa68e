package dev.ferry.engine.guest;

import static dev.ferry.engine.guest.GuestMemory.PAGE_BYTES;
import static dev.ferry.engine.guest.TestGuests.MIB;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The dirty log and the page bitmap, alone and under a concurrent writer. */
class DirtyLogTest {

  @Test
  void markFetchAndClearMovesEachDirtyPageOnce() {
    DirtyLog log = new DirtyLog(100);
    assertEquals(100, log.pageCount());
    for (int page : new int[] {0, 63, 64, 99, 63, 0}) {
      log.mark(page);
    }
    assertEquals(4, log.countDirty(), "marking a page twice counts once");
    PageBitmap bitmap = new PageBitmap(100);
    assertEquals(4, log.fetchAndClear(bitmap));
    assertEquals(List.of(0, 63, 64, 99), pages(bitmap));
    assertEquals(0, log.countDirty(), "fetching clears the log");

    bitmap.setAll();
    assertEquals(0, log.fetchAndClear(bitmap));
    assertEquals(0, bitmap.count(), "fetchAndClear overwrites the bitmap rather than adding to it");

    log.mark(5);
    log.mark(70);
    log.clear();
    assertEquals(0, log.countDirty());
    assertEquals(0, log.fetchAndClear(bitmap));
  }

  @Test
  void dirtyLogRejectsBadPagesAndMismatchedBitmaps() {
    assertThrows(IllegalArgumentException.class, () -> new DirtyLog(0));
    DirtyLog log = new DirtyLog(100);
    assertThrows(IndexOutOfBoundsException.class, () -> log.mark(-1));
    assertThrows(IndexOutOfBoundsException.class, () -> log.mark(100));
    assertThrows(IndexOutOfBoundsException.class, () -> log.mark(128), "inside the last word but past the end");
    assertEquals(0, log.countDirty(), "a rejected mark sets nothing");
    assertThrows(IllegalArgumentException.class, () -> log.fetchAndClear(new PageBitmap(128)));
  }

  @Test
  void setAllMarksExactlyThePagesThatExist() {
    for (int pages : new int[] {1, 63, 64, 65, 100, 128, 4095}) {
      PageBitmap bitmap = new PageBitmap(pages);
      bitmap.setAll();
      assertEquals(pages, bitmap.count(), pages + " pages");
      assertEquals(0, bitmap.nextSet(0));
      assertEquals(pages - 1, bitmap.nextSet(pages - 1));
      assertEquals(-1, bitmap.nextSet(pages), pages + " pages: nothing past the end");
      bitmap.clear(pages - 1);
      assertEquals(-1, bitmap.nextSet(pages - 1), pages + " pages: the tail word holds no phantom pages");
      assertEquals(pages - 1, bitmap.count());
      bitmap.clearAll();
      assertEquals(0, bitmap.count());
      assertEquals(-1, bitmap.nextSet(0));
    }
  }

  @Test
  void nextSetWalksTheSetPagesInOrder() {
    for (int seed = 0; seed < 50; seed++) {
      SplittableRandom random = new SplittableRandom(seed);
      int pages = 1 + random.nextInt(1000);
      PageBitmap bitmap = new PageBitmap(pages);
      TreeSet<Integer> expected = new TreeSet<>();
      int sets = random.nextInt(pages + 1);
      for (int i = 0; i < sets; i++) {
        int page = random.nextInt(pages);
        bitmap.set(page);
        expected.add(page);
      }
      assertEquals(new ArrayList<>(expected), pages(bitmap), "seed " + seed + ": " + pages + " pages");
      assertEquals(expected.size(), bitmap.count(), "seed " + seed);
      int from = random.nextInt(pages);
      Integer ceiling = expected.ceiling(from);
      assertEquals(ceiling == null ? -1 : ceiling, bitmap.nextSet(from), "seed " + seed + ": nextSet(" + from + ")");
      for (int page = 0; page < pages; page++) {
        assertEquals(expected.contains(page), bitmap.get(page), "seed " + seed + ": page " + page);
      }
    }
  }

  @Test
  void orAddsEveryPageOfTheOther() {
    PageBitmap a = new PageBitmap(130);
    PageBitmap b = new PageBitmap(130);
    a.set(1);
    a.set(64);
    b.set(64);
    b.set(129);
    a.or(b);
    assertEquals(List.of(1, 64, 129), pages(a));
    assertEquals(List.of(64, 129), pages(b), "the argument is unchanged");
    assertThrows(IllegalArgumentException.class, () -> a.or(new PageBitmap(129)));
  }

  /**
   * A writer writes a page then marks it; the "engine" fetches the log and copies the marked
   * pages into a mirror while the writer runs. After a final fetch, the mirror must equal memory:
   * no write is lost between the page write and the fetch.
   */
  @Test
  @Timeout(value = 60, unit = TimeUnit.SECONDS)
  void concurrentWritesAreNeverLostBetweenFetches() throws InterruptedException {
    for (long seed = 1; seed <= 3; seed++) {
      mirrorWhileWriting(seed);
    }
  }

  private static void mirrorWhileWriting(long seed) throws InterruptedException {
    GuestMemory memory = GuestMemory.allocate(16 * MIB);
    try {
      int pages = memory.pageCount();
      DirtyLog log = new DirtyLog(pages);
      ByteBuffer mirror = ByteBuffer.allocateDirect((int) memory.sizeBytes());
      AtomicBoolean stop = new AtomicBoolean();
      AtomicReference<Throwable> writerFailure = new AtomicReference<>();
      long writesMin = 200_000;
      long[] writes = new long[1];
      Thread writer = new Thread(() -> {
        SplittableRandom random = new SplittableRandom(seed);
        try {
          long counter = 0;
          // A small hot region makes the writer rewrite pages while the engine copies them.
          while (!stop.get() || counter < writesMin) {
            int page = random.nextInt(8) == 0 ? random.nextInt(pages) : random.nextInt(64);
            ByteBuffer view = memory.pageView(page);
            counter++;
            for (int at = 0; at < PAGE_BYTES; at += 512) {
              view.putLong(at + (int) (counter & 63) * 8, counter);
            }
            log.mark(page);
          }
          writes[0] = counter;
        } catch (Throwable t) {
          writerFailure.set(t);
        }
      }, "dirty-writer-" + seed);
      writer.start();
      PageBitmap round = new PageBitmap(pages);
      int rounds = 0;
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (writer.isAlive()) {
        copyDirty(log, round, memory, mirror);
        rounds++;
        if (rounds >= 200) {
          stop.set(true);
        }
        if (System.nanoTime() - deadline > 0) {
          stop.set(true);
          fail("seed " + seed + ": the writer did not finish in time");
        }
      }
      writer.join();
      if (writerFailure.get() != null) {
        throw new AssertionError("seed " + seed + ": writer failed", writerFailure.get());
      }
      copyDirty(log, round, memory, mirror);
      assertEquals(0, log.countDirty(), "seed " + seed);
      for (int page = 0; page < pages; page++) {
        if (!memory.pageView(page).equals(mirror.slice(page * PAGE_BYTES, PAGE_BYTES))) {
          fail("seed " + seed + ": mirror of page " + page + " is stale after " + rounds + " rounds and "
              + writes[0] + " writes");
        }
      }
      assertTrue(writes[0] >= writesMin, "seed " + seed);
      assertFalse(memory.isZeroPage(0) && memory.isZeroPage(63), "seed " + seed + ": the writer wrote");
    } finally {
      memory.release();
    }
  }

  private static void copyDirty(DirtyLog log, PageBitmap round, GuestMemory memory, ByteBuffer mirror) {
    log.fetchAndClear(round);
    for (int page = round.nextSet(0); page >= 0; page = round.nextSet(page + 1)) {
      mirror.put(page * PAGE_BYTES, memory.pageView(page), 0, PAGE_BYTES);
    }
  }

  private static List<Integer> pages(PageBitmap bitmap) {
    List<Integer> pages = new ArrayList<>();
    for (int page = bitmap.nextSet(0); page >= 0; page = bitmap.nextSet(page + 1)) {
      pages.add(page);
    }
    return pages;
  }
}
