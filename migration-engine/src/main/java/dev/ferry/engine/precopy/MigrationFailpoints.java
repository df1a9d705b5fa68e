package dev.ferry.engine.precopy;

import dev.ferry.common.InvalidConfigException;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;

/**
 * Named points in the migration protocol where a test can inject a fault: the one fail-point
 * mechanism of Ferry. In-process tests pass their own implementation (throw, block, break the
 * link at a point); child JVMs get theirs from the {@code ferry.failpoint} system property, a
 * comma list of {@code name[:action]} ({@link #fromSystemProperty}). Production uses
 * {@link #NONE}: with no property set, nothing happens anywhere.
 */
public interface MigrationFailpoints {
  MigrationFailpoints NONE = point -> { };

  /** The property child JVMs read, e.g. {@code -Dferry.failpoint=after-pause:exit}. */
  String PROPERTY = "ferry.failpoint";

  enum Point {
    /** Source: a pre-copy round was sent (its RoundEnd too). */
    AFTER_ROUND,
    /** Source: the guest has just paused for stop-and-copy. */
    AFTER_PAUSE,
    /** Source: the last pages and the vCPU state are sent; the target decides from here. */
    AFTER_FINAL_STATE,
    /** Target: every page and the vCPU state checked out; the commit is next. */
    BEFORE_COMMIT,
    /** Target: the commit stands; the resume is next. */
    AFTER_COMMIT,
    /** Cluster, target: the commit multi-op landed; replay it as Curator's retry after a lost connection would. */
    COMMIT_DUPLICATE;

    /** The name in the property: lower case with dashes ({@code after-pause}). */
    public String label() {
      return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    static Point parse(String label) {
      for (Point p : values()) {
        if (p.label().equals(label)) {
          return p;
        }
      }
      throw new InvalidConfigException(PROPERTY, "'" + label + "' is not a fail point (one of "
          + java.util.Arrays.stream(values()).map(Point::label).toList() + ")");
    }
  }

  /** What a point set from the property does when it is hit. */
  enum Action {
    /** Nothing at the point; code that asks {@link #isSet} sees it set. */
    SET,
    /** Halt the JVM at once, as kill -9 would at exactly that step (exit status 137). */
    EXIT,
    /** Throw, as a failure of that step would. */
    THROW
  }

  /** Called at {@code point}; may throw to simulate a failure there. */
  void hit(Point point);

  /** True if {@code point} is set (for points that change behaviour rather than fail). */
  default boolean isSet(Point point) {
    return false;
  }

  /** The points of the {@link #PROPERTY} system property; {@link #NONE} when it is unset or empty. */
  static MigrationFailpoints fromSystemProperty() {
    return parse(System.getProperty(PROPERTY, ""));
  }

  /** {@code spec}: a comma list of {@code name[:set|exit|throw]}; an unknown name or action is an error naming it. */
  static MigrationFailpoints parse(String spec) {
    Map<Point, Action> points = new EnumMap<>(Point.class);
    for (String item : spec.split(",")) {
      String trimmed = item.trim();
      if (trimmed.isEmpty()) {
        continue;
      }
      String[] parts = trimmed.split(":", 2);
      Action action = parts.length == 1 ? Action.SET : switch (parts[1].trim()) {
        case "set" -> Action.SET;
        case "exit" -> Action.EXIT;
        case "throw" -> Action.THROW;
        default -> throw new InvalidConfigException(PROPERTY, "'" + parts[1] + "' is not an action (set, exit, throw)");
      };
      points.put(Point.parse(parts[0].trim()), action);
    }
    if (points.isEmpty()) {
      return NONE;
    }
    return new MigrationFailpoints() {
      @Override
      public void hit(Point point) {
        Action action = points.get(point);
        if (action == Action.EXIT) {
          System.err.println("fail point " + point.label() + ": halting this JVM");
          Runtime.getRuntime().halt(137);
        } else if (action == Action.THROW) {
          throw new IllegalStateException("fail point " + point.label());
        }
      }

      @Override
      public boolean isSet(Point point) {
        return points.containsKey(point);
      }

      @Override
      public String toString() {
        return points.toString();
      }
    };
  }
}
