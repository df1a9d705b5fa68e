package dev.ferry.engine.guest;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * Which pages the guest wrote since the last fetch, like KVM's dirty log: one bit per page,
 * set by every guest write, fetched-and-cleared once per pre-copy round.
 *
 * <p>Ordering: a writer changes the page first and sets the bit after, with an atomic OR; the
 * engine clears a word atomically first and reads the pages after. So a write the engine's read
 * missed always leaves its bit set for the next round.
 */
public final class DirtyLog {
  private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);
  private final long[] words;
  private final int pageCount;

  public DirtyLog(int pageCount) {
    if (pageCount <= 0) {
      throw new IllegalArgumentException("pageCount must be positive: " + pageCount);
    }
    this.pageCount = pageCount;
    this.words = new long[PageBitmap.wordsFor(pageCount)];
  }

  public int pageCount() {
    return pageCount;
  }

  /** Marks {@code page} dirty; called after the write. */
  public void mark(int page) {
    if (page < 0 || page >= pageCount) {
      throw new IndexOutOfBoundsException("page " + page + " of " + pageCount);
    }
    WORDS.getAndBitwiseOr(words, page >>> 6, 1L << page);
  }

  /** Moves every dirty bit into {@code into} (which it overwrites) and clears the log; returns the count. */
  public int fetchAndClear(PageBitmap into) {
    if (into.pageCount() != pageCount) {
      throw new IllegalArgumentException("bitmap of " + into.pageCount() + " pages for a log of " + pageCount);
    }
    int dirty = 0;
    long[] out = into.words();
    for (int i = 0; i < words.length; i++) {
      long w = (long) WORDS.getAndSet(words, i, 0L);
      out[i] = w;
      dirty += Long.bitCount(w);
    }
    return dirty;
  }

  /** Pages currently marked (a racy count, for statistics). */
  public int countDirty() {
    int dirty = 0;
    for (int i = 0; i < words.length; i++) {
      dirty += Long.bitCount((long) WORDS.getVolatile(words, i));
    }
    return dirty;
  }

  /** Clears the log without reading it. */
  public void clear() {
    for (int i = 0; i < words.length; i++) {
      WORDS.setVolatile(words, i, 0L);
    }
  }
}
