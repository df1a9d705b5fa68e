package dev.ferry.cluster.model;

import static dev.ferry.proto.MigrationState.MIGRATION_ABORTED;
import static dev.ferry.proto.MigrationState.MIGRATION_CANCELLED;
import static dev.ferry.proto.MigrationState.MIGRATION_COMPLETED;
import static dev.ferry.proto.MigrationState.MIGRATION_QUEUED;
import static dev.ferry.proto.MigrationState.MIGRATION_RUNNING;
import static dev.ferry.proto.MigrationState.MIGRATION_STATE_UNSPECIFIED;
import static dev.ferry.proto.MigrationState.MIGRATION_UNKNOWN;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.proto.MigrationState;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * The cluster record's state machine: every (from, to, committed) triple against the table
 * written out by hand, the outcome rules of {@link MigrationStates#settle}, and seeded random walks
 * of agent reports and commits that must keep the invariants. A failing walk prints its seed;
 * {@code -Dferry.states.seed=S} replays the run.
 */
class MigrationStatesTest {
  private static final long SEED = Long.getLong("ferry.states.seed", 0x5eedL);
  private static final int WALKS = 2000;
  private static final int WALK_STEPS_MAX = 16;

  /** Every legal move, as "FROM -> TO committed|uncommitted"; everything else is illegal. */
  private static final Set<String> LEGAL = Set.of(
      "QUEUED -> RUNNING uncommitted",
      "QUEUED -> RUNNING committed",
      "QUEUED -> CANCELLED uncommitted",
      "QUEUED -> CANCELLED committed",
      "QUEUED -> ABORTED uncommitted",
      "QUEUED -> ABORTED committed",
      "RUNNING -> COMPLETED committed",
      "RUNNING -> ABORTED uncommitted",
      "RUNNING -> CANCELLED uncommitted",
      "RUNNING -> UNKNOWN uncommitted",
      "RUNNING -> UNKNOWN committed",
      "UNKNOWN -> COMPLETED committed",
      "UNKNOWN -> ABORTED uncommitted");

  private static final List<MigrationState> STATES = List.of(MIGRATION_STATE_UNSPECIFIED, MIGRATION_QUEUED,
      MIGRATION_RUNNING, MIGRATION_COMPLETED, MIGRATION_ABORTED, MIGRATION_CANCELLED, MIGRATION_UNKNOWN);

  private static String name(MigrationState s) {
    return s.name().replace("MIGRATION_", "");
  }

  private static String move(MigrationState from, MigrationState to, boolean committed) {
    return name(from) + " -> " + name(to) + (committed ? " committed" : " uncommitted");
  }

  @Test
  void moveWritesOnlyLegalMovesAndStampsTheEnd() {
    dev.ferry.proto.MigrationRecord queued = dev.ferry.proto.MigrationRecord.newBuilder().setId("m-1")
        .setState(MIGRATION_QUEUED).build();
    dev.ferry.proto.MigrationRecord running = MigrationStates.move(queued, MIGRATION_RUNNING, "", 10);
    assertEquals(MIGRATION_RUNNING, running.getState());
    assertEquals(10, running.getStartedMs());
    assertEquals(0, running.getEndedMs());
    // Not committed: it cannot complete; the record comes back unchanged (nothing to write).
    assertEquals(running, MigrationStates.move(running, MIGRATION_COMPLETED, "done", 20));
    dev.ferry.proto.MigrationRecord aborted = MigrationStates.move(running, MIGRATION_ABORTED, "target down", 30);
    assertEquals(MIGRATION_ABORTED, aborted.getState());
    assertEquals("target down", aborted.getReason());
    assertEquals(30, aborted.getEndedMs());
    assertEquals(aborted, MigrationStates.move(aborted, MIGRATION_RUNNING, "again", 40), "terminal stays terminal");
    dev.ferry.proto.MigrationRecord committed = running.toBuilder().setCommitOpId("op-1").setReason("first").build();
    dev.ferry.proto.MigrationRecord completed = MigrationStates.move(committed, MIGRATION_COMPLETED, "second", 50);
    assertEquals(MIGRATION_COMPLETED, completed.getState());
    assertEquals("first", completed.getReason(), "a completed migration keeps the reason it had");
    assertEquals(committed, MigrationStates.move(committed, MIGRATION_ABORTED, "late abort", 60),
        "a committed migration never aborts");
  }

  @Test
  void theSourceMayProceedOnlyOnAnOpenRunningRecord() {
    dev.ferry.proto.MigrationRecord running = dev.ferry.proto.MigrationRecord.newBuilder().setId("m-1")
        .setState(MIGRATION_RUNNING).build();
    assertTrue(MigrationStates.sourceMayProceed(running));
    assertFalse(MigrationStates.sourceMayProceed(running.toBuilder().setState(MIGRATION_QUEUED).build()));
    assertFalse(MigrationStates.sourceMayProceed(running.toBuilder().setCommitOpId("op").build()));
    assertFalse(MigrationStates.sourceMayProceed(running.toBuilder()
        .setPhase(dev.ferry.proto.MigrationPhase.PHASE_ABORTED).build()), "refused by the source");
    assertFalse(MigrationStates.sourceMayProceed(running.toBuilder()
        .setReport(dev.ferry.proto.MigrationReport.getDefaultInstance()).build()), "already reported");
  }

  @Test
  void aReportedOutcomeNamesItsState() {
    assertEquals(MIGRATION_COMPLETED, MigrationStates.reported(dev.ferry.proto.MigrationPhase.PHASE_COMPLETED));
    assertEquals(MIGRATION_CANCELLED, MigrationStates.reported(dev.ferry.proto.MigrationPhase.PHASE_CANCELLED));
    assertEquals(MIGRATION_UNKNOWN, MigrationStates.reported(dev.ferry.proto.MigrationPhase.PHASE_UNKNOWN));
    for (dev.ferry.proto.MigrationPhase other : List.of(dev.ferry.proto.MigrationPhase.PHASE_ABORTED,
        dev.ferry.proto.MigrationPhase.PHASE_PRECOPY, dev.ferry.proto.MigrationPhase.PHASE_CUTOVER)) {
      assertEquals(MIGRATION_ABORTED, MigrationStates.reported(other), other.toString());
    }
  }

  @Test
  void everyMoveMatchesTheTable() {
    Set<String> legal = new TreeSet<>();
    int checked = 0;
    for (MigrationState from : STATES) {
      for (MigrationState to : STATES) {
        for (boolean committed : new boolean[] {false, true}) {
          String move = move(from, to, committed);
          assertEquals(LEGAL.contains(move), MigrationStates.canMove(from, to, committed), move);
          if (MigrationStates.canMove(from, to, committed)) {
            legal.add(move);
          }
          checked++;
        }
      }
    }
    assertEquals(STATES.size() * STATES.size() * 2, checked);
    assertEquals(new TreeSet<>(LEGAL), legal);
  }

  @Test
  void unrecognizedStatesMoveNowhere() {
    for (MigrationState s : STATES) {
      for (boolean committed : new boolean[] {false, true}) {
        assertFalse(MigrationStates.canMove(MigrationState.UNRECOGNIZED, s, committed), "UNRECOGNIZED -> " + s);
        assertFalse(MigrationStates.canMove(s, MigrationState.UNRECOGNIZED, committed), s + " -> UNRECOGNIZED");
      }
    }
    assertThrows(IllegalArgumentException.class, () -> MigrationStates.canMove(null, MIGRATION_RUNNING, false));
    assertThrows(IllegalArgumentException.class, () -> MigrationStates.settle(MIGRATION_RUNNING, null, false));
  }

  @Test
  void terminalAndActiveSplitTheRealStates() {
    assertEquals(Set.of(MIGRATION_COMPLETED, MIGRATION_ABORTED, MIGRATION_CANCELLED),
        filter(MigrationStates::isTerminal));
    assertEquals(Set.of(MIGRATION_QUEUED, MIGRATION_RUNNING, MIGRATION_UNKNOWN), filter(MigrationStates::isActive));
    for (MigrationState s : STATES) {
      if (MigrationStates.isTerminal(s)) {
        for (MigrationState to : STATES) {
          assertFalse(MigrationStates.canMove(s, to, true) || MigrationStates.canMove(s, to, false),
              "terminal " + name(s) + " moved to " + name(to));
        }
      }
    }
  }

  private static Set<MigrationState> filter(java.util.function.Predicate<MigrationState> p) {
    Set<MigrationState> out = new java.util.HashSet<>();
    for (MigrationState s : STATES) {
      if (p.test(s)) {
        out.add(s);
      }
    }
    return out;
  }

  @Test
  void settleKeepsTerminalRecords() {
    for (MigrationState terminal : List.of(MIGRATION_COMPLETED, MIGRATION_ABORTED, MIGRATION_CANCELLED)) {
      for (MigrationState reported : STATES) {
        for (boolean committed : new boolean[] {false, true}) {
          assertEquals(terminal, MigrationStates.settle(terminal, reported, committed),
              move(terminal, reported, committed));
        }
      }
    }
  }

  @Test
  void settleTrustsTheCommitOverTheReport() {
    assertEquals(MIGRATION_COMPLETED, MigrationStates.settle(MIGRATION_RUNNING, MIGRATION_ABORTED, true));
    assertEquals(MIGRATION_COMPLETED, MigrationStates.settle(MIGRATION_RUNNING, MIGRATION_CANCELLED, true));
    assertEquals(MIGRATION_COMPLETED, MigrationStates.settle(MIGRATION_UNKNOWN, MIGRATION_ABORTED, true));
    assertEquals(MIGRATION_COMPLETED, MigrationStates.settle(MIGRATION_UNKNOWN, MIGRATION_CANCELLED, true));
    assertEquals(MIGRATION_COMPLETED, MigrationStates.settle(MIGRATION_RUNNING, MIGRATION_COMPLETED, true));
    // Not committed: a reported completion is not believed; aborts and cancels are.
    assertEquals(MIGRATION_RUNNING, MigrationStates.settle(MIGRATION_RUNNING, MIGRATION_COMPLETED, false));
    assertEquals(MIGRATION_UNKNOWN, MigrationStates.settle(MIGRATION_UNKNOWN, MIGRATION_COMPLETED, false));
    assertEquals(MIGRATION_ABORTED, MigrationStates.settle(MIGRATION_RUNNING, MIGRATION_ABORTED, false));
    assertEquals(MIGRATION_CANCELLED, MigrationStates.settle(MIGRATION_RUNNING, MIGRATION_CANCELLED, false));
    assertEquals(MIGRATION_ABORTED, MigrationStates.settle(MIGRATION_UNKNOWN, MIGRATION_ABORTED, false));
    // UNKNOWN -> CANCELLED is not a move: the guest may already be the target's.
    assertEquals(MIGRATION_UNKNOWN, MigrationStates.settle(MIGRATION_UNKNOWN, MIGRATION_CANCELLED, false));
  }

  @Test
  void settleLeavesAReportedUnknownUnknown() {
    assertEquals(MIGRATION_UNKNOWN, MigrationStates.settle(MIGRATION_RUNNING, MIGRATION_UNKNOWN, false));
    assertEquals(MIGRATION_UNKNOWN, MigrationStates.settle(MIGRATION_RUNNING, MIGRATION_UNKNOWN, true));
    assertEquals(MIGRATION_UNKNOWN, MigrationStates.settle(MIGRATION_UNKNOWN, MIGRATION_UNKNOWN, true));
    // A queued record has not run: it cannot have an unknown outcome.
    assertEquals(MIGRATION_QUEUED, MigrationStates.settle(MIGRATION_QUEUED, MIGRATION_UNKNOWN, false));
  }

  @Test
  void settleRefusesIllegalReports() {
    assertEquals(MIGRATION_QUEUED, MigrationStates.settle(MIGRATION_QUEUED, MIGRATION_COMPLETED, false));
    assertEquals(MIGRATION_QUEUED, MigrationStates.settle(MIGRATION_QUEUED, MIGRATION_STATE_UNSPECIFIED, false));
    assertEquals(MIGRATION_RUNNING, MigrationStates.settle(MIGRATION_RUNNING, MIGRATION_QUEUED, false));
    assertEquals(MIGRATION_RUNNING, MigrationStates.settle(MIGRATION_RUNNING, MIGRATION_STATE_UNSPECIFIED, true));
    assertEquals(MIGRATION_UNKNOWN, MigrationStates.settle(MIGRATION_UNKNOWN, MIGRATION_RUNNING, true));
    assertEquals(MIGRATION_RUNNING, MigrationStates.settle(MIGRATION_QUEUED, MIGRATION_RUNNING, false));
    assertEquals(MIGRATION_CANCELLED, MigrationStates.settle(MIGRATION_QUEUED, MIGRATION_CANCELLED, false));
  }

  /** Whatever settle returns is the current state or a legal move: it can never bypass the table. */
  @Test
  void settleNeverMakesAnIllegalMove() {
    for (MigrationState current : STATES) {
      for (MigrationState reported : STATES) {
        for (boolean committed : new boolean[] {false, true}) {
          MigrationState next = MigrationStates.settle(current, reported, committed);
          assertTrue(next == current || MigrationStates.canMove(current, next, committed),
              "settle(" + move(current, reported, committed) + ") = " + name(next));
        }
      }
    }
  }

  /**
   * Random agent reports (any state, including nonsense) and a commit that may land at any
   * point while the record is active. Once terminal a record never changes; once committed it
   * never ends ABORTED or CANCELLED; without a commit it never ends COMPLETED.
   */
  @Test
  void randomWalksKeepTheInvariants() {
    Map<String, Integer> endings = new TreeMap<>();
    for (int walk = 0; walk < WALKS; walk++) {
      long seed = SEED + walk;
      String ending = walk(seed);
      endings.merge(ending, 1, Integer::sum);
    }
    System.out.printf("migration state walks (seed %d): %d walks, endings %s%n", SEED, WALKS, endings);
    for (String expected : List.of("COMPLETED committed", "ABORTED uncommitted", "CANCELLED uncommitted",
        "UNKNOWN committed", "UNKNOWN uncommitted")) {
      assertTrue(endings.containsKey(expected), "seed " + SEED + ": no walk ended " + expected + ": " + endings);
    }
  }

  /** Walk seeds are consecutive: the failing walk is the first one when its seed is the base. */
  private static String replay(long seed) {
    return "walk seed " + seed + " (replay: -Dferry.states.seed=" + seed + ")";
  }

  private static String walk(long seed) {
    Random random = new Random(seed);
    MigrationState state = MIGRATION_QUEUED;
    boolean committed = false;
    List<String> trace = new ArrayList<>();
    trace.add(name(state));
    int steps = 1 + random.nextInt(WALK_STEPS_MAX);
    for (int step = 0; step < steps; step++) {
      String where = replay(seed) + ", step " + step + ": " + String.join(" ", trace);
      if (!committed && MigrationStates.isActive(state) && random.nextInt(5) == 0) {
        committed = true; // the cutover multi-op landed
        trace.add("[commit]");
        continue;
      }
      MigrationState reported = STATES.get(random.nextInt(STATES.size()));
      MigrationState next = MigrationStates.settle(state, reported, committed);
      trace.add("-(" + name(reported) + ")-> " + name(next));
      if (MigrationStates.isTerminal(state)) {
        assertEquals(state, next, where + ": a terminal record changed");
      }
      if (next != state) {
        assertTrue(MigrationStates.canMove(state, next, committed), where + ": illegal move to " + name(next));
      }
      if (committed) {
        assertNotEquals(MIGRATION_ABORTED, next, where + ": a committed migration ended aborted");
        assertNotEquals(MIGRATION_CANCELLED, next, where + ": a committed migration ended cancelled");
      }
      state = next;
    }
    String end = replay(seed) + ": " + String.join(" ", trace);
    assertTrue(MigrationStates.isActive(state) || MigrationStates.isTerminal(state), end + ": left the real states");
    if (committed) {
      assertFalse(state == MIGRATION_ABORTED || state == MIGRATION_CANCELLED, end + ": committed but ended " + name(state));
    } else {
      assertNotEquals(MIGRATION_COMPLETED, state, end + ": completed without a commit");
    }
    return name(state) + (committed ? " committed" : " uncommitted");
  }
}
