package dev.ferry.storage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ferry.storage.StorageException.Problem;
import org.junit.jupiter.api.Test;

/** Names that become path components can never leave their directory. */
class NamesTest {
  @Test
  void ordinaryNamesPass() {
    for (String name : new String[] {"web-1", "db_2", "a", "vm.prod.eu", "9", "x".repeat(63)}) {
      assertEquals(name, Names.require("VM name", name));
    }
  }

  @Test
  void traversalSeparatorsAndOddCharactersAreRefused() {
    for (String name : new String[] {"", ".", "..", "../etc", "a/b", "a\\b", ".hidden", "-rf", "x".repeat(64),
        "web 1", "wéb", "a\u0000b", "a\nb", "~root", "a:b"}) {
      StorageException e = assertThrows(StorageException.class, () -> Names.require("VM name", name), name);
      assertEquals(Problem.INVALID_NAME, e.problem());
    }
  }

  @Test
  void theMessageShowsTheNameSafely() {
    StorageException e = assertThrows(StorageException.class, () -> Names.require("VM name", "a\nb/.."));
    assertEquals("VM name 'a\\x0ab/..' is not allowed: use 1 to 63 letters, digits, '.', '_' or '-', "
        + "starting with a letter or digit", e.getMessage());
    assertEquals("VM name is missing", assertThrows(StorageException.class, () -> Names.require("VM name", null)).getMessage());
  }
}
