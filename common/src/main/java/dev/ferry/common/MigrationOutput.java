package dev.ferry.common;

import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationProgress;
import dev.ferry.proto.MigrationReport;
import java.io.PrintWriter;
import java.util.Locale;

/**
 * How a migration looks on a terminal: a live progress line (phase, round, sent and left, rate,
 * dirty rate, expected downtime, ETA), then a summary. On a terminal the line redraws in place;
 * into a pipe it prints at most once a second.
 */
public final class MigrationOutput {
  private static final long PIPE_EVERY_NANOS = 1_000_000_000L;
  private final PrintWriter out;
  private final boolean terminal;
  private long lastPrintedNanos;
  private int lastWidth;

  public MigrationOutput(PrintWriter out, boolean terminal) {
    this.out = out;
    this.terminal = terminal;
  }

  public void progress(MigrationProgress p) {
    String line = progressLine(p);
    if (terminal) {
      out.print("\r" + line + " ".repeat(Math.max(0, lastWidth - line.length())));
      lastWidth = line.length();
      out.flush();
      return;
    }
    long now = System.nanoTime();
    if (now - lastPrintedNanos >= PIPE_EVERY_NANOS || p.getPhase() != MigrationPhase.PHASE_PRECOPY) {
      lastPrintedNanos = now;
      out.println(line);
      out.flush();
    }
  }

  public static String progressLine(MigrationProgress p) {
    String phase = Labels.phase(p.getPhase());
    long rate = p.getBandwidthBytesPerS();
    String eta = rate > 0 && p.getBytesRemaining() > 0
        ? String.format(Locale.ROOT, "%.1fs", p.getBytesRemaining() / (double) rate) : "-";
    return String.format(Locale.ROOT,
        "%-13s round %-3d sent %10s  left %10s  rate %12s  dirty %12s  downtime %s%s  throttle %d%%%s  ETA %s",
        phase, p.getRound(), Sizes.formatBytes(p.getGuestBytesSent()), Sizes.formatBytes(p.getBytesRemaining()),
        Sizes.formatRate(rate), Sizes.formatRate(p.getDirtyRateBytesPerS()),
        p.hasExpectedDowntimeMs() ? "~" + p.getExpectedDowntimeMs() + " ms" : "unknown",
        p.getDowntimeBudgetMs() > 0 ? " (" + budget(p.getDowntimeBudgetMs(), p.getCommitReserveMs()) + ")" : "",
        p.getThrottlePercent(), p.getCompressing() ? "  lz4" : "", eta);
  }

  /** "budget 50 ms: 38 for pages, 12 for the commit". */
  public static String budget(long budgetMillis, long commitMillis) {
    return "budget " + budgetMillis + " ms: " + (budgetMillis - commitMillis) + " for pages, " + commitMillis
        + " for the commit";
  }

  /**
   * Where the pause went: "pause 7.3 ms (budget 50 ms: 40 for pages, 10 for the commit): final_copy 2.10,
   * ... ms", and if it ran over, by how much and its largest step. Empty without pause steps.
   */
  public static String pauseLine(MigrationReport r) {
    if (r.getPauseStepsCount() == 0) {
      return "";
    }
    StringBuilder b = new StringBuilder(String.format(Locale.ROOT, "pause %.1f ms", r.getDowntimeNs() / 1e6));
    if (r.getDowntimeBudgetMs() > 0) {
      b.append(" (").append(budget(r.getDowntimeBudgetMs(), r.getCommitReserveMs())).append(')');
    }
    b.append(':');
    for (int i = 0; i < r.getPauseStepsCount(); i++) {
      b.append(i == 0 ? " " : ", ").append(r.getPauseSteps(i).getName())
          .append(String.format(Locale.ROOT, " %.2f", r.getPauseSteps(i).getMicros() / 1000.0));
    }
    b.append(" ms");
    if (r.getOverBudgetUs() > 0) {
      b.append(String.format(Locale.ROOT, "; OVER the budget by %.1f ms, largest step %s", r.getOverBudgetUs() / 1000.0,
          r.getLargestPauseStep()));
    }
    return b.toString();
  }

  public void report(MigrationReport r) {
    if (terminal && lastWidth > 0) {
      out.println();
    }
    MigrationPhase phase = r.getPhase();
    if (phase == MigrationPhase.PHASE_COMPLETED) {
      double seconds = r.getTotalNs() / 1e9;
      out.printf(Locale.ROOT, "migration %s completed in %.2f s: downtime %.1f ms, %d rounds, %s of guest memory"
              + " sent as %s on the wire (%s), %d pages zero / %d raw / %d lz4%s%n",
          r.getMigrationId(), seconds, r.getDowntimeNs() / 1e6, r.getRounds(), Sizes.formatBytes(r.getGuestBytesSent()),
          Sizes.formatBytes(r.getWireBytesSent()), Sizes.formatRate((long) (r.getGuestBytesSent() / Math.max(seconds, 1e-9))),
          r.getPagesZero(), r.getPagesRaw(), r.getPagesLz4(),
          r.getThrottlePercentMax() > 0 ? ", vCPU throttle up to " + r.getThrottlePercentMax() + "%" : "");
      String pause = pauseLine(r);
      if (!pause.isEmpty()) {
        out.printf(Locale.ROOT, "  %s%n  setup %d ms (accepted to first page); CPU %.0f ms on the source, %.0f ms on the"
            + " target%n", pause, r.getSetupMs(), r.getSourceCpuNs() / 1e6, r.getTargetCpuNs() / 1e6);
      }
    } else {
      out.printf(Locale.ROOT, "migration %s %s after %.2f s: %s%n", r.getMigrationId(), Labels.phase(phase),
          r.getTotalNs() / 1e9, r.getReason());
    }
    out.flush();
  }
}
