package dev.ferry.engine.precopy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.common.InvalidConfigException;
import dev.ferry.engine.precopy.PrecopyPolicy.Action;
import dev.ferry.engine.precopy.PrecopyPolicy.Decision;
import dev.ferry.engine.precopy.PrecopyPolicy.Observation;
import dev.ferry.engine.precopy.PrecopyPolicy.State;
import dev.ferry.proto.CompressionMode;
import dev.ferry.proto.MigrationPolicy;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Assertions;

/** The pre-copy decision, a pure function: no clock, no guest, no socket. */
class PrecopyPolicyTest {
  private static final long MIB = 1L << 20;
  private static final long GIB = 1L << 30;
  private final MigrationSettings defaults = MigrationSettings.defaults();

  private static Observation obs(int rounds, long remaining, long bandwidth, long elapsedMillis) {
    return new Observation(rounds, remaining, bandwidth, 64 * MIB, elapsedMillis * 1_000_000L, GIB);
  }

  @Test
  void switchesOverWhenTheRestFitsTheDowntimeBudget() {
    // 1 GiB/s x 50 ms = 51.2 MiB budget; 4 MiB left is comfortable.
    Decision d = PrecopyPolicy.decide(defaults, State.initial(), obs(1, 4 * MIB, GIB, 500));
    assertEquals(Action.SWITCHOVER, d.action());
    assertEquals(4, d.expectedDowntimeMillis());
  }

  @Test
  void oneMoreShortRoundWhileRoundsStillHalveAndTheBudgetIsTight() {
    State state = new State(0, 0, 0, 200 * MIB, 200 * MIB);
    Decision d = PrecopyPolicy.decide(defaults, state, obs(2, 40 * MIB, GIB, 800));
    assertEquals(Action.CONTINUE, d.action(), "40 MiB fits 51 MiB but the last round shrank 5x");
    Decision next = PrecopyPolicy.decide(defaults, d.next(), obs(3, 30 * MIB, GIB, 850));
    assertEquals(Action.SWITCHOVER, next.action(), "no longer halving: go");
  }

  @Test
  void withoutProgressTheThrottleRisesInStepsThenTheMigrationAborts() {
    MigrationSettings settings = MigrationSettings.from(MigrationPolicy.newBuilder()
        .setThrottleInitialPercent(20).setThrottleStepPercent(10).setThrottleMaxPercent(99).build());
    State state = State.initial();
    List<Integer> throttles = new ArrayList<>();
    Decision d = null;
    for (int round = 1; round < 200; round++) {
      d = PrecopyPolicy.decide(settings, state, obs(round, 500 * MIB, 100 * MIB, round * 100L));
      state = d.next();
      if (d.action() == Action.THROTTLE) {
        throttles.add(state.throttlePercent());
      }
      if (d.action() == Action.ABORT) {
        break;
      }
    }
    assertEquals(List.of(20, 30, 40, 50, 60, 70, 80, 90, 99), throttles);
    assertEquals(Action.ABORT, d.action());
    assertTrue(d.reason().startsWith("did not converge: 500.0 MiB still dirty"), d.reason());
    assertTrue(d.reason().contains("at 99% vCPU throttle"), d.reason());
  }

  @Test
  void progressResetsTheStallCount() {
    State state = new State(0, 1, 0, 100 * MIB, 100 * MIB);
    Decision d = PrecopyPolicy.decide(defaults, state, obs(3, 80 * MIB, 100 * MIB, 1000));
    assertEquals(Action.CONTINUE, d.action());
    assertEquals(0, d.next().stallRounds(), "80 MiB is a new low, 20% under the last");
  }

  @Test
  void theCompletionTimeoutAbortsWhateverElseHappens() {
    MigrationSettings settings = MigrationSettings.from(MigrationPolicy.newBuilder()
        .setCompletionTimeoutMsPerGib(40_000).build());
    Decision d = PrecopyPolicy.decide(settings, State.initial(), obs(5, MIB, GIB, 40_001));
    assertEquals(Action.ABORT, d.action());
    assertTrue(d.reason().startsWith("completion timeout: not done after 40 s"), d.reason());
  }

  @Test
  void anUnknownBandwidthNeverSwitchesOverBlindly() {
    Decision d = PrecopyPolicy.decide(defaults, State.initial(), obs(1, 4 * MIB, 0, 10));
    assertFalse(d.action() == Action.SWITCHOVER);
    assertEquals(Action.SWITCHOVER, PrecopyPolicy.decide(defaults, State.initial(), obs(1, 0, 0, 10)).action(),
        "nothing left to send: go");
  }

