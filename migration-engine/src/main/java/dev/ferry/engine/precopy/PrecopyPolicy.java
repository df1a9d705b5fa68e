package dev.ferry.engine.precopy;

import dev.ferry.common.Sizes;

/**
 * The pre-copy decision after each round, as a pure function of the round's statistics: go on,
 * throttle the vCPUs harder, switch over, or give up. No clock, no socket, no guest — the seeded
 * simulation drives it over millions of random rounds.
 *
 * <ul>
 *   <li>Switch over when the bytes still dirty fit {@code bandwidth x max-downtime}; while a
 *       round still halves what is left and the budget is not yet comfortable, one more short
 *       round buys a shorter pause.
 *   <li>Progress means a new low of the dirty bytes, at least 10 % under the previous low. Two
 *       rounds without progress raise the vCPU throttle (auto-converge: the initial step, then
 *       +step, up to the maximum).
 *   <li>At the maximum throttle, three more rounds without progress abort, as do the completion
 *       timeout and the round cap. Nothing iterates forever.
 * </ul>
 */
public final class PrecopyPolicy {
  public static final int ROUNDS_MAX = 10_000;
  /** After this many rounds a fitting dirty set switches over even if it still shrinks. */
  static final int ROUNDS_SOFT = 30;
  static final int STALL_ROUNDS_BEFORE_THROTTLE = 2;
  static final int STALL_ROUNDS_AT_MAX_BEFORE_ABORT = 3;
  static final double PROGRESS_FACTOR = 0.9;

  private PrecopyPolicy() {}

  /** What the policy remembers between rounds. */
  public record State(int throttlePercent, int stallRounds, int stallRoundsAtMax,
      long bestRemainingBytes, long previousRemainingBytes) {
    public static State initial() {
      return new State(0, 0, 0, Long.MAX_VALUE, Long.MAX_VALUE);
    }
  }

  /** The statistics after a round: {@code remainingBytes} are dirty now and must go next. */
  public record Observation(int roundsDone, long remainingBytes, long bandwidthBytesPerSecond,
      long dirtyRateBytesPerSecond, long elapsedNanos, long memoryBytes) {}

  public enum Action { CONTINUE, THROTTLE, SWITCHOVER, ABORT }

  public record Decision(Action action, State next, String reason, long expectedDowntimeMillis) {}

  public static Decision decide(MigrationSettings settings, State state, Observation o) {
    long expectedMillis = expectedDowntimeMillis(o.remainingBytes(), o.bandwidthBytesPerSecond());
    long limitMillis = settings.completionTimeoutMillis(o.memoryBytes());
    if (o.elapsedNanos() / 1_000_000L > limitMillis) {
      return abort(state, expectedMillis, "completion timeout: not done after " + limitMillis / 1000 + " s ("
          + settings.completionTimeoutMillisPerGib() / 1000 + " s per GiB), " + describe(o, state));
    }
    if (o.roundsDone() >= ROUNDS_MAX) {
      return abort(state, expectedMillis, "round limit " + ROUNDS_MAX + " reached, " + describe(o, state));
    }
    long budgetBytes = (long) (o.bandwidthBytesPerSecond() * (settings.maxDowntimeMillis() / 1000.0));
    if (o.remainingBytes() == 0 || o.remainingBytes() <= budgetBytes) {
      return decideWhenFitting(state, o, budgetBytes, expectedMillis);
    }
    boolean progress = o.remainingBytes() < state.bestRemainingBytes() * PROGRESS_FACTOR;
    long best = Math.min(state.bestRemainingBytes(), o.remainingBytes());
    int stall = progress ? 0 : state.stallRounds() + 1;
    if (stall < STALL_ROUNDS_BEFORE_THROTTLE) {
      return new Decision(Action.CONTINUE,
          new State(state.throttlePercent(), stall, state.stallRoundsAtMax(), best, o.remainingBytes()),
          "", expectedMillis);
    }
    if (state.throttlePercent() < settings.throttleMaxPercent()) {
      int throttle = state.throttlePercent() == 0
          ? settings.throttleInitialPercent()
          : Math.min(settings.throttleMaxPercent(), state.throttlePercent() + settings.throttleStepPercent());
      return new Decision(Action.THROTTLE, new State(throttle, 0, 0, best, o.remainingBytes()),
          "not converging: vCPU throttle " + state.throttlePercent() + "% -> " + throttle + "%", expectedMillis);
    }
    int atMax = state.stallRoundsAtMax() + 1;
    State next = new State(state.throttlePercent(), 0, atMax, best, o.remainingBytes());
    if (atMax >= STALL_ROUNDS_AT_MAX_BEFORE_ABORT) {
      return new Decision(Action.ABORT, next, "did not converge: " + describe(o, state)
          + ", downtime budget " + settings.maxDowntimeMillis() + " ms", expectedMillis);
    }
    return new Decision(Action.CONTINUE, next, "", expectedMillis);
  }

  private static Decision decideWhenFitting(State state, Observation o, long budgetBytes, long expectedMillis) {
    boolean comfortable = o.remainingBytes() <= budgetBytes / 8;
    boolean halving = o.remainingBytes() <= state.previousRemainingBytes() / 2;
    State next = new State(state.throttlePercent(), 0, state.stallRoundsAtMax(),
        Math.min(state.bestRemainingBytes(), o.remainingBytes()), o.remainingBytes());
    if (o.remainingBytes() == 0 || comfortable || !halving || o.roundsDone() >= ROUNDS_SOFT) {
      return new Decision(Action.SWITCHOVER, next, "", expectedMillis);
    }
    return new Decision(Action.CONTINUE, next, "", expectedMillis);
  }

  private static Decision abort(State state, long expectedMillis, String reason) {
    return new Decision(Action.ABORT, state, reason, expectedMillis);
  }

  public static long expectedDowntimeMillis(long remainingBytes, long bandwidthBytesPerSecond) {
    if (remainingBytes == 0) {
      return 0;
    }
    if (bandwidthBytesPerSecond <= 0) {
      return Long.MAX_VALUE;
    }
    return (long) Math.ceil(remainingBytes * 1000.0 / bandwidthBytesPerSecond);
  }

  private static String describe(Observation o, State state) {
    return Sizes.formatBytes(o.remainingBytes()) + " still dirty after " + o.roundsDone() + " rounds at "
        + state.throttlePercent() + "% vCPU throttle (dirty rate " + Sizes.formatRate(o.dirtyRateBytesPerSecond())
        + ", bandwidth " + Sizes.formatRate(o.bandwidthBytesPerSecond()) + ")";
  }
}
