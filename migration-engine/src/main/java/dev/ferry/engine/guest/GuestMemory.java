package dev.ferry.engine.guest;

import dev.ferry.common.InvalidConfigException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicInteger;
import net.openhft.chronicle.bytes.BytesStore;
import net.openhft.chronicle.bytes.PointerBytesStore;
import net.openhft.chronicle.core.UnsafeMemory;
import sun.misc.Unsafe;

/**
 * A guest's physical memory: off-heap, page-granular (4 KiB), from 16 MiB to 1 TiB.
 *
 * <p>Memory is an anonymous private mapping (see {@link AnonymousMemory}), so a fresh guest costs
 * nothing until it is touched and reads as zeros, as a new KVM guest does; the target of a
 * migration relies on that to skip zero pages. Chronicle {@link BytesStore} views
 * expose each 1 GiB chunk as a direct {@link ByteBuffer} for CRC32C and LZ4.
 *
 * <p>Lifetime: the creator holds one reference; every other user (an engine, a digest) takes one
 * with {@link #retain()} and gives it back with {@link #release()}. The mapping goes away with the
 * last reference, so nothing reads freed memory.
 */
public final class GuestMemory {
  public static final int PAGE_BYTES = 4096;
  public static final int PAGE_SHIFT = 12;
  public static final long MEMORY_BYTES_MIN = 16L << 20;
  public static final long MEMORY_BYTES_MAX = 1L << 40;
  private static final int CHUNK_SHIFT = 30;
  private static final int PAGES_PER_CHUNK_SHIFT = CHUNK_SHIFT - PAGE_SHIFT;
  private static final int PAGE_IN_CHUNK_MASK = (1 << PAGES_PER_CHUNK_SHIFT) - 1;
  static final Unsafe UNSAFE = UnsafeMemory.UNSAFE;

  private final long sizeBytes;
  private final int pageCount;
  private final long address;
  private final PointerBytesStore[] chunkStores;
  private final ByteBuffer[] chunkViews;
  private final AtomicInteger references = new AtomicInteger(1);
  private final MemoryPool pool;
  private final boolean fresh;
  private volatile SnapshotDigest snapshot;

  private GuestMemory(long sizeBytes, long address, MemoryPool pool, boolean fresh) {
    this.pool = pool;
    this.fresh = fresh;
    this.sizeBytes = sizeBytes;
    this.pageCount = (int) (sizeBytes >>> PAGE_SHIFT);
    this.address = address;
    int chunks = (int) ((sizeBytes + (1L << CHUNK_SHIFT) - 1) >>> CHUNK_SHIFT);
    this.chunkStores = new PointerBytesStore[chunks];
    this.chunkViews = new ByteBuffer[chunks];
    for (int i = 0; i < chunks; i++) {
      long start = (long) i << CHUNK_SHIFT;
      long length = Math.min(1L << CHUNK_SHIFT, sizeBytes - start);
      chunkStores[i] = BytesStore.wrap(address + start, length);
      chunkStores[i].singleThreadedCheckDisabled(true);
      chunkViews[i] = chunkStores[i].toTemporaryDirectByteBuffer();
    }
  }

  /** Checks a memory size from outside; {@code field} names it in the error. */
  public static long validateSize(String field, long sizeBytes) {
    InvalidConfigException.requireRange(field, sizeBytes, MEMORY_BYTES_MIN, MEMORY_BYTES_MAX);
    if ((sizeBytes & (PAGE_BYTES - 1)) != 0) {
      throw new InvalidConfigException(field, "must be a multiple of 4096 bytes, got " + sizeBytes);
    }
    return sizeBytes;
  }

  /**
   * Maps {@code sizeBytes} of zero-filled anonymous memory, asking for transparent huge pages;
   * pages are committed when first written (or {@link #populate populated}).
   */
  public static GuestMemory allocate(long sizeBytes) {
    return allocate(sizeBytes, MemoryPool.NONE);
  }

