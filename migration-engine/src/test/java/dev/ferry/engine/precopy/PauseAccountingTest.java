package dev.ferry.engine.precopy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.proto.MigrationReport;
import dev.ferry.proto.PauseStep;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The pause's steps, the downtime budget's split and the reserve learned from recent commits. */
class PauseAccountingTest {

  private static Map<String, Long> measured(long... nanos) {
    Map<String, Long> m = new LinkedHashMap<>();
    String[] names = {PauseSteps.FINAL_COPY, PauseSteps.TARGET_VERIFY, PauseSteps.COMMIT,
        PauseSteps.RESUME};
    for (int i = 0; i < nanos.length; i++) {
      m.put(names[i], nanos[i]);
    }
    return m;
  }

  @Test
  void otherIsWhatTheMeasuredStepsLeaveOfTheDowntime() {
    List<PauseStep> steps = PauseSteps.account(10_000_000, measured(2_000_500, 400_000, 4_000_000, 600_999));
    assertEquals(List.of(2000L, 400L, 4000L, 600L, 3000L), steps.stream().map(PauseStep::getMicros).toList());
    assertEquals(PauseSteps.OTHER, steps.get(4).getName());
    assertEquals(10_000, PauseSteps.totalMicros(steps), "the steps add up to the downtime");
  }

  @Test
  void stepsThatOverfillTheDowntimeLeaveNoNegativeRest() {
    List<PauseStep> steps = PauseSteps.account(1_000_000, measured(800_000, 700_000, -5));
    assertEquals(List.of(800L, 700L, 0L, 0L), steps.stream().map(PauseStep::getMicros).toList());
  }

  @Test
  void theLargestStepIsTheFirstOfTheLongest() {
    List<PauseStep> steps = PauseSteps.account(9_000_000, measured(1_000_000, 4_000_000, 4_000_000));
    assertEquals(PauseSteps.TARGET_VERIFY, PauseSteps.largest(steps).getName());
  }

  @Test
  void theBudgetGivesTheCommitItsReserveAndThePagesTheRest() {
    DowntimeBudget b = DowntimeBudget.split(50, 12);
    assertEquals(38, b.pagesMillis());
    assertEquals(12, b.commitMillis());
    assertEquals("budget 50 ms: 38 for pages, 12 for the commit", b.describe());
    assertEquals(50, DowntimeBudget.split(50, 0).pagesMillis());
    assertEquals(50, DowntimeBudget.split(50, -3).pagesMillis(), "a negative reserve is none");
  }

  @Test
  void aSlowCommitNeverTakesMoreThanHalfTheBudget() {
    assertEquals(25, DowntimeBudget.split(50, 40).pagesMillis());
    assertEquals(25, DowntimeBudget.split(50, 40).commitMillis());
    assertEquals(1, DowntimeBudget.split(1, 5).pagesMillis(), "an odd budget rounds the pages' half up");
    assertEquals(26, MigrationSettings.defaults().withMaxDowntimeMillis(51).reservingForSwitchover(100).maxDowntimeMillis());
  }

  @Test
  void theReserveIsTheMedianOfRecentCommitsRoundedUp() {
    CommitCostHistory h = new CommitCostHistory();
    assertEquals(7, h.reserveMillis(7), "before any commit the estimate stands");
    h.record(4_500);   // 4.5 ms
    h.record(11_000);  // 11 ms
    h.record(2_100);   // 2.1 ms
    assertEquals(5, h.reserveMillis(7), "the median of 2.1, 4.5 and 11 ms, rounded up");
    for (int i = 0; i < CommitCostHistory.SAMPLES_MAX; i++) {
      h.record(20_000);
    }
    assertEquals(CommitCostHistory.SAMPLES_MAX, h.size(), "only the recent commits count");
    assertEquals(20, h.reserveMillis(7));
  }

  @Test
  void aPauseOverTheBudgetSaysByHowMuchAndWhichStepWasLargest() {
    MigrationReport.Builder r = MigrationReport.newBuilder().setDowntimeNs(57_300_000)
        .addAllPauseSteps(PauseSteps.account(57_300_000, measured(5_000_000, 1_000_000, 42_000_000, 300_000)));
    SourceMigration.overBudget(r, 50);
    assertEquals(7_300, r.getOverBudgetUs());
    assertEquals(PauseSteps.COMMIT, r.getLargestPauseStep());

    MigrationReport.Builder within = MigrationReport.newBuilder().setDowntimeNs(50_000_000)
        .addAllPauseSteps(PauseSteps.account(50_000_000, measured(50_000_000)));
    SourceMigration.overBudget(within, 50);
    assertEquals(0, within.getOverBudgetUs());
    assertTrue(within.getLargestPauseStep().isEmpty());
  }
}
