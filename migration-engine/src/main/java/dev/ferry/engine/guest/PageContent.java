package dev.ferry.engine.guest;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Writes a page's worth of zero, text-like or random content, deterministically from a generator. */
final class PageContent {
  private static final int CORPUS_BYTES = 256 * 1024;
  private static final String[] WORDS = (
      "the of and to in is was for on that with as by at from his her it an were are which this "
          + "be or has had not but one their its also after first new two they he she who been more "
          + "time into only other when some most would than these over such them there all can may "
          + "between during where about three through under while both before city later many "
          + "world season being years group since team year national made used part called well "
          + "against school area number state known several high first second music album film "
          + "page memory guest host migration round bandwidth cluster kernel buffer socket thread "
          + "process signal value index record commit epoch owner lease vector table column row "
          + "server client request response error result status config update delete insert")
      .split(" ");
  // After WORDS: static initialisers run in order.
  private static final ByteBuffer CORPUS = buildCorpus();
  private static final long CORPUS_ADDRESS = GuestMemory.directAddress(CORPUS);

  private PageContent() {}

  /**
   * Loads the class (and builds the text corpus, tens of milliseconds) now rather than in the first
   * vCPU step after a migration, where it would lengthen the pause.
   */
  static void load() {
    if (CORPUS_ADDRESS == 0) {
      throw new IllegalStateException("text corpus not built");
    }
  }

  private static ByteBuffer buildCorpus() {
    ByteBuffer corpus = ByteBuffer.allocateDirect(CORPUS_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    Xoshiro256 rng = new Xoshiro256(0x7E57C0DEL);
    while (corpus.hasRemaining()) {
      String word = WORDS[rng.nextInt(WORDS.length)];
      int roll = rng.nextInt(100);
      String sep = roll < 8 ? ", " : roll < 12 ? ". " : roll < 14 ? "\n" : " ";
      String piece = roll < 3 ? String.valueOf(rng.nextInt(100000)) + sep : word + sep;
      for (int i = 0; i < piece.length() && corpus.hasRemaining(); i++) {
        corpus.put((byte) piece.charAt(i));
      }
    }
    corpus.clear();
    return corpus;
  }

  /** Fills the page at {@code pageAddress} with content of {@code kind}. */
  static void write(PageKind kind, long pageAddress, Xoshiro256 rng) {
    switch (kind) {
      case ZERO -> GuestMemory.UNSAFE.setMemory(pageAddress, GuestMemory.PAGE_BYTES, (byte) 0);
      case TEXT -> {
        int offset = rng.nextInt(CORPUS_BYTES - GuestMemory.PAGE_BYTES);
        GuestMemory.UNSAFE.copyMemory(CORPUS_ADDRESS + offset, pageAddress, GuestMemory.PAGE_BYTES);
        // A unique stamp keeps pages distinct, as real pages are.
        GuestMemory.UNSAFE.putLong(pageAddress, rng.nextLong());
      }
      case RANDOM -> {
        for (int i = 0; i < GuestMemory.PAGE_BYTES; i += 8) {
          GuestMemory.UNSAFE.putLong(pageAddress + i, rng.nextLong());
        }
      }
      default -> throw new IllegalStateException("unknown page kind " + kind);
    }
  }
}