  /** As above, reusing scrubbed memory from {@code pool} when it has a region of this size. */
  public static GuestMemory allocate(long sizeBytes, MemoryPool pool) {
    validateSize("memory", sizeBytes);
    MemoryPool.Allocation a = pool.take(sizeBytes);
    return new GuestMemory(sizeBytes, a.address(), pool, a.fresh());
  }

  /** True if the pages are not yet faulted in (fresh from the kernel, not from the pool). */
  public boolean isFresh() {
    return fresh;
  }

  /**
   * Commits the pages of {@code [fromPage, fromPage + pages)} without changing their content, so
   * that writes there later take no page faults (a migration target runs this ahead of the
   * incoming stream). Returns false if the kernel cannot do it.
   */
  public boolean populate(int fromPage, int pages) {
    checkPage(fromPage);
    checkPage(fromPage + pages - 1);
    return AnonymousMemory.populate(address + ((long) fromPage << PAGE_SHIFT), (long) pages << PAGE_SHIFT);
  }

  public long sizeBytes() {
    return sizeBytes;
  }

  public int pageCount() {
    return pageCount;
  }

  /** The address of a page, for the hot paths that copy with {@link Unsafe}. */
  public long pageAddress(int page) {
    checkPage(page);
    return address + ((long) page << PAGE_SHIFT);
  }

  /** A fresh direct-buffer view of one page (position 0, limit 4096); it never moves. */
  public ByteBuffer pageView(int page) {
    checkPage(page);
    return chunkViews[page >>> PAGES_PER_CHUNK_SHIFT]
        .slice((page & PAGE_IN_CHUNK_MASK) << PAGE_SHIFT, PAGE_BYTES);
  }

  /** Reusable page views for one thread (the hot paths that must not allocate per page). */
  public PageCursor newCursor() {
    return new PageCursor();
  }

  /** Views of this memory that {@link #page} repositions instead of allocating; not thread-safe. */
  public final class PageCursor {
    private final ByteBuffer[] views = new ByteBuffer[chunkViews.length];

    private PageCursor() {
      for (int i = 0; i < views.length; i++) {
        views[i] = chunkViews[i].duplicate();
      }
    }

    /** Page {@code page}'s 4096 bytes, position to limit, in a view reused by the next call. */
    public ByteBuffer page(int page) {
      checkPage(page);
      ByteBuffer view = views[page >>> PAGES_PER_CHUNK_SHIFT];
      int at = (page & PAGE_IN_CHUNK_MASK) << PAGE_SHIFT;
      view.clear().position(at).limit(at + PAGE_BYTES);
      return view;
    }
  }

  public boolean isZeroPage(int page) {
    long at = pageAddress(page);
    long end = at + PAGE_BYTES;
    for (; at < end; at += 32) {
      if ((UNSAFE.getLong(at) | UNSAFE.getLong(at + 8) | UNSAFE.getLong(at + 16)
          | UNSAFE.getLong(at + 24)) != 0) {
        return false;
      }
    }
    return true;
  }

  /** Copies one page into {@code dst} at its position and advances it; {@code dst} is direct. */
  public void readPage(int page, ByteBuffer dst) {
    int at = dst.position();
    UNSAFE.copyMemory(pageAddress(page), directAddress(dst) + at, PAGE_BYTES);
    dst.position(at + PAGE_BYTES);
  }

  /** Copies one page from {@code src} (direct) at its position into guest memory, and advances it. */
  public void writePage(int page, ByteBuffer src) {
    int at = src.position();
    if (src.remaining() < PAGE_BYTES) {
      throw new IllegalArgumentException("need 4096 bytes for page " + page + ", have " + src.remaining());
    }
    beforeWrite(page);
    UNSAFE.copyMemory(directAddress(src) + at, pageAddress(page), PAGE_BYTES);
    src.position(at + PAGE_BYTES);
  }

