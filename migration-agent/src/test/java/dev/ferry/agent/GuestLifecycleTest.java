package dev.ferry.agent;

import static dev.ferry.agent.GuestLifecycle.BOOTING;
import static dev.ferry.agent.GuestLifecycle.INCOMING;
import static dev.ferry.agent.GuestLifecycle.MIGRATING_OUT;
import static dev.ferry.agent.GuestLifecycle.PAUSED;
import static dev.ferry.agent.GuestLifecycle.RESUMING;
import static dev.ferry.agent.GuestLifecycle.RUNNING;
import static dev.ferry.agent.GuestLifecycle.SUSPENDING;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.EnumMap;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * A guest's states against the diagram in {@link GuestLifecycle}'s comment, written out again here
 * as a table: every one of the 49 (from, to) pairs, and the words listings show.
 */
class GuestLifecycleTest {
  /** The diagram, edge by edge. */
  private static final Map<GuestLifecycle, Set<GuestLifecycle>> LEGAL = new EnumMap<>(Map.of(
      BOOTING, EnumSet.of(RUNNING),
      RESUMING, EnumSet.of(RUNNING),
      INCOMING, EnumSet.of(RUNNING),
      RUNNING, EnumSet.of(MIGRATING_OUT, SUSPENDING),
      MIGRATING_OUT, EnumSet.of(RUNNING, PAUSED),
      SUSPENDING, EnumSet.of(RUNNING),
      PAUSED, EnumSet.of(RUNNING)));

  @Test
  void everyPairOfStatesIsLegalExactlyWhenTheDiagramHasThatEdge() {
    assertEquals(GuestLifecycle.values().length, LEGAL.size(), "the table covers every state");
    for (GuestLifecycle from : GuestLifecycle.values()) {
      for (GuestLifecycle to : GuestLifecycle.values()) {
        boolean legal = LEGAL.get(from).contains(to);
        assertEquals(legal, from.canMoveTo(to), from + " -> " + to);
        if (legal) {
          assertSame(to, from.moveTo(to), from + " -> " + to);
        } else {
          IllegalStateException e = assertThrows(IllegalStateException.class, () -> from.moveTo(to));
          assertEquals("illegal guest state change " + from + " -> " + to, e.getMessage());
        }
      }
    }
  }

  /** Only a migration's own end may stop a guest it is moving. */
  @Test
  void exactlyIncomingAndMigratingOutBelongToAMigration() {
    Set<GuestLifecycle> migrating = EnumSet.of(INCOMING, MIGRATING_OUT);
    for (GuestLifecycle s : GuestLifecycle.values()) {
      assertEquals(migrating.contains(s), s.inMigration(), s.toString());
    }
  }

  /** The words of GuestStatus.state that the CLI prints and the cluster member compares. */
  @Test
  void labelsAreTheWordsListingsShow() {
    Map<GuestLifecycle, String> words = new EnumMap<>(Map.of(BOOTING, "booting", RESUMING, "resuming",
        INCOMING, "incoming", RUNNING, "running", MIGRATING_OUT, "migrating-out", SUSPENDING, "suspending",
        PAUSED, "paused"));
    for (GuestLifecycle s : GuestLifecycle.values()) {
      assertEquals(words.get(s), s.label(), s.toString());
    }
  }
}
