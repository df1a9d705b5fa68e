package dev.ferry.engine.guest;

import static dev.ferry.engine.guest.GuestMemory.PAGE_BYTES;
import static dev.ferry.engine.guest.TestGuests.MIB;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.ferry.common.InvalidConfigException;
import dev.ferry.proto.ContentMix;
import dev.ferry.proto.WorkloadSpec;
import java.util.EnumMap;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Workload validation and the distribution of the pages and contents its steps choose. */
class WorkloadTest {
  private static final long MEMORY_BYTES = 16 * MIB;
  private static final int SAMPLES = 200_000;

  @Test
  void contentMixMustSumToHundred() {
    assertField("workload.content", base().setContent(TestGuests.mix(30, 40, 29)));
    assertField("workload.content", base().setContent(TestGuests.mix(50, 50, 1)));
    assertField("workload.content", base().setContent(ContentMix.getDefaultInstance()));
    assertField("workload.content", base().clearContent());
    assertField("workload.content.zero_percent", base().setContent(TestGuests.mix(101, 0, 0)));
    assertField("workload.content.random_percent", base().setContent(TestGuests.mix(0, 0, -1)));
    Workload.from(base().setContent(TestGuests.mix(0, 0, 100)).build(), MEMORY_BYTES);
  }

  @Test
  void workingSetMustLieInsideMemory() {
    assertField("workload.working_set_offset_bytes", base().setWorkingSetOffsetBytes(MEMORY_BYTES));
    assertField("workload.working_set_offset_bytes", base().setWorkingSetOffsetBytes(-PAGE_BYTES));
    assertField("workload.working_set_bytes", base().setWorkingSetBytes(MEMORY_BYTES + PAGE_BYTES));
    assertField("workload.working_set_bytes",
        base().setWorkingSetOffsetBytes(PAGE_BYTES).setWorkingSetBytes(MEMORY_BYTES));
    assertField("workload.working_set_bytes", base().setWorkingSetBytes(PAGE_BYTES + 1));
    assertField("workload.working_set_bytes", base().setWorkingSetOffsetBytes(1));
    Workload.from(base().setWorkingSetOffsetBytes(MEMORY_BYTES - PAGE_BYTES).build(), MEMORY_BYTES);
    Workload.from(base().setWorkingSetBytes(MEMORY_BYTES).build(), MEMORY_BYTES);
  }

  @Test
  void ratesAndPercentagesAreBounded() {
    assertField("workload.dirty_rate_bytes_per_s",
        base().setDirtyRateBytesPerS(Workload.DIRTY_RATE_BYTES_PER_S_MAX + 1));
    assertField("workload.dirty_rate_bytes_per_s", base().setDirtyRateBytesPerS(Long.MIN_VALUE));
    Workload.from(base().setDirtyRateBytesPerS(Workload.DIRTY_RATE_BYTES_PER_S_MAX).build(), MEMORY_BYTES);
    assertField("workload.hot_set_percent", base().setHotSetPercent(101));
    assertField("workload.hot_access_percent", base().setHotAccessPercent(101));
  }

  @Test
  void namedMixesSumToHundredAndUnknownNamesAreRejected() {
    for (String name : new String[] {"zero", "text", "random", "mixed"}) {
      ContentMix mix = Workload.namedMix(name);
      assertEquals(100, mix.getZeroPercent() + mix.getTextPercent() + mix.getRandomPercent(), name);
      Workload.from(base().setContent(mix).build(), MEMORY_BYTES);
    }
    InvalidConfigException e = assertThrows(InvalidConfigException.class, () -> Workload.namedMix("bogus"));
    assertEquals("content", e.field());
    assertTrue(e.getMessage().contains("bogus"), e.getMessage());
  }

  @Test
  void hotSetTakesItsShareOfTheWrites() {
    // 20 % of the working set [256, 1280) takes 80 % of the writes.
    Workload workload = Workload.from(base().setWorkingSetOffsetBytes(MIB).setWorkingSetBytes(4 * MIB)
        .setHotSetPercent(20).setHotAccessPercent(80).build(), MEMORY_BYTES);
    int first = 256;
    int pages = 1024;
    int hotPages = pages * 20 / 100;
    Xoshiro256 rng = new Xoshiro256(42);
    int hot = 0;
    int[] perPage = new int[pages];
    for (int i = 0; i < SAMPLES; i++) {
      int page = workload.choosePage(rng);
      if (page < first || page >= first + pages) {
        fail("sample " + i + ": page " + page + " is outside the working set");
      }
      perPage[page - first]++;
      hot += page < first + hotPages ? 1 : 0;
    }
    double hotShare = hot / (double) SAMPLES;
    assertTrue(hotShare > 0.70 && hotShare < 0.90, "hot share " + hotShare);
    assertTrue(Math.abs(hotShare - 0.80) < 0.01, "hot share " + hotShare + " with seed 42");
    for (int page = 0; page < pages; page++) {
      assertTrue(perPage[page] > 0, "page " + (first + page) + " of the working set is never written");
    }
  }

