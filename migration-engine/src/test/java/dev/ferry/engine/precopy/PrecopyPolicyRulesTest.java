package dev.ferry.engine.precopy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.engine.precopy.PrecopyPolicy.Action;
import dev.ferry.engine.precopy.PrecopyPolicy.Decision;
import dev.ferry.engine.precopy.PrecopyPolicy.Observation;
import dev.ferry.engine.precopy.PrecopyPolicy.State;
import dev.ferry.proto.MigrationPolicy;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The pre-copy policy's thresholds one by one, each at its edge: when the throttle starts, when
 * the migration gives up, the round caps, the fitting rules and the expected downtime.
 * {@link PrecopyPolicyTest} covers the typical runs.
 */
class PrecopyPolicyRulesTest {
  private static final long MIB = 1L << 20;
  private static final long GIB = 1L << 30;
  /** 50 ms at 1 GB/s: the default downtime budget on this link is 50,000,000 bytes. */
  private static final long GB_PER_S = 1_000_000_000L;
  private static final long BUDGET = 50_000_000L;
  private final MigrationSettings defaults = MigrationSettings.defaults();

  private static Observation obs(int rounds, long remaining, long bandwidth) {
    return new Observation(rounds, remaining, bandwidth, 64 * MIB, 1_000_000_000L, GIB);
  }

  private Decision decide(State state, Observation o) {
    return PrecopyPolicy.decide(defaults, state, o);
  }

  // --- not converging: throttle, then give up ----------------------------------------------------

  @Test
  void theThrottleStartsAfterTwoRoundsWithoutProgress() {
    State state = State.initial();
    List<Action> actions = new ArrayList<>();
    for (int round = 1; round <= 3; round++) {
      Decision d = decide(state, obs(round, 500 * MIB, 100 * MIB));
      actions.add(d.action());
      state = d.next();
    }
    assertEquals(List.of(Action.CONTINUE, Action.CONTINUE, Action.THROTTLE), actions,
        "round 1 sets the first low; rounds 2 and 3 make no progress");
    assertEquals(defaults.throttleInitialPercent(), state.throttlePercent());
    assertEquals(0, state.stallRounds(), "a new throttle gets two rounds of its own");
  }

  /** Progress is a new low at least 10 % under the previous one; exactly 10 % under is not enough. */
  @Test
  void progressMeansTenPercentUnderTheBestSoFar() {
    State stalledOnce = new State(0, 1, 0, 100 * MIB, 100 * MIB);
    Decision tenPercent = decide(stalledOnce, obs(5, 90 * MIB, 100 * MIB));
    assertEquals(Action.THROTTLE, tenPercent.action(), "90 MiB is not under 90 % of 100 MiB");
    Decision more = decide(stalledOnce, obs(5, 90 * MIB - 1, 100 * MIB));
    assertEquals(Action.CONTINUE, more.action());
    assertEquals(0, more.next().stallRounds());
    assertEquals(90 * MIB - 1, more.next().bestRemainingBytes());
    assertEquals(90 * MIB - 1, more.next().previousRemainingBytes());
  }

  /** A worse round does not raise the low mark it must beat. */
  @Test
  void theBestRemainingIsKeptThroughWorseRounds() {
    State state = new State(0, 0, 0, 100 * MIB, 100 * MIB);
    Decision worse = decide(state, obs(5, 300 * MIB, 100 * MIB));
    assertEquals(Action.CONTINUE, worse.action());
    assertEquals(1, worse.next().stallRounds());
    assertEquals(100 * MIB, worse.next().bestRemainingBytes());
    assertEquals(300 * MIB, worse.next().previousRemainingBytes());
  }