  /**
   * Copies {@code src} (position to limit) into {@code page} at {@code offset}; advances nothing.
   * Returns true if {@code src} already was that place (nothing to copy).
   */
  public boolean writeBytes(int page, int offset, ByteBuffer src) {
    int length = src.remaining();
    if (offset < 0 || length < 0 || offset + length > PAGE_BYTES) {
      throw new IndexOutOfBoundsException(length + " bytes at offset " + offset + " do not fit a page");
    }
    beforeWrite(page);
    if (src.isDirect()) {
      long from = directAddress(src) + src.position();
      long to = pageAddress(page) + offset;
      if (from == to) {
        return true; // the socket read the bytes straight into place
      }
      UNSAFE.copyMemory(from, to, length);
    } else {
      UNSAFE.copyMemory(src.array(), Unsafe.ARRAY_BYTE_BASE_OFFSET + src.arrayOffset() + src.position(), null,
          pageAddress(page) + offset, length);
    }
    return false;
  }

  /**
   * A direct-buffer view of {@code length} bytes at byte {@code offset} (the transport sends raw
   * pages from such views without copying). A view never crosses a 1 GiB boundary.
   */
  public ByteBuffer view(long offset, int length) {
    if (offset < 0 || length < 0 || offset + length > sizeBytes) {
      throw new IndexOutOfBoundsException(length + " bytes at " + offset + " outside guest memory of " + sizeBytes);
    }
    int chunk = (int) (offset >>> CHUNK_SHIFT);
    int within = (int) (offset & ((1L << CHUNK_SHIFT) - 1));
    if (within + (long) length > chunkViews[chunk].capacity()) {
      throw new IndexOutOfBoundsException(length + " bytes at " + offset + " cross a 1 GiB view boundary");
    }
    return chunkViews[chunk].slice(within, length);
  }

  /** True if a view must not run across byte {@code offset}. */
  public static boolean isViewBoundary(long offset) {
    return (offset & ((1L << CHUNK_SHIFT) - 1)) == 0;
  }

  public void zeroPage(int page) {
    beforeWrite(page);
    UNSAFE.setMemory(pageAddress(page), PAGE_BYTES, (byte) 0);
  }

  /** Called before any write to {@code page}; keeps an in-flight snapshot digest exact. */
  void beforeWrite(int page) {
    SnapshotDigest s = snapshot;
    if (s != null) {
      s.beforeWrite(page);
    }
  }

  /** Installs the copy-on-write hook of {@code digest}; false if another digest is running. */
  synchronized boolean installSnapshot(SnapshotDigest digest) {
    if (snapshot != null) {
      return false;
    }
    this.snapshot = digest;
    return true;
  }

  synchronized void clearSnapshot(SnapshotDigest digest) {
    if (snapshot == digest) {
      snapshot = null;
    }
  }

  static long directAddress(ByteBuffer buffer) {
    if (!buffer.isDirect()) {
      throw new IllegalArgumentException("guest memory copies need a direct buffer");
    }
    return net.openhft.chronicle.core.Jvm.address(buffer);
  }

  private void checkPage(int page) {
    if (page < 0 || page >= pageCount) {
      throw new IndexOutOfBoundsException("page " + page + " outside guest memory of " + pageCount + " pages");
    }
  }

  /** Takes a reference; fails if the memory is already freed. */
  public GuestMemory retain() {
    while (true) {
      int n = references.get();
      if (n <= 0) {
        throw new IllegalStateException("guest memory already freed");
      }
      if (references.compareAndSet(n, n + 1)) {
        return this;
      }
    }
  }

  /** Gives a reference back; the last one unmaps the memory. */
  public void release() {
    int n = references.decrementAndGet();
    if (n == 0) {
      for (PointerBytesStore store : chunkStores) {
        store.releaseLast();
      }
      pool.giveBack(address, sizeBytes);
    } else if (n < 0) {
      throw new IllegalStateException("guest memory released more often than retained");
    }
  }

  public boolean isFreed() {
    return references.get() <= 0;
  }
}
