package dev.ferry.bench.jmh;

import dev.ferry.engine.guest.DirtyLog;
import dev.ferry.engine.guest.PageBitmap;
import dev.ferry.engine.guest.Xoshiro256;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The dirty log of a 1 GiB guest (262144 pages): a vCPU marking a page, the engine fetching and
 * clearing the whole log once per round, and the engine walking the fetched bitmap.
 */
public class DirtyLogBenchmark extends FerryBenchmark {
  static final int PAGES = (int) ((1L << 30) >>> 12);

  /** Pages chosen with probability {@code percent}/100 each, in ascending order. */
  static int[] randomPages(int percent, long seed) {
    Xoshiro256 rng = new Xoshiro256(seed);
    int[] chosen = new int[PAGES];
    int n = 0;
    for (int p = 0; p < PAGES; p++) {
      if (rng.nextInt(100) < percent) {
        chosen[n++] = p;
      }
    }
    return java.util.Arrays.copyOf(chosen, n);
  }

  @State(Scope.Thread)
  public static class Marking {
    static final int MASK = (1 << 16) - 1;
    DirtyLog log;
    int[] pages;
    int cursor;

    @Setup(Level.Trial)
    public void setUp() {
      FerryJvm.check();
      log = new DirtyLog(PAGES);
      pages = new int[MASK + 1];
      Xoshiro256 rng = new Xoshiro256(31);
      for (int i = 0; i < pages.length; i++) {
        pages[i] = rng.nextInt(PAGES);
      }
    }
  }

  /** One atomic OR into the log (the pages are drawn beforehand, uniformly over 1 GiB). */
  @Benchmark
  public void mark(Marking s) {
    s.log.mark(s.pages[s.cursor++ & Marking.MASK]);
  }

  @State(Scope.Thread)
  public static class Fetching {
    @Param({"1", "50"})
    public int dirtyPercent;

    DirtyLog log;
    PageBitmap into;
    int[] dirtyPages;
    int lastCount;

    @Setup(Level.Trial)
    public void setUp() {
      FerryJvm.check();
      log = new DirtyLog(PAGES);
      into = new PageBitmap(PAGES);
      dirtyPages = randomPages(dirtyPercent, 41);
    }

    /** Untimed: dirties the log again before every fetch (an invocation takes tens of us, so the timer's cost is small). */
    @Setup(Level.Invocation)
    public void dirty() {
      for (int p : dirtyPages) {
        log.mark(p);
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      if (lastCount != dirtyPages.length) {
        throw new IllegalStateException("fetched " + lastCount + " dirty pages, marked " + dirtyPages.length);
      }
    }
  }

  @Benchmark
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public int fetchAndClear(Fetching s) {
    return s.lastCount = s.log.fetchAndClear(s.into);
  }

  @State(Scope.Thread)
  public static class Iterating {
    @Param({"1", "50", "100"})
    public int dirtyPercent;

    PageBitmap bitmap;
    int expected;

    @Setup(Level.Trial)
    public void setUp() {
      FerryJvm.check();
      bitmap = new PageBitmap(PAGES);
      for (int p : randomPages(dirtyPercent, 43)) {
        bitmap.set(p);
      }
      expected = bitmap.count();
    }
  }

  /** Visits every set page of the bitmap with nextSet, as a round's sender does. */
  @Benchmark
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public int iterateNextSet(Iterating s) {
    PageBitmap b = s.bitmap;
    int visited = 0;
    for (int p = b.nextSet(0); p >= 0; p = b.nextSet(p + 1)) {
      visited++;
    }
    return visited;
  }
}