  @Test
  void withoutAHotSetWritesAreUniform() {
    for (int hotSet : new int[] {0, 100}) {
      Workload workload = Workload.from(base().setHotSetPercent(hotSet).setHotAccessPercent(95).build(),
          MEMORY_BYTES);
      Xoshiro256 rng = new Xoshiro256(hotSet + 1);
      int low = 0;
      for (int i = 0; i < SAMPLES; i++) {
        low += workload.choosePage(rng) < 4096 / 5 ? 1 : 0;
      }
      double share = low / (double) SAMPLES;
      assertTrue(Math.abs(share - 0.20) < 0.01, "hot set " + hotSet + " %: first fifth got " + share);
    }
  }

  @Test
  void choosePageStaysInsideAnyValidWorkingSet() {
    int pagesTotal = (int) (MEMORY_BYTES / PAGE_BYTES);
    for (long seed = 0; seed < 300; seed++) {
      SplittableRandom random = new SplittableRandom(seed);
      int pages = 1 + random.nextInt(pagesTotal);
      int first = random.nextInt(pagesTotal - pages + 1);
      WorkloadSpec spec = base().setWorkingSetOffsetBytes((long) first * PAGE_BYTES)
          .setWorkingSetBytes((long) pages * PAGE_BYTES)
          .setHotSetPercent(random.nextInt(101)).setHotAccessPercent(random.nextInt(101)).build();
      Workload workload = Workload.from(spec, MEMORY_BYTES);
      Xoshiro256 rng = new Xoshiro256(seed);
      for (int i = 0; i < 2_000; i++) {
        int page = workload.choosePage(rng);
        if (page < first || page >= first + pages) {
          fail("seed " + seed + ": page " + page + " outside [" + first + ", " + (first + pages) + ") for " + spec);
        }
      }
    }
  }

  @Test
  void contentFollowsTheMix() {
    Workload workload = Workload.from(base().setContent(Workload.namedMix("mixed")).build(), MEMORY_BYTES);
    Xoshiro256 rng = new Xoshiro256(5);
    EnumMap<PageKind, Integer> counts = new EnumMap<>(PageKind.class);
    for (int i = 0; i < SAMPLES; i++) {
      counts.merge(workload.chooseContent(rng), 1, Integer::sum);
    }
    assertShare(counts, PageKind.ZERO, 0.30);
    assertShare(counts, PageKind.TEXT, 0.40);
    assertShare(counts, PageKind.RANDOM, 0.30);
    Workload onlyText = Workload.from(base().setContent(Workload.namedMix("text")).build(), MEMORY_BYTES);
    for (int i = 0; i < 1_000; i++) {
      assertEquals(PageKind.TEXT, onlyText.chooseContent(rng));
    }
  }

  @Test
  void generatorStateReplaysTheSameSequence() {
    Xoshiro256 a = new Xoshiro256(99);
    for (int i = 0; i < 10; i++) {
      a.nextLong();
    }
    long[] state = a.state();
    Xoshiro256 b = new Xoshiro256(state[0], state[1], state[2], state[3]);
    Xoshiro256 c = a.copy();
    for (int i = 0; i < 1_000; i++) {
      long next = a.nextLong();
      assertEquals(next, b.nextLong(), "step " + i);
      assertEquals(next, c.nextLong(), "step " + i);
    }
    assertArrayEquals(a.state(), b.state());
    assertThrows(IllegalArgumentException.class, () -> new Xoshiro256(0, 0, 0, 0));
    for (int bound : new int[] {1, 2, 3, 100, Integer.MAX_VALUE}) {
      for (int i = 0; i < 1_000; i++) {
        int value = a.nextInt(bound);
        assertTrue(value >= 0 && value < bound, value + " for bound " + bound);
      }
    }
  }

  private static void assertShare(EnumMap<PageKind, Integer> counts, PageKind kind, double expected) {
    double share = counts.getOrDefault(kind, 0) / (double) SAMPLES;
    assertTrue(Math.abs(share - expected) < 0.01, kind + ": " + share + " instead of " + expected);
  }

  private static WorkloadSpec.Builder base() {
    return TestGuests.workload(MIB, 1);
  }

  private static void assertField(String field, WorkloadSpec.Builder spec) {
    InvalidConfigException e = assertThrows(InvalidConfigException.class,
        () -> Workload.from(spec.build(), MEMORY_BYTES), field);
    assertEquals(field, e.field(), e.getMessage());
  }
}
