package dev.ferry.engine.guest;

import static dev.ferry.engine.guest.GuestMemory.PAGE_BYTES;
import static dev.ferry.engine.guest.TestGuests.MIB;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.common.InvalidConfigException;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Guest memory: size bounds, page addressing across 1 GiB chunks, copies and the reference count. */
class GuestMemoryTest {
  private static final long GIB = 1L << 30;
  private static final int PAGES_PER_CHUNK = (int) (GIB / PAGE_BYTES);

  private GuestMemory memory;

  @AfterEach
  void freeMemory() {
    if (memory != null && !memory.isFreed()) {
      memory.release();
    }
  }

  @Test
  void eightGibMemoryIsAddressableAtFirstLastAndChunkBoundaryPages() {
    memory = GuestMemory.allocate(8 * GIB);
    assertEquals(8 * GIB, memory.sizeBytes());
    assertEquals((int) (8 * GIB / PAGE_BYTES), memory.pageCount());
    int last = memory.pageCount() - 1;
    int[] pages = {0, PAGES_PER_CHUNK - 1, PAGES_PER_CHUNK, 7 * PAGES_PER_CHUNK, last};
    for (int page : pages) {
      assertTrue(memory.isZeroPage(page), "fresh page " + page + " must read as zeros");
    }
    for (int page : pages) {
      ByteBuffer view = memory.pageView(page);
      assertTrue(view.isDirect());
      assertEquals(0, view.position());
      assertEquals(PAGE_BYTES, view.limit());
      assertEquals(PAGE_BYTES, view.capacity(), "a page view must not reach into the next page");
      view.put(0, pattern(page, 0));
      view.put(PAGE_BYTES - 1, pattern(page, PAGE_BYTES - 1));
    }
    for (int page : pages) {
      long address = memory.pageAddress(page);
      assertEquals(pattern(page, 0), GuestMemory.UNSAFE.getByte(address), "first byte of page " + page);
      assertEquals(pattern(page, PAGE_BYTES - 1), GuestMemory.UNSAFE.getByte(address + PAGE_BYTES - 1),
          "last byte of page " + page);
      assertFalse(memory.isZeroPage(page), "page " + page + " was written");
    }
    // Writes through the address are seen through a fresh view, and do not spill over.
    GuestMemory.UNSAFE.putByte(memory.pageAddress(last) + 100, (byte) 0x5A);
    assertEquals((byte) 0x5A, memory.pageView(last).get(100));
    assertTrue(memory.isZeroPage(1), "page 1 was never written");
    assertTrue(memory.isZeroPage(last - 1), "the page before the last was never written");
    assertEquals(PAGE_BYTES, memory.pageAddress(PAGES_PER_CHUNK) - memory.pageAddress(PAGES_PER_CHUNK - 1));
  }

  @Test
  void isZeroPageSeesANonZeroByteAnywhereInThePage() {
    memory = GuestMemory.allocate(16 * MIB);
    int[] offsets = {0, 7, 8, 31, 32, 2048, PAGE_BYTES - 9, PAGE_BYTES - 1};
    for (int i = 0; i < offsets.length; i++) {
      int page = 10 + i;
      memory.pageView(page).put(offsets[i], (byte) 1);
      assertFalse(memory.isZeroPage(page), "byte at offset " + offsets[i] + " is set");
      assertTrue(memory.isZeroPage(page + 100));
      memory.zeroPage(page);
      assertTrue(memory.isZeroPage(page), "zeroPage clears offset " + offsets[i]);
    }
  }

