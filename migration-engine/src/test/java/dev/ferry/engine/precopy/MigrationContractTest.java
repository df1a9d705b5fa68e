package dev.ferry.engine.precopy;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.guest.Guest;
import dev.ferry.proto.ContentMix;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationPolicy;
import dev.ferry.proto.MigrationReport;
import dev.ferry.proto.WorkloadSpec;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * What every source link must do, written once and run over each transport by one-line
 * subclasses (in memory here, Netty over loopback in the transport package): a real running guest
 * moves and its memory arrives exactly; a cancel, a refusal, corruption and a lost connection each
 * end the migration with the guest running on the source only.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
public abstract class MigrationContractTest {

  /** Connects a source link to a target that feeds {@code host}. */
  public interface Connector extends AutoCloseable {
    SourceLink connect(Guest source, RecordingHost host);

    /** From now on, flip one bit in the first raw page of every batch on the wire. */
    void corruptPages();

    /** Drops the connection as a network failure would. */
    void breakLink();

    @Override
    void close();
  }

  protected abstract Connector connector();

  private Guest source;
  private RecordingHost host;
  private Connector connector;

  @AfterEach
  void tearDown() {
    if (source != null) {
      source.destroy();
    }
    if (host != null && host.running != null) {
      host.running.destroy();
    }
    if (connector != null) {
      connector.close();
    }
  }

  static GuestSpec spec(String name, long dirtyRate) {
    return GuestSpec.newBuilder().setName(name).setMemoryBytes(32L << 20).setVcpus(2)
        .setWorkload(WorkloadSpec.newBuilder().setDirtyRateBytesPerS(dirtyRate).setWorkingSetBytes(8L << 20)
            .setHotSetPercent(20).setHotAccessPercent(80)
            .setContent(ContentMix.newBuilder().setZeroPercent(30).setTextPercent(40).setRandomPercent(30))
            .setSeed(7))
        .build();
  }

  private MigrationReport migrate(MigrationPolicy policy, MigrationFailpoints failpoints) {
    connector = connector();
    host = new RecordingHost(Clock.SYSTEM, false);
    SourceLink link = connector.connect(source, host);
    SourceMigration migration = new SourceMigration("m-00000001", "source", source, link,
        MigrationSettings.from(policy), Clock.SYSTEM, p -> { }, failpoints);
    cancelHook = migration;
    return migration.run();
  }

  private SourceMigration cancelHook;

  @Test
  void aRunningGuestArrivesWithMemoryIdenticalToTheSourceAtPause() throws Exception {
    source = Guest.boot(spec("busy", 16L << 20), Clock.SYSTEM);
    awaitSteps(source, 100);
    MigrationReport report = migrate(MigrationPolicy.newBuilder().setDigest(true).build(), MigrationFailpoints.NONE);

    assertEquals(MigrationPhase.PHASE_COMPLETED, report.getPhase(), report.getReason());
    assertEquals(Guest.State.PAUSED, source.state(), "the source never resumes after the commit");
    assertNotNull(host.running);
    byte[] targetDigest = host.digest.get(60, TimeUnit.SECONDS);
    assertArrayEquals(report.getSourceDigest().toByteArray(), targetDigest, "memory at resume == memory at pause");
    long stepsAtPause = report.getStateAtPause().getVcpusList().stream().mapToLong(v -> v.getStep()).sum();
    assertTrue(stepsAtPause > 0);
    awaitSteps(host.running, stepsAtPause + 10);
    assertTrue(report.getDowntimeNs() > 0, "downtime measured");
    assertPauseStepsAddUpToTheDowntime(report);
  }