  /** Seeded: whatever the statistics, the policy stops within its bounds, and never switches over beyond budget. */
  @Test
  void overRandomRunsThePolicyAlwaysEndsWithinItsBounds() {
    for (long seed = 1; seed <= 2000; seed++) {
      SplittableRandom r = new SplittableRandom(seed);
      MigrationSettings settings = MigrationSettings.from(MigrationPolicy.newBuilder()
          .setMaxDowntimeMs(1 + r.nextInt(1000))
          .setThrottleInitialPercent(1 + r.nextInt(50)).setThrottleStepPercent(1 + r.nextInt(30))
          .setThrottleMaxPercent(60 + r.nextInt(40)).build());
      State state = State.initial();
      long elapsed = 0;
      int round = 0;
      Decision d;
      do {
        round++;
        elapsed += r.nextInt(2_000);
        long bandwidth = r.nextInt(10) == 0 ? 0 : (1 + r.nextInt(4096)) * MIB;
        long remaining = r.nextInt(5) == 0 ? 0 : (long) (r.nextDouble() * 2 * GIB);
        d = PrecopyPolicy.decide(settings, state, new Observation(round, remaining, bandwidth, 0, elapsed * 1_000_000L, GIB));
        state = d.next();
        if (d.action() == Action.SWITCHOVER) {
          long budget = (long) (bandwidth * settings.maxDowntimeMillis() / 1000.0);
          long seedCopy = seed;
          Assertions.assertTrue(remaining <= budget || remaining == 0,
              () -> "seed " + seedCopy + ": switched over with " + remaining + " bytes over a budget of " + budget);
        }
      } while (d.action() == Action.CONTINUE || d.action() == Action.THROTTLE);
      long limit = settings.completionTimeoutMillis(GIB);
      long seedCopy = seed;
      long elapsedCopy = elapsed;
      int rounds = round;
      Assertions.assertTrue(elapsed <= limit + 2_000 && round <= PrecopyPolicy.ROUNDS_MAX,
          () -> "seed " + seedCopy + ": ran " + elapsedCopy + " ms and " + rounds + " rounds");
    }
  }

  @Test
  void settingsFillDefaultsAndNameTheBadField() {
    MigrationSettings s = MigrationSettings.defaults();
    assertEquals(50, s.maxDowntimeMillis());
    assertEquals(CompressionMode.COMPRESSION_AUTO, s.compression());
    assertEquals(20, s.throttleInitialPercent());
    assertEquals(99, s.throttleMaxPercent());
    assertEquals(120_000, s.completionTimeoutMillis(GIB));
    assertEquals(MigrationSettings.COMPLETION_TIMEOUT_MILLIS_MIN, s.completionTimeoutMillis(16 * MIB));
    assertField("policy.max_downtime_ms", MigrationPolicy.newBuilder().setMaxDowntimeMs(60_001));
    assertField("policy.bandwidth_bytes_per_s", MigrationPolicy.newBuilder().setBandwidthBytesPerS(1000));
    assertField("policy.progress_timeout_ms", MigrationPolicy.newBuilder().setProgressTimeoutMs(10));
    assertField("policy.throttle_max_percent", MigrationPolicy.newBuilder().setThrottleMaxPercent(100));
    assertField("policy.throttle_initial_percent", MigrationPolicy.newBuilder().setThrottleInitialPercent(50)
        .setThrottleMaxPercent(40));
    assertField("policy.compression", MigrationPolicy.newBuilder().setCompressionValue(42));
  }

  private static void assertField(String field, MigrationPolicy.Builder policy) {
    InvalidConfigException e = Assertions.assertThrows(InvalidConfigException.class,
        () -> MigrationSettings.from(policy.build()));
    assertEquals(field, e.field(), e.getMessage());
  }

  @Test
  void phasesMoveOnlyAlongTheirLegalTransitions() {
    assertTrue(MigrationPhase.SETUP.canMoveTo(MigrationPhase.PRECOPY));
    assertTrue(MigrationPhase.CUTOVER.canMoveTo(MigrationPhase.UNKNOWN));
    assertFalse(MigrationPhase.CUTOVER.canMoveTo(MigrationPhase.CANCELLED), "no cancel after the commit");
    assertFalse(MigrationPhase.COMPLETED.canMoveTo(MigrationPhase.ABORTED));
    assertFalse(MigrationPhase.PRECOPY.canMoveTo(MigrationPhase.CUTOVER), "no commit without stop-and-copy");
    Assertions.assertThrows(IllegalStateException.class, () -> MigrationPhase.ABORTED.moveTo(MigrationPhase.PRECOPY));
    for (MigrationPhase p : MigrationPhase.values()) {
      assertEquals(p, MigrationPhase.fromProto(p.toProto()));
      boolean hasNext = java.util.Arrays.stream(MigrationPhase.values()).anyMatch(p::canMoveTo);
      assertEquals(p.isTerminal(), !hasNext, p + ": terminal phases, and only they, lead nowhere");
    }
  }
}
