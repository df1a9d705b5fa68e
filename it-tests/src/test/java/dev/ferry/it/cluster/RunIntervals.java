package dev.ferry.it.cluster;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * When each guest ran where, as the agents themselves recorded it: an agent started with
 * {@code -Dferry.runlog=FILE} writes a line each time a guest's vCPUs start ({@code start VM
 * START_NANOS HOST}) and stop ({@code run VM START_NANOS END_NANOS HOST}), stamped with
 * System.nanoTime (CLOCK_MONOTONIC: one time line for every process on this machine). Unlike
 * sampling the agents, no double run is too short to be seen. A test that kills an agent appends
 * {@code died NANOS HOST} to its log once the process is gone ({@link #died}).
 */
final class RunIntervals {
  static final String PROPERTY = "ferry.runlog";

  /** {@code vm} ran on {@code host} from {@code startNanos} to {@code endNanos}. */
  record Interval(String vm, String host, long startNanos, long endNanos, boolean open) {
    boolean overlaps(Interval other) {
      return startNanos < other.endNanos && other.startNanos < endNanos;
    }
  }

  private RunIntervals() {}

  /** Notes in {@code log} that {@code host}'s agent is dead (call after the process has exited). */
  static void died(Path log, String host) throws IOException {
    Files.writeString(log, "died " + System.nanoTime() + " " + host + "\n", java.nio.file.StandardOpenOption.APPEND,
        java.nio.file.StandardOpenOption.CREATE);
  }

  /** The JVM argument that makes an agent write its run log to {@code file}. */
  static String jvmArg(Path file) {
    return "-D" + PROPERTY + "=" + file;
  }

  /**
   * Every interval in {@code logs}; a start without its end (the agent died or still runs it)
   * is taken as running until {@code openUntilNanos}.
   */
  static List<Interval> read(Iterable<Path> logs, long openUntilNanos) throws IOException {
    List<Interval> all = new ArrayList<>();
    for (Path log : logs) {
      if (Files.exists(log)) {
        all.addAll(parse(Files.readAllLines(log), openUntilNanos));
      }
    }
    return all;
  }

  static List<Interval> parse(List<String> lines, long openUntilNanos) {
    List<Interval> intervals = new ArrayList<>();
    Map<String, Long> open = new HashMap<>(); // "vm host" -> start
    for (String line : lines) {
      String[] f = line.trim().split(" ");
      if (f[0].equals("start") && f.length == 4) {
        open.put(f[1] + " " + f[3], Long.parseLong(f[2]));
      } else if (f[0].equals("died") && f.length == 3) {
        // Written by a test after it killed the agent: whatever ran there stopped by then.
        long died = Long.parseLong(f[1]);
        open.entrySet().removeIf(e -> {
          String[] k = e.getKey().split(" ");
          if (!k[1].equals(f[2])) {
            return false;
          }
          intervals.add(new Interval(k[0], k[1], e.getValue(), Math.max(e.getValue(), died), false));
          return true;
        });
      } else if (f[0].equals("run") && f.length == 5) {
        open.remove(f[1] + " " + f[4]);
        intervals.add(new Interval(f[1], f[4], Long.parseLong(f[2]), Long.parseLong(f[3]), false));
      } else if (!line.isBlank()) {
        throw new IllegalArgumentException("run log line not understood: '" + line + "'");
      }
    }
    open.forEach((key, start) -> {
      String[] k = key.split(" ");
      intervals.add(new Interval(k[0], k[1], start, Math.max(start, openUntilNanos), true));
    });
    return intervals;
  }

  /** Every pair of intervals in which {@code vm} ran on two different hosts at the same time. */
  static List<String> doubleRuns(List<Interval> intervals, String vm) {
    List<Interval> runs = intervals.stream().filter(i -> i.vm().equals(vm)).toList();
    List<String> found = new ArrayList<>();
    for (int i = 0; i < runs.size(); i++) {
      for (int j = i + 1; j < runs.size(); j++) {
        Interval a = runs.get(i);
        Interval b = runs.get(j);
        if (!a.host().equals(b.host()) && a.overlaps(b)) {
          long overlapNanos = Math.min(a.endNanos(), b.endNanos()) - Math.max(a.startNanos(), b.startNanos());
          found.add(a + " and " + b + " overlap by " + overlapNanos / 1000 + " us");
        }
      }
    }
    return found;
  }
}
