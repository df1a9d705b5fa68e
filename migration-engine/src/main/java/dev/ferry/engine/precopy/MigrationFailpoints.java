package dev.ferry.engine.precopy;

/**
 * Named points in the migration protocol where a test can inject a fault (throw, block, kill
 * the link). Production uses {@link #NONE}.
 */
public interface MigrationFailpoints {
  MigrationFailpoints NONE = point -> { };

  enum Point {
    /** Source: a pre-copy round was sent (its RoundEnd too). */
    AFTER_ROUND,
    /** Source: the guest has just paused for stop-and-copy. */
    AFTER_PAUSE,
    /** Source: the target reported every page applied; the commit is next. */
    BEFORE_COMMIT,
    /** Source: the commit is sent; the target's confirmation is next. */
    AFTER_COMMIT_SENT
  }

  /** Called at {@code point}; may throw to simulate a failure there. */
  void hit(Point point);
}
