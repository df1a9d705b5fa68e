package dev.ferry.engine.guest;

/** A plain (single-threaded) set of pages: what a pre-copy round has to send. */
public final class PageBitmap {
  private final long[] words;
  private final int pageCount;

  public PageBitmap(int pageCount) {
    this.pageCount = pageCount;
    this.words = new long[wordsFor(pageCount)];
  }

  static int wordsFor(int pageCount) {
    return (pageCount + 63) >>> 6;
  }

  long[] words() {
    return words;
  }

  public int pageCount() {
    return pageCount;
  }

  public void set(int page) {
    check(page);
    words[page >>> 6] |= 1L << page;
  }

  public void clear(int page) {
    check(page);
    words[page >>> 6] &= ~(1L << page);
  }

  public boolean get(int page) {
    check(page);
    return (words[page >>> 6] & (1L << page)) != 0;
  }

  private void check(int page) {
    if (page < 0 || page >= pageCount) {
      throw new IndexOutOfBoundsException("page " + page + " of " + pageCount);
    }
  }

  public void setAll() {
    java.util.Arrays.fill(words, -1L);
    int tail = pageCount & 63;
    if (tail != 0) {
      words[words.length - 1] = (1L << tail) - 1;
    }
  }

  /** Adds every page of {@code other}. */
  public void or(PageBitmap other) {
    if (other.pageCount != pageCount) {
      throw new IllegalArgumentException("bitmaps of " + pageCount + " and " + other.pageCount + " pages");
    }
    for (int i = 0; i < words.length; i++) {
      words[i] |= other.words[i];
    }
  }

  public void clearAll() {
    java.util.Arrays.fill(words, 0L);
  }

  public int count() {
    int n = 0;
    for (long w : words) {
      n += Long.bitCount(w);
    }
    return n;
  }

  /** The first set page at or after {@code from}, or -1. */
  public int nextSet(int from) {
    if (from >= pageCount) {
      return -1;
    }
    int i = from >>> 6;
    long w = words[i] & (-1L << from);
    while (true) {
      if (w != 0) {
        int page = (i << 6) + Long.numberOfTrailingZeros(w);
        return page < pageCount ? page : -1;
      }
      if (++i == words.length) {
        return -1;
      }
      w = words[i];
    }
  }
}
