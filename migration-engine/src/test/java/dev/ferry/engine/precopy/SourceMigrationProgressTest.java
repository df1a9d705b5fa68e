package dev.ferry.engine.precopy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.common.MigrationOutput;
import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.guest.Guest;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationProgress;
import dev.ferry.proto.MigrationReport;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** What the source reports while it migrates, as operators see it. */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class SourceMigrationProgressTest {
  /**
   * Before the first round is measured the link's bandwidth is unknown, and so is the pause: the
   * progress must say so instead of promising 0 ms. Once a round is measured it gives a number.
   */
  @Test
  void theExpectedDowntimeIsUnknownUntilTheBandwidthIsMeasured() {
    Guest source = Guest.boot(MigrationContractTest.spec("progress", 4L << 20), Clock.SYSTEM);
    RecordingHost host = new RecordingHost(Clock.SYSTEM, false);
    try {
      InMemoryLink link = new InMemoryLink(Clock.SYSTEM, LockSupport::parkNanos, bytes -> { });
      link.connect(new TargetMigration(host, link.targetEnd, Clock.SYSTEM));
      List<MigrationProgress> progress = new CopyOnWriteArrayList<>();
      MigrationReport report = new SourceMigration("m-progress", "source", source, link,
          MigrationSettings.defaults(), Clock.SYSTEM, progress::add, MigrationFailpoints.NONE).run();
      assertEquals(MigrationPhase.PHASE_COMPLETED, report.getPhase(), report.getReason());

      MigrationProgress first = progress.get(0);
      assertTrue(first.getBytesRemaining() > 0);
      assertFalse(first.hasExpectedDowntimeMs(), "nothing measured yet: " + first);
      assertTrue(MigrationOutput.progressLine(first).contains("downtime unknown"), MigrationOutput.progressLine(first));
      MigrationProgress measured = progress.stream().filter(MigrationProgress::hasExpectedDowntimeMs).findFirst()
          .orElseThrow(() -> new AssertionError("no progress after the first round: " + progress));
      assertTrue(MigrationOutput.progressLine(measured).contains("downtime ~" + measured.getExpectedDowntimeMs() + " ms"),
          MigrationOutput.progressLine(measured));
    } finally {
      source.destroy();
      if (host.running != null) {
        host.running.destroy();
      }
    }
  }
}
