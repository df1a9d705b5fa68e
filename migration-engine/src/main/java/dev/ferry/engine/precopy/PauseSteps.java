package dev.ferry.engine.precopy;

import dev.ferry.proto.PauseStep;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Where a pause went, step by step. The measured steps are disjoint intervals inside the pause
 * (each timed on the side that runs it); "other" is what they leave of the measured downtime
 * (thread hand-offs, message hops), so the steps add up to the downtime to the microsecond.
 */
public final class PauseSteps {
  /**
   * From the last vCPU step on the source to all its vCPUs stopped: the pause request reaching
   * them, plus whatever gap the guest's own pacing left after its last step.
   */
  public static final String STOP = "stop";
  /** The source sends the last dirty pages and the vCPU state. */
  public static final String FINAL_COPY = "final_copy";
  /** The target checks the page count and checksums and restores the vCPU state. */
  public static final String TARGET_VERIFY = "target_verify";
  /**
   * The target commits the move (in a cluster: the ZooKeeper multi-op, whose answer is also its
   * proof: no confirmation step follows).
   */
  public static final String COMMIT = "commit";
  /** The target resumes the vCPUs, up to their first step. */
  public static final String RESUME = "resume";
  public static final String OTHER = "other";

  private PauseSteps() {}

  /**
   * The steps of a pause of {@code downtimeNanos}: each of {@code measuredNanos} (in order,
   * negative taken as 0), then "other" with the rest (0 if the measured steps already fill it).
   */
  public static List<PauseStep> account(long downtimeNanos, Map<String, Long> measuredNanos) {
    List<PauseStep> steps = new ArrayList<>();
    long sumMicros = 0;
    for (Map.Entry<String, Long> e : measuredNanos.entrySet()) {
      long micros = Math.max(0, e.getValue()) / 1000;
      sumMicros += micros;
      steps.add(PauseStep.newBuilder().setName(e.getKey()).setMicros(micros).build());
    }
    long downtimeMicros = Math.max(0, downtimeNanos) / 1000;
    steps.add(PauseStep.newBuilder().setName(OTHER).setMicros(Math.max(0, downtimeMicros - sumMicros)).build());
    return steps;
  }

  /** The longest step (the first of equals), or null if there are none. */
  public static PauseStep largest(List<PauseStep> steps) {
    PauseStep largest = null;
    for (PauseStep s : steps) {
      if (largest == null || s.getMicros() > largest.getMicros()) {
        largest = s;
      }
    }
    return largest;
  }

  public static long totalMicros(List<PauseStep> steps) {
    return steps.stream().mapToLong(PauseStep::getMicros).sum();
  }

  /** "stop 0.1, final_copy 2.1, target_verify 0.4, ... ms", for logs and summaries. */
  public static String describe(List<PauseStep> steps) {
    StringBuilder b = new StringBuilder();
    for (PauseStep s : steps) {
      if (b.length() > 0) {
        b.append(", ");
      }
      b.append(s.getName()).append(' ').append(String.format(java.util.Locale.ROOT, "%.2f", s.getMicros() / 1000.0));
    }
    return b.append(" ms").toString();
  }
}