  @Test
  void readPageAndWritePageCopyWholePagesAndAdvanceTheBuffer() {
    memory = GuestMemory.allocate(16 * MIB);
    ByteBuffer src = ByteBuffer.allocateDirect(2 * PAGE_BYTES + 3);
    for (int i = 0; i < src.capacity(); i++) {
      src.put(i, (byte) (i * 7 + 1));
    }
    src.position(3);
    memory.writePage(42, src);
    assertEquals(3 + PAGE_BYTES, src.position());
    memory.writePage(43, src);
    assertEquals(src.capacity(), src.position());
    assertEquals(src.slice(3, PAGE_BYTES), memory.pageView(42));
    assertEquals(src.slice(3 + PAGE_BYTES, PAGE_BYTES), memory.pageView(43));

    ByteBuffer dst = ByteBuffer.allocateDirect(PAGE_BYTES + 5);
    dst.position(5);
    memory.readPage(43, dst);
    assertEquals(PAGE_BYTES + 5, dst.position());
    assertEquals(memory.pageView(43), dst.slice(5, PAGE_BYTES));

    src.position(src.capacity() - PAGE_BYTES + 1);
    assertThrows(IllegalArgumentException.class, () -> memory.writePage(44, src), "4095 bytes are not a page");
    assertTrue(memory.isZeroPage(44), "a refused write must not touch the page");
    assertThrows(IllegalArgumentException.class, () -> memory.writePage(44, ByteBuffer.allocate(PAGE_BYTES)),
        "heap buffers have no address to copy from");
  }

  @Test
  void populateKeepsContent() {
    memory = GuestMemory.allocate(16 * MIB);
    memory.pageView(5).putLong(64, 0x0123456789ABCDEFL);
    memory.populate(0, memory.pageCount()); // may be unsupported (false); content must survive either way
    assertEquals(0x0123456789ABCDEFL, memory.pageView(5).getLong(64));
    assertTrue(memory.isZeroPage(6));
    assertThrows(IndexOutOfBoundsException.class, () -> memory.populate(1, memory.pageCount()));
  }

  @Test
  void validateSizeNamesTheFieldAndEnforcesBounds() {
    assertEquals(16 * MIB, GuestMemory.validateSize("memory_bytes", 16 * MIB));
    assertEquals(1L << 40, GuestMemory.validateSize("memory_bytes", 1L << 40));
    long[] bad = {0, -PAGE_BYTES, 16 * MIB - PAGE_BYTES, (1L << 40) + PAGE_BYTES, 16 * MIB + 1, 32 * MIB + 2048};
    for (long size : bad) {
      InvalidConfigException e = assertThrows(InvalidConfigException.class,
          () -> GuestMemory.validateSize("guest.memory_bytes", size), "size " + size);
      assertEquals("guest.memory_bytes", e.field(), "size " + size);
      assertTrue(e.getMessage().startsWith("guest.memory_bytes: "), e.getMessage());
      assertTrue(e.getMessage().contains(Long.toString(size)), "the message shows the bad value: " + e.getMessage());
    }
    InvalidConfigException e = assertThrows(InvalidConfigException.class, () -> GuestMemory.allocate(8 * MIB));
    assertEquals("memory", e.field());
  }

  @Test
  void pagesOutsideMemoryAreRejected() {
    memory = GuestMemory.allocate(16 * MIB);
    int pages = memory.pageCount();
    assertEquals(4096, pages);
    for (int page : new int[] {-1, pages, pages + 1, Integer.MIN_VALUE, Integer.MAX_VALUE}) {
      assertThrows(IndexOutOfBoundsException.class, () -> memory.pageView(page), "pageView " + page);
      assertThrows(IndexOutOfBoundsException.class, () -> memory.pageAddress(page), "pageAddress " + page);
      assertThrows(IndexOutOfBoundsException.class, () -> memory.isZeroPage(page), "isZeroPage " + page);
      assertThrows(IndexOutOfBoundsException.class, () -> memory.zeroPage(page), "zeroPage " + page);
    }
    memory.pageView(pages - 1);
  }

  @Test
  void theLastReleaseFreesAndAFreedMemoryCannotBeRetained() {
    memory = GuestMemory.allocate(16 * MIB);
    assertSame(memory, memory.retain());
    memory.retain();
    memory.release();
    memory.release();
    assertFalse(memory.isFreed(), "the creator still holds a reference");
    memory.pageView(0).put(0, (byte) 1); // still mapped
    memory.release();
    assertTrue(memory.isFreed());
    assertThrows(IllegalStateException.class, memory::retain);
    assertThrows(IllegalStateException.class, memory::release, "one release too many");
    assertTrue(memory.isFreed());
  }

  private static byte pattern(int page, int offset) {
    return (byte) ((page * 31 + offset) | 1); // never zero
  }
}