  /** Every step is there, in order, and together they are the measured downtime (to rounding). */
  static void assertPauseStepsAddUpToTheDowntime(MigrationReport report) {
    assertEquals(java.util.List.of(PauseSteps.STOP, PauseSteps.FINAL_COPY, PauseSteps.TARGET_VERIFY, PauseSteps.COMMIT,
        PauseSteps.RESUME, PauseSteps.OTHER),
        report.getPauseStepsList().stream().map(dev.ferry.proto.PauseStep::getName).toList());
    long sum = PauseSteps.totalMicros(report.getPauseStepsList());
    // Each measured step is truncated to whole microseconds on its own; "other" takes the rest.
    assertTrue(Math.abs(sum - report.getDowntimeNs() / 1000) <= report.getPauseStepsCount(),
        "steps " + report.getPauseStepsList() + " add up to " + sum + " us, downtime " + report.getDowntimeNs() / 1000);
    assertTrue(report.getPauseSteps(1).getMicros() > 0, "the final copy is timed");
    assertEquals(MigrationSettings.MAX_DOWNTIME_MILLIS_DEFAULT, report.getDowntimeBudgetMs());
  }

  private MigrationReport migrateWithSecrets(byte[] sourceSecret, byte[] targetSecret) {
    connector = connector();
    host = new RecordingHost(Clock.SYSTEM, false);
    host.secret = targetSecret;
    SourceLink link = connector.connect(source, host);
    return new SourceMigration("m-00000002", "source", source, link, MigrationSettings.defaults(), Clock.SYSTEM,
        p -> { }, MigrationFailpoints.NONE, sourceSecret, CutoverAuthority.LOCAL).run();
  }

  @Test
  void agentsThatShareTheMigrationSecretMigrate() {
    source = Guest.boot(spec("trusted", 4L << 20), Clock.SYSTEM);
    byte[] secret = MigrationSecrets.newSecret();
    MigrationReport report = migrateWithSecrets(secret, secret.clone());
    assertEquals(MigrationPhase.PHASE_COMPLETED, report.getPhase(), report.getReason());
  }

  @Test
  void aTargetThatCannotProveTheSecretGetsNoPage() {
    source = Guest.boot(spec("guarded", 4L << 20), Clock.SYSTEM);
    MigrationReport report = migrateWithSecrets(MigrationSecrets.newSecret(), null);
    assertEquals(MigrationPhase.PHASE_ABORTED, report.getPhase());
    assertTrue(report.getReason().contains("could not prove the migration's secret"), report.getReason());
    assertEquals(0, report.getGuestBytesSent(), "not one page left the source");
    assertSourceRunsAlone();
  }

  @Test
  void aSourceThatCannotProveTheSecretCannotPushPages() {
    source = Guest.boot(spec("intruder", 4L << 20), Clock.SYSTEM);
    MigrationReport report = migrateWithSecrets(null, MigrationSecrets.newSecret());
    assertEquals(MigrationPhase.PHASE_ABORTED, report.getPhase());
    assertTrue(report.getReason().contains("the source could not prove the migration's secret"), report.getReason());
    assertNull(host.admitted, "nothing reserved or allocated for a source that proved nothing");
    assertSourceRunsAlone();
  }

  @Test
  void aWrongSecretIsRefused() {
    source = Guest.boot(spec("mismatch", 4L << 20), Clock.SYSTEM);
    MigrationReport report = migrateWithSecrets(MigrationSecrets.newSecret(), MigrationSecrets.newSecret());
    assertEquals(MigrationPhase.PHASE_ABORTED, report.getPhase());
    assertTrue(report.getReason().contains("could not prove the migration's secret"), report.getReason());
    assertSourceRunsAlone();
  }

  @Test
  void cancelBeforeTheCommitLeavesTheGuestRunningOnTheSourceOnly() {
    source = Guest.boot(spec("cancelled", 16L << 20), Clock.SYSTEM);
    MigrationReport report = migrate(MigrationPolicy.getDefaultInstance(), point -> {
      if (point == MigrationFailpoints.Point.AFTER_ROUND) {
        cancelHook.cancel("operator changed their mind");
      }
    });
    assertEquals(MigrationPhase.PHASE_CANCELLED, report.getPhase());
    assertEquals("operator changed their mind", report.getReason());
    assertSourceRunsAlone();
  }

