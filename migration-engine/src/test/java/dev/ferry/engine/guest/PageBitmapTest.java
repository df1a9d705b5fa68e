package dev.ferry.engine.guest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The page set's bounds: a page outside it is an error, never a bit in the last word's unused tail. */
class PageBitmapTest {
  @Test
  void pagesOutsideTheBitmapAreRefused() {
    PageBitmap bitmap = new PageBitmap(70);
    for (int page : new int[] {-1, 70, 127, Integer.MAX_VALUE}) {
      assertThrows(IndexOutOfBoundsException.class, () -> bitmap.set(page), "set " + page);
      assertThrows(IndexOutOfBoundsException.class, () -> bitmap.get(page), "get " + page);
      assertThrows(IndexOutOfBoundsException.class, () -> bitmap.clear(page), "clear " + page);
    }
    assertEquals(0, bitmap.count(), "nothing was set by a refused page");
    bitmap.set(0);
    bitmap.set(69);
    assertTrue(bitmap.get(69));
    assertEquals(2, bitmap.count());
    bitmap.clear(69);
    assertFalse(bitmap.get(69));
  }

  @Test
  void nextSetEndsAtTheLastPage() {
    PageBitmap whole = new PageBitmap(128);
    whole.setAll();
    assertEquals(127, whole.nextSet(127));
    assertEquals(-1, whole.nextSet(128), "from the end of a bitmap of whole words");
    assertEquals(-1, whole.nextSet(1000));
    PageBitmap tail = new PageBitmap(70);
    tail.setAll();
    assertEquals(70, tail.count(), "setAll leaves the last word's unused bits clear");
    assertEquals(69, tail.nextSet(69));
    assertEquals(-1, tail.nextSet(70));
  }
}
