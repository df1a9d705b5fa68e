package dev.ferry.engine.guest;

/** What a guest write puts in a page. */
public enum PageKind {
  ZERO,
  /** Words and punctuation: LZ4 shrinks it to about half. */
  TEXT,
  /** Incompressible. */
  RANDOM
}
