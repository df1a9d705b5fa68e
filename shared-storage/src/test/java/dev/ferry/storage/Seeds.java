package dev.ferry.storage;

/**
 * Seeds for the randomized tests: {@code -Dferry.storage.seed=N} replays a run, otherwise each
 * run takes a new one. The seed is printed, and every failure message carries it.
 */
final class Seeds {
  private Seeds() {}

  static long seed(String test) {
    String fixed = System.getProperty("ferry.storage.seed");
    long seed = fixed != null ? Long.parseLong(fixed.trim()) : System.nanoTime();
    System.out.println(test + ": " + replay(seed));
    return seed;
  }

  static String replay(long seed) {
    return "seed " + seed + " (replay with -Dferry.storage.seed=" + seed + ")";
  }
}
