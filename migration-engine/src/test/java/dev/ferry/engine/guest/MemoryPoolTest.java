package dev.ferry.engine.guest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;

/** Departed guests' memory comes back zeroed, only in its own size, and never beyond the pool's bound. */
class MemoryPoolTest {
  private static final long SIZE = 16L << 20;

  @Test
  void releasedMemoryIsScrubbedAndReusedForTheSameSize() {
    try (MemoryPool pool = new MemoryPool(64L << 20)) {
      GuestMemory first = GuestMemory.allocate(SIZE, pool);
      assertTrue(first.isFresh());
      for (int p = 0; p < first.pageCount(); p += 7) {
        ByteBuffer page = first.pageView(p);
        page.putLong(0, 0xDEADBEEFL + p);
        page.putLong(4088, p);
      }
      first.release();
      awaitReady(pool, SIZE);

      GuestMemory second = GuestMemory.allocate(SIZE, pool);
      assertFalse(second.isFresh(), "the scrubbed region is reused");
      for (int p = 0; p < second.pageCount(); p++) {
        assertTrue(second.isZeroPage(p), "page " + p + " must be zero after scrubbing");
      }
      assertEquals(0, pool.pooledBytes());
      GuestMemory other = GuestMemory.allocate(SIZE * 2, pool);
      assertTrue(other.isFresh(), "no region of that size: fresh memory");
      second.release();
      other.release();
    }
  }

  @Test
  void thePoolNeverHoldsMoreThanItsCapacity() {
    try (MemoryPool pool = new MemoryPool(SIZE)) {
      GuestMemory a = GuestMemory.allocate(SIZE, pool);
      GuestMemory b = GuestMemory.allocate(SIZE, pool);
      a.release();
      b.release();
      assertEquals(SIZE, pool.pooledBytes(), "the second region goes back to the kernel");
    }
    try (MemoryPool none = new MemoryPool(0)) {
      GuestMemory m = GuestMemory.allocate(SIZE, none);
      m.release();
      assertEquals(0, none.pooledBytes());
    }
  }

  private static void awaitReady(MemoryPool pool, long bytes) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (pool.readyBytes() < bytes) {
      assertTrue(System.nanoTime() < deadline, "scrubbing did not finish");
      LockSupport.parkNanos(1_000_000);
    }
  }
}
