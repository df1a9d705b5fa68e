package dev.ferry.engine.guest;

import static org.junit.jupiter.api.Assertions.fail;

import dev.ferry.proto.ContentMix;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.WorkloadSpec;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/** Specs, bounded waits and memory comparisons shared by the guest tests. */
final class TestGuests {
  static final long MIB = 1L << 20;
  static final long WAIT_MILLIS_MAX = 10_000;

  private TestGuests() {}

  /** A spec with the "mixed" content and a 20 % hot set taking 80 % of the writes. */
  static GuestSpec spec(String name, long memoryBytes, int vcpus, long dirtyRateBytesPerSecond, long seed) {
    return GuestSpec.newBuilder().setName(name).setMemoryBytes(memoryBytes).setVcpus(vcpus)
        .setWorkload(workload(dirtyRateBytesPerSecond, seed))
        .build();
  }

  static WorkloadSpec.Builder workload(long dirtyRateBytesPerSecond, long seed) {
    return WorkloadSpec.newBuilder().setDirtyRateBytesPerS(dirtyRateBytesPerSecond)
        .setHotSetPercent(20).setHotAccessPercent(80)
        .setContent(Workload.namedMix("mixed"))
        .setSeed(seed);
  }

  static ContentMix mix(int zero, int text, int random) {
    return ContentMix.newBuilder().setZeroPercent(zero).setTextPercent(text).setRandomPercent(random).build();
  }

  /** Waits until {@code condition} holds, failing after {@code millisMax}; never sleeps a fixed time. */
  static void await(String what, long millisMax, BooleanSupplier condition) {
    long deadline = System.nanoTime() + millisMax * 1_000_000L;
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() - deadline > 0) {
        fail("gave up after " + millisMax + " ms waiting for " + what);
      }
      LockSupport.parkNanos(200_000L);
    }
  }

  /** The first page whose bytes differ between two memories of one size, or -1. */
  static int firstDifferentPage(GuestMemory a, GuestMemory b) {
    if (a.pageCount() != b.pageCount()) {
      throw new IllegalArgumentException("memories of " + a.pageCount() + " and " + b.pageCount() + " pages");
    }
    for (int page = 0; page < a.pageCount(); page++) {
      if (!a.pageView(page).equals(b.pageView(page))) {
        return page;
      }
    }
    return -1;
  }

  static void assertSameMemory(GuestMemory expected, GuestMemory actual, String context) {
    int page = firstDifferentPage(expected, actual);
    if (page >= 0) {
      fail(context + ": memories differ first at page " + page);
    }
  }
}
