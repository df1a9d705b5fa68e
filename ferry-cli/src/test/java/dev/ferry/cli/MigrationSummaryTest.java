package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.common.MigrationOutput;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationProgress;
import dev.ferry.proto.MigrationReport;
import dev.ferry.proto.PauseStep;
import org.junit.jupiter.api.Test;

/** What the operator reads about the pause: the budget's split live, and where the pause went. */
class MigrationSummaryTest {

  @Test
  void theLiveLineShowsTheBudgetSplit() {
    String line = MigrationOutput.progressLine(MigrationProgress.newBuilder().setPhase(MigrationPhase.PHASE_PRECOPY)
        .setDowntimeBudgetMs(50).setCommitReserveMs(12).build());
    assertTrue(line.contains("(budget 50 ms: 38 for pages, 12 for the commit)"), line);
  }

  @Test
  void aPauseOverBudgetSaysByHowMuchAndItsLargestStep() {
    MigrationReport r = MigrationReport.newBuilder().setDowntimeNs(57_300_000).setDowntimeBudgetMs(50)
        .setCommitReserveMs(12).setOverBudgetUs(7_300).setLargestPauseStep("commit")
        .addPauseSteps(PauseStep.newBuilder().setName("final_copy").setMicros(5_000))
        .addPauseSteps(PauseStep.newBuilder().setName("commit").setMicros(52_300)).build();
    assertEquals("pause 57.3 ms (budget 50 ms: 38 for pages, 12 for the commit): final_copy 5.00, commit 52.30 ms;"
        + " OVER the budget by 7.3 ms, largest step commit", MigrationOutput.pauseLine(r));
    assertEquals("", MigrationOutput.pauseLine(MigrationReport.getDefaultInstance()), "no steps, no line");
  }
}
