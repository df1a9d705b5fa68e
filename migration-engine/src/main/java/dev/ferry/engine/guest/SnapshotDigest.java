package dev.ferry.engine.guest;

import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The digest of memory as it was at one instant, computed while the guest keeps running: a
 * page a vCPU is about to write for the first time is copied aside first (copy-on-write), so the
 * digest reads every page as it was when the snapshot began. The copies are bounded; past the
 * bound the digest is abandoned, never wrong.
 *
 * <p>Per page: UNTOUCHED, then BUSY while one side (writer or digester) claims it, then
 * PRESERVED (a writer copied it aside) or DIGESTED (the digester read it in place).
 */
final class SnapshotDigest {
  private static final int UNTOUCHED = 0;
  private static final int BUSY = 1;
  private static final int PRESERVED = 2;
  private static final int DIGESTED = 3;
  /** Preserved copies live on the heap (not direct memory, whose limit Netty shares); bounded. */
  static final long PRESERVED_BYTES_MAX = 64L << 20;

  private final GuestMemory memory;
  private final AtomicIntegerArray state;
  private final ConcurrentHashMap<Integer, byte[]> preserved = new ConcurrentHashMap<>();
  private final AtomicLong preservedBytes = new AtomicLong();
  private final CompletableFuture<byte[]> result = new CompletableFuture<>();
  private volatile boolean abandoned;

  SnapshotDigest(GuestMemory memory) {
    this.memory = memory;
    this.state = new AtomicIntegerArray(memory.pageCount());
  }

  CompletableFuture<byte[]> result() {
    return result;
  }

  /** The writer's side: called before the first byte of {@code page} changes. */
  void beforeWrite(int page) {
    if (abandoned) {
      return;
    }
    int s = state.get(page);
    if (s == PRESERVED || s == DIGESTED) {
      return;
    }
    if (state.compareAndSet(page, UNTOUCHED, BUSY)) {
      if (preservedBytes.addAndGet(GuestMemory.PAGE_BYTES) > PRESERVED_BYTES_MAX) {
        abandoned = true;
      } else {
        byte[] copy = new byte[GuestMemory.PAGE_BYTES];
        GuestMemory.UNSAFE.copyMemory(null, memory.pageAddress(page), copy,
            sun.misc.Unsafe.ARRAY_BYTE_BASE_OFFSET, GuestMemory.PAGE_BYTES);
        preserved.put(page, copy);
      }
      state.set(page, PRESERVED);
      return;
    }
    while (state.get(page) == BUSY) {
      Thread.onSpinWait();
    }
  }

  /** The digester's side: reads every page as of the snapshot instant, in order. */
  void run() {
    try {
      MemoryDigest digest = new MemoryDigest(memory.sizeBytes());
      for (int page = 0; page < memory.pageCount(); page++) {
        if (abandoned) {
          break;
        }
        if (state.compareAndSet(page, UNTOUCHED, BUSY)) {
          digest.addPage(memory.pageView(page));
          state.set(page, DIGESTED);
          continue;
        }
        while (state.get(page) == BUSY) {
          Thread.onSpinWait();
        }
        byte[] copy = preserved.remove(page);
        if (copy == null) {
          break; // abandoned while this page was claimed
        }
        digest.addPage(ByteBuffer.wrap(copy));
      }
      if (abandoned) {
        result.completeExceptionally(new IllegalStateException(
            "snapshot digest abandoned: the guest rewrote more than "
                + (PRESERVED_BYTES_MAX >> 20) + " MiB before it finished"));
      } else {
        result.complete(digest.finish());
      }
    } catch (RuntimeException e) {
      result.completeExceptionally(e);
    } finally {
      preserved.clear();
      memory.clearSnapshot(this);
    }
  }
}