  @Test
  void aRefusingTargetAbortsWithItsReason() {
    source = Guest.boot(spec("refused", 0), Clock.SYSTEM);
    connector = connector();
    host = new RecordingHost(Clock.SYSTEM, false);
    host.refuseHello = true;
    SourceMigration migration = new SourceMigration("m-0000000a", "source", source, connector.connect(source, host),
        MigrationSettings.defaults(), Clock.SYSTEM, p -> { }, MigrationFailpoints.NONE);
    MigrationReport report = migration.run();
    assertEquals(MigrationPhase.PHASE_ABORTED, report.getPhase());
    assertEquals("target refused: host target is full", report.getReason());
    assertEquals(Guest.State.RUNNING, source.state());
  }

  @Test
  void aTargetRefusingAfterTheProofAbortsWithItsReason() {
    source = Guest.boot(spec("refused-late", 4L << 20), Clock.SYSTEM);
    connector = connector();
    host = new RecordingHost(Clock.SYSTEM, false);
    host.refuseNext = true;
    SourceMigration migration = new SourceMigration("m-0000000b", "source", source, connector.connect(source, host),
        MigrationSettings.defaults(), Clock.SYSTEM, p -> { }, MigrationFailpoints.NONE);
    MigrationReport report = migration.run();
    assertEquals(MigrationPhase.PHASE_ABORTED, report.getPhase());
    assertEquals("target aborted: host target is full", report.getReason());
    assertSourceRunsAlone();
  }

  @Test
  void corruptedPagesAbortTheMigrationAndTheSourceKeepsRunning() {
    source = Guest.boot(spec("corrupted", 0), Clock.SYSTEM);
    connector = connector();
    host = new RecordingHost(Clock.SYSTEM, false);
    SourceLink link = connector.connect(source, host);
    connector.corruptPages();
    MigrationReport report = new SourceMigration("m-00000003", "source", source, link,
        MigrationSettings.from(MigrationPolicy.newBuilder().setCompression(
            dev.ferry.proto.CompressionMode.COMPRESSION_OFF).build()),
        Clock.SYSTEM, p -> { }, MigrationFailpoints.NONE).run();
    // An idle guest resends nothing, so the damaged pages of round 0 are still suspect at the end.
    assertEquals(MigrationPhase.PHASE_ABORTED, report.getPhase(), report.getReason());
    assertTrue(report.getReason().contains("failed their checksum"), report.getReason());
    assertSourceRunsAlone();
  }

  @Test
  void aLostConnectionAbortsAndTheSourceKeepsRunning() {
    source = Guest.boot(spec("disconnected", 16L << 20), Clock.SYSTEM);
    MigrationReport report = migrate(MigrationPolicy.getDefaultInstance(), point -> {
      if (point == MigrationFailpoints.Point.AFTER_PAUSE) {
        connector.breakLink();
      }
    });
    assertEquals(MigrationPhase.PHASE_ABORTED, report.getPhase());
    assertTrue(report.getReason().startsWith("link to target lost"), report.getReason());
    assertSourceRunsAlone();
  }

  private void assertSourceRunsAlone() {
    assertEquals(Guest.State.RUNNING, source.state(), "the source guest runs again");
    assertEquals(0, source.throttlePercent());
    assertNull(host.running, "the target never resumed");
    if (host.admitted != null) {
      awaitFreed(host);
    }
    if (source.spec().getWorkload().getDirtyRateBytesPerS() > 0) {
      awaitSteps(source, source.steps() + 10);
    }
  }

  private static void awaitFreed(RecordingHost host) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!host.admitted.memory().isFreed()) {
      assertTrue(System.nanoTime() < deadline, "the target's copy was not freed");
      LockSupport.parkNanos(1_000_000);
    }
  }

  static void awaitSteps(Guest guest, long steps) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (guest.steps() < steps) {
      assertTrue(System.nanoTime() < deadline, "guest " + guest.name() + " did not reach step " + steps);
      LockSupport.parkNanos(1_000_000);
    }
  }
}
