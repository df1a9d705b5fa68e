package dev.ferry.engine.precopy;

import static dev.ferry.engine.precopy.MigrationPhase.ABORTED;
import static dev.ferry.engine.precopy.MigrationPhase.CANCELLED;
import static dev.ferry.engine.precopy.MigrationPhase.COMPLETED;
import static dev.ferry.engine.precopy.MigrationPhase.CUTOVER;
import static dev.ferry.engine.precopy.MigrationPhase.PRECOPY;
import static dev.ferry.engine.precopy.MigrationPhase.SETUP;
import static dev.ferry.engine.precopy.MigrationPhase.STOP_AND_COPY;
import static dev.ferry.engine.precopy.MigrationPhase.UNKNOWN;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.EnumMap;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The migration's phases against the diagram in {@link MigrationPhase}'s comment, written out
 * again here as a table: every one of the 64 (from, to) pairs, and who owns the guest in each.
 */
class MigrationPhaseTest {
  /** The diagram, edge by edge. */
  private static final Map<MigrationPhase, Set<MigrationPhase>> LEGAL = new EnumMap<>(Map.of(
      SETUP, EnumSet.of(PRECOPY, ABORTED, CANCELLED),
      PRECOPY, EnumSet.of(STOP_AND_COPY, ABORTED, CANCELLED),
      STOP_AND_COPY, EnumSet.of(CUTOVER, ABORTED, CANCELLED),
      CUTOVER, EnumSet.of(COMPLETED, ABORTED, UNKNOWN),
      UNKNOWN, EnumSet.of(COMPLETED, ABORTED),
      COMPLETED, EnumSet.noneOf(MigrationPhase.class),
      ABORTED, EnumSet.noneOf(MigrationPhase.class),
      CANCELLED, EnumSet.noneOf(MigrationPhase.class)));

  @Test
  void everyPairOfPhasesIsLegalExactlyWhenTheDiagramHasThatEdge() {
    for (MigrationPhase from : MigrationPhase.values()) {
      for (MigrationPhase to : MigrationPhase.values()) {
        boolean legal = LEGAL.get(from).contains(to);
        assertEquals(legal, from.canMoveTo(to), from + " -> " + to);
        if (legal) {
          assertSame(to, from.moveTo(to), from + " -> " + to);
        } else {
          IllegalStateException e = assertThrows(IllegalStateException.class, () -> from.moveTo(to));
          assertEquals("illegal migration phase change " + from + " -> " + to, e.getMessage());
        }
      }
    }
  }

  /** After the commit (CUTOVER) the source must neither cancel nor resume its copy of the guest. */
  @Test
  void onlyPhasesBeforeTheCommitLeaveTheGuestToTheSource() {
    Set<MigrationPhase> owns = EnumSet.of(SETUP, PRECOPY, STOP_AND_COPY);
    for (MigrationPhase p : MigrationPhase.values()) {
      assertEquals(owns.contains(p), p.sourceOwnsGuest(), p.toString());
    }
    assertFalse(CUTOVER.sourceOwnsGuest(), "the commit is on its way: the guest may already run on the target");
    assertFalse(UNKNOWN.sourceOwnsGuest(), "nobody knows whether the commit landed");
  }

  @Test
  void exactlyCompletedAbortedAndCancelledAreTerminal() {
    Set<MigrationPhase> terminal = EnumSet.of(COMPLETED, ABORTED, CANCELLED);
    for (MigrationPhase p : MigrationPhase.values()) {
      assertEquals(terminal.contains(p), p.isTerminal(), p.toString());
    }
  }

  @Test
  void phasesMapOneToOneOntoTheWireEnum() {
    assertEquals(dev.ferry.proto.MigrationPhase.PHASE_SETUP, SETUP.toProto());
    assertEquals(dev.ferry.proto.MigrationPhase.PHASE_PRECOPY, PRECOPY.toProto());
    assertEquals(dev.ferry.proto.MigrationPhase.PHASE_STOP_AND_COPY, STOP_AND_COPY.toProto());
    assertEquals(dev.ferry.proto.MigrationPhase.PHASE_CUTOVER, CUTOVER.toProto());
    assertEquals(dev.ferry.proto.MigrationPhase.PHASE_COMPLETED, COMPLETED.toProto());
    assertEquals(dev.ferry.proto.MigrationPhase.PHASE_ABORTED, ABORTED.toProto());
    assertEquals(dev.ferry.proto.MigrationPhase.PHASE_CANCELLED, CANCELLED.toProto());
    assertEquals(dev.ferry.proto.MigrationPhase.PHASE_UNKNOWN, UNKNOWN.toProto());
    for (MigrationPhase p : MigrationPhase.values()) {
      assertSame(p, MigrationPhase.fromProto(p.toProto()));
    }
  }

  @Test
  void aPhaseThePeerCannotHaveMeantIsRefused() {
    for (dev.ferry.proto.MigrationPhase wire : dev.ferry.proto.MigrationPhase.values()) {
      boolean known = false;
      for (MigrationPhase p : MigrationPhase.values()) {
        known |= p.toProto() == wire;
      }
      if (!known) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MigrationPhase.fromProto(wire));
        assertTrue(e.getMessage().startsWith("unknown migration phase "), e.getMessage());
      }
    }
  }

  @Test
  void labelsReadForPeople() {
    assertEquals("stop-and-copy", STOP_AND_COPY.label());
    assertEquals("precopy", PRECOPY.label());
    assertEquals("unknown", UNKNOWN.label());
  }
}
