package dev.ferry.engine.precopy;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.common.InvalidConfigException;
import dev.ferry.engine.precopy.MigrationFailpoints.Point;
import org.junit.jupiter.api.Test;

class MigrationFailpointsTest {
  @Test
  void anEmptySpecIsNone() {
    assertSame(MigrationFailpoints.NONE, MigrationFailpoints.parse(""));
    assertSame(MigrationFailpoints.NONE, MigrationFailpoints.parse(" , "));
  }

  @Test
  void namedPointsAreSetAndThrowOnlyWhereAsked() {
    MigrationFailpoints f = MigrationFailpoints.parse("commit-duplicate, after-pause:throw");
    assertTrue(f.isSet(Point.COMMIT_DUPLICATE));
    assertTrue(f.isSet(Point.AFTER_PAUSE));
    assertFalse(f.isSet(Point.AFTER_COMMIT));
    f.hit(Point.COMMIT_DUPLICATE); // set only: nothing happens at the point
    f.hit(Point.BEFORE_COMMIT);
    assertThrows(IllegalStateException.class, () -> f.hit(Point.AFTER_PAUSE));
  }

  @Test
  void unknownNamesAndActionsAreRefusedByName() {
    InvalidConfigException name = assertThrows(InvalidConfigException.class,
        () -> MigrationFailpoints.parse("after-pause,commit-twice"));
    assertTrue(name.getMessage().contains("commit-twice") && name.getMessage().contains("ferry.failpoint"),
        name.getMessage());
    InvalidConfigException action = assertThrows(InvalidConfigException.class,
        () -> MigrationFailpoints.parse("after-pause:explode"));
    assertTrue(action.getMessage().contains("explode"), action.getMessage());
  }
}