  @Test
  void theThrottleRisesByItsStepAndStopsAtItsMaximum() {
    MigrationSettings settings = MigrationSettings.from(MigrationPolicy.newBuilder()
        .setThrottleInitialPercent(30).setThrottleStepPercent(25).setThrottleMaxPercent(70).build());
    State state = new State(0, 1, 0, 100 * MIB, 100 * MIB);
    List<Integer> throttles = new ArrayList<>();
    List<String> reasons = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      Decision d = PrecopyPolicy.decide(settings, new State(state.throttlePercent(), 1, 0, 100 * MIB, 100 * MIB),
          obs(5, 100 * MIB, 10 * MIB));
      assertEquals(Action.THROTTLE, d.action());
      throttles.add(d.next().throttlePercent());
      reasons.add(d.reason());
      state = d.next();
    }
    assertEquals(List.of(30, 55, 70), throttles);
    assertEquals(List.of("not converging: vCPU throttle 0% -> 30%", "not converging: vCPU throttle 30% -> 55%",
        "not converging: vCPU throttle 55% -> 70%"), reasons);
  }

  /**
   * At the maximum throttle, every two rounds without progress count one stall, as every two
   * raised the throttle before; the third such stall gives up (six rounds).
   */
  @Test
  void atTheMaximumThrottleTheMigrationGivesUpAfterThreeStalls() {
    State state = new State(defaults.throttleMaxPercent(), 0, 0, 100 * MIB, 100 * MIB);
    List<Action> actions = new ArrayList<>();
    List<Integer> stallsAtMax = new ArrayList<>();
    Decision d = null;
    for (int round = 10; round < 16; round++) {
      d = decide(state, obs(round, 100 * MIB, 10 * MIB));
      actions.add(d.action());
      stallsAtMax.add(d.next().stallRoundsAtMax());
      state = d.next();
    }
    assertEquals(List.of(Action.CONTINUE, Action.CONTINUE, Action.CONTINUE, Action.CONTINUE, Action.CONTINUE,
        Action.ABORT), actions);
    assertEquals(List.of(0, 1, 1, 2, 2, 3), stallsAtMax);
    assertEquals(defaults.throttleMaxPercent(), state.throttlePercent(), "the throttle stays at its maximum");
    assertEquals("did not converge: 100.0 MiB still dirty after 15 rounds at 99% vCPU throttle (dirty rate 64.0 MiB/s,"
        + " bandwidth 10.0 MiB/s), downtime budget 50 ms", d.reason());
  }

  @Test
  void progressAtTheMaximumThrottleKeepsTheMigrationGoing() {
    State state = new State(defaults.throttleMaxPercent(), 1, 2, 100 * MIB, 100 * MIB);
    Decision d = decide(state, obs(20, 80 * MIB, 10 * MIB));
    assertEquals(Action.CONTINUE, d.action());
    assertEquals(2, d.next().stallRoundsAtMax(), "stalls at the maximum are not forgiven");
    assertEquals(0, d.next().stallRounds());
  }

  // --- hard limits -----------------------------------------------------------------------------

  @Test
  void theTenThousandthRoundIsTheLast() {
    State state = new State(0, 0, 0, 100 * MIB, 100 * MIB);
    assertEquals(Action.CONTINUE, decide(state, obs(PrecopyPolicy.ROUNDS_MAX - 1, 80 * MIB, 100 * MIB)).action());
    Decision last = decide(state, obs(PrecopyPolicy.ROUNDS_MAX, 80 * MIB, 100 * MIB));
    assertEquals(Action.ABORT, last.action());
    assertEquals(state, last.next(), "giving up changes no state");
    assertEquals("round limit 10000 reached, 80.0 MiB still dirty after 10000 rounds at 0% vCPU throttle "
        + "(dirty rate 64.0 MiB/s, bandwidth 100.0 MiB/s)", last.reason());
    assertEquals(Action.ABORT, decide(state, obs(PrecopyPolicy.ROUNDS_MAX, 0, 100 * MIB)).action(),
        "even with nothing left: the cap is checked first");
  }

  @Test
  void theCompletionTimeoutIsExclusive() {
    long limitMillis = defaults.completionTimeoutMillis(GIB);
    State state = State.initial();
    Observation atLimit = new Observation(3, 80 * MIB, 100 * MIB, 0, limitMillis * 1_000_000L, GIB);
    assertEquals(Action.CONTINUE, decide(state, atLimit).action());
    Observation over = new Observation(3, 80 * MIB, 100 * MIB, 0, (limitMillis + 1) * 1_000_000L, GIB);
    Decision d = decide(state, over);
    assertEquals(Action.ABORT, d.action());
    assertEquals(state, d.next());
    assertEquals("completion timeout: not done after 120 s (120 s per GiB), 80.0 MiB still dirty after 3 rounds "
        + "at 0% vCPU throttle (dirty rate 0 B/s, bandwidth 100.0 MiB/s)", d.reason());
  }

  // --- the rest fits the downtime budget ---------------------------------------------------------

  @Test
  void exactlyTheBudgetFits() {
    State state = new State(0, 0, 0, BUDGET * 4, BUDGET * 4);
    assertEquals(Action.CONTINUE, decide(state, obs(3, BUDGET, GB_PER_S)).action(),
        "it fits, and the round before was four times as large: one more round");
    State steady = new State(0, 0, 0, BUDGET, BUDGET);
    assertEquals(Action.SWITCHOVER, decide(steady, obs(3, BUDGET, GB_PER_S)).action());
    assertEquals(Action.CONTINUE, decide(steady, obs(3, BUDGET + 1, GB_PER_S)).action(), "a byte over does not fit");
  }

  /** Under an eighth of the budget the pause is short enough: no more rounds even if they still halve. */
  @Test
  void anEighthOfTheBudgetIsComfortable() {
    State halving = new State(0, 0, 0, GIB, GIB);
    assertEquals(Action.SWITCHOVER, decide(halving, obs(3, BUDGET / 8, GB_PER_S)).action());
    assertEquals(Action.CONTINUE, decide(halving, obs(3, BUDGET / 8 + 1, GB_PER_S)).action());
  }

  @Test
  void aRoundHalvesWhenItLeavesAtMostHalfOfTheRoundBefore() {
    long remaining = 20_000_000L;
    assertEquals(Action.CONTINUE, decide(new State(0, 0, 0, GIB, 2 * remaining), obs(3, remaining, GB_PER_S)).action());
    assertEquals(Action.SWITCHOVER,
        decide(new State(0, 0, 0, GIB, 2 * remaining - 1), obs(3, remaining, GB_PER_S)).action(),
        "shrinking by less than half: another round would not buy much");
  }

  /** After 30 rounds a fitting rest switches over even if the rounds still halve. */
  @Test
  void thirtyRoundsAreEnoughWhenItFits() {
    State halving = new State(0, 0, 0, GIB, GIB);
    assertEquals(Action.CONTINUE, decide(halving, obs(PrecopyPolicy.ROUNDS_SOFT - 1, 20_000_000L, GB_PER_S)).action());
    assertEquals(Action.SWITCHOVER, decide(halving, obs(PrecopyPolicy.ROUNDS_SOFT, 20_000_000L, GB_PER_S)).action());
  }

  @Test
  void aFittingRoundResetsTheStallButKeepsTheThrottle() {
    State state = new State(40, 1, 2, 300_000_000L, 30_000_000L);
    Decision d = decide(state, obs(9, 20_000_000L, GB_PER_S));
    assertEquals(Action.SWITCHOVER, d.action());
    assertEquals(new State(40, 0, 2, 20_000_000L, 20_000_000L), d.next());
    assertEquals("", d.reason());
    Decision higher = decide(new State(40, 1, 2, 10_000_000L, 50_000_000L), obs(9, 20_000_000L, GB_PER_S));
    assertEquals(Action.CONTINUE, higher.action());
    assertEquals(new State(40, 0, 2, 10_000_000L, 20_000_000L), higher.next(), "the best stays the lower one");
  }

  @Test
  void theBudgetIsBandwidthTimesTheMaximumDowntime() {
    MigrationSettings slowPause = MigrationSettings.from(MigrationPolicy.newBuilder().setMaxDowntimeMs(1500).build());
    State steady = new State(0, 0, 0, GIB, 200 * MIB);
    // 1.5 s at 100 MiB/s is 150 MiB: the fractional second counts.
    assertEquals(Action.SWITCHOVER, PrecopyPolicy.decide(slowPause, steady, obs(4, 150 * MIB, 100 * MIB)).action());
    assertEquals(Action.CONTINUE, PrecopyPolicy.decide(slowPause, steady, obs(4, 150 * MIB + 1, 100 * MIB)).action());
  }

  // --- expected downtime -----------------------------------------------------------------------

  @Test
  void theExpectedDowntimeRoundsUp() {
    assertEquals(0, PrecopyPolicy.expectedDowntimeMillis(0, GB_PER_S));
    assertEquals(1, PrecopyPolicy.expectedDowntimeMillis(1, GB_PER_S));
    assertEquals(50, PrecopyPolicy.expectedDowntimeMillis(BUDGET, GB_PER_S));
    assertEquals(51, PrecopyPolicy.expectedDowntimeMillis(BUDGET + 1, GB_PER_S));
    assertEquals(51, decide(State.initial(), obs(3, BUDGET + 1, GB_PER_S)).expectedDowntimeMillis());
  }

  /** Without a measured bandwidth the pause is unknown, never 0 ms, unless nothing is left to send. */
  @Test
  void anUnknownBandwidthDoesNotPromiseAnInstantSwitchover() {
    assertEquals(Long.MAX_VALUE, PrecopyPolicy.expectedDowntimeMillis(4096, 0));
    assertEquals(Long.MAX_VALUE, PrecopyPolicy.expectedDowntimeMillis(4096, -1));
    Decision d = decide(State.initial(), obs(1, 4 * MIB, 0));
    assertNotEquals(Action.SWITCHOVER, d.action());
    assertEquals(Long.MAX_VALUE, d.expectedDowntimeMillis());
    Decision empty = decide(State.initial(), obs(1, 0, 0));
    assertEquals(Action.SWITCHOVER, empty.action());
    assertEquals(0, empty.expectedDowntimeMillis());
    assertTrue(decide(State.initial(), obs(1, 1, 0)).expectedDowntimeMillis() > 0);
  }
}
