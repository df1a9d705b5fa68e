package dev.ferry.bench;

import dev.ferry.common.Json;
import dev.ferry.common.InvalidConfigException;
import dev.ferry.common.Sizes;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationPolicy;
import dev.ferry.proto.MigrationReport;
import dev.ferry.proto.PauseStep;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code scripts/bench-migrate}: two agent processes on loopback, one guest migrated from the
 * first to the second, {@code --runs} times, each run next to a plain TCP transfer of the same size
 * measured in the same run. With {@code --cluster} the agents are members of a cluster (ZooKeeper,
 * a coordinator, two agents, each its own process) and the migration goes through the
 * coordinator's API as {@code ferry migrate} sends it; {@code --cluster --compare} alternates
 * standalone and cluster runs. With {@code --tls} the agents encrypt the link (standalone: a pair of
 * agents per TLS mode, a list alternates the pairs run by run; a cluster takes one mode). Downtime is the target's first vCPU step minus the source's last (one
 * host, one CLOCK_MONOTONIC); memory identity is proved with whole-memory digests computed outside
 * the pause (the source's after the handover, the target's copy-on-write while the guest runs).
 */
@Command(name = "bench-migrate", mixinStandardHelpOptions = true,
    description = "Migrate a built-in guest between two local agents and report time, downtime and throughput.")
public final class BenchMigrate implements Callable<Integer> {
  @Option(names = "--memory", defaultValue = "1GiB", description = "Guest memory (default: ${DEFAULT-VALUE}).")
  String memory;

  @Option(names = "--dirty-rate", defaultValue = "0", description = "Guest dirty rate, e.g. 64MiB/s (default: idle).")
  String dirtyRate;

  @Option(names = "--working-set", description = "Memory the guest writes to (default: all).")
  String workingSet;

  @Option(names = "--content", defaultValue = "mixed", description = "zero, text, random or mixed (default: ${DEFAULT-VALUE}).")
  String content;

  @Option(names = "--vcpus", defaultValue = "1", description = "Guest vCPUs (default: ${DEFAULT-VALUE}).")
  int vcpus;

  @Option(names = "--max-downtime", defaultValue = "50", description = "Downtime budget in ms (default: ${DEFAULT-VALUE}).")
  int maxDowntime;

  @Option(names = "--compression", defaultValue = "auto", split = ",",
      description = "off, on or auto (default: ${DEFAULT-VALUE}). A list (off,auto) alternates the modes run by run"
          + " on the same agents and summarises each: a paired comparison on a noisy machine.")
  List<String> compression;

  @Option(names = "--tls", defaultValue = "off", split = ",",
      description = "Encryption of the migration link: off, on (TLS 1.3, mutual authentication,"
          + " certificates of a throw-away CA, the agents' choice of provider), openssl or jdk (the provider forced)"
          + " (default: ${DEFAULT-VALUE}). A list (off,on or openssl,jdk) starts a source and a target agent per mode"
          + " and alternates them run by run, as --compression does; one of the two may be a list. With --cluster,"
          + " one mode: the cluster's agents (and coordinator) get certificates as scripts/demo makes them.")
  List<String> tls;

  @Option(names = "--bandwidth", description = "Cap the link (stands in for a slower one), e.g. 100MiB/s.")
  String bandwidth;

  @Option(names = "--runs", defaultValue = "5", description = "Measured runs (default: ${DEFAULT-VALUE}).")
  int runs;

  @Option(names = "--warmup", defaultValue = "1", description = "Unreported warm-up runs first (default: ${DEFAULT-VALUE}).")
  int warmup;

  @Option(names = "--transport", defaultValue = "auto", description = "Agents' transport (default: ${DEFAULT-VALUE}).")
  String transport;

  @Option(names = "--netty-baseline", description = "Also measure a bare Netty transfer (no Ferry work) each run.")
  boolean nettyBaseline;

  @Option(names = "--cluster", description = "Migrate through a cluster (ZooKeeper, a coordinator, two agents; each a"
      + " process) and its API, as ferry migrate does.")
  boolean cluster;

  @Option(names = "--compare", description = "With --cluster: alternate standalone and cluster runs, and pair them.")
  boolean compare;

  @Option(names = "--json", description = "Print one JSON object per run instead of the table.")
  boolean json;

  @Option(names = "--work-dir", description = "Agent logs and datastore (default: a temporary directory).")
  Path workDir;

  private final PrintWriter out = new PrintWriter(System.out, true);

  public static void main(String[] args) {
    System.exit(new CommandLine(new BenchMigrate()).execute(args));
  }

  @Override
  public Integer call() throws Exception {
    GuestSpec template;
    MigrationPolicy policy;
    try {
      template = dev.ferry.common.Specs.guest("bench", memory, vcpus, dirtyRate, workingSet, 20, 80, content, 42);
      compression.forEach(dev.ferry.common.Specs::compressionMode);
      MigrationPolicy.Builder b = MigrationPolicy.newBuilder().setMaxDowntimeMs(maxDowntime).setDigest(true);
      if (bandwidth != null) {
        b.setBandwidthBytesPerS(Sizes.parseRate("--bandwidth", bandwidth));
      }
      policy = b.build();
      validateTls();
      InvalidConfigException.requireRange("--runs", runs, 1, 1000);
      InvalidConfigException.requireRange("--warmup", warmup, 0, 100);
    } catch (InvalidConfigException e) {
      System.err.println("bench-migrate: " + e.getMessage());
      return 2;
    }
    if (compare && !cluster) {
      System.err.println("bench-migrate: --compare needs --cluster");
      return 2;
    }
    Path dir = workDir != null ? Files.createDirectories(workDir) : Files.createTempDirectory("ferry-bench");
    List<Harness> harnesses = new ArrayList<>();
    try (TcpBaseline baseline = new TcpBaseline(template.getMemoryBytes());
        NettyBaseline netty = nettyBaseline
            ? new NettyBaseline(NettyTransport.Kind.parse(transport), template.getMemoryBytes()) : null) {
      startHarnesses(dir, harnesses);
      List<Variant> variants = new ArrayList<>();
      for (String mode : compression) {
        for (Harness h : harnesses) {
          variants.add(new Variant(h, mode));
        }
      }
      if (!json) {
        harnesses.forEach(h -> out.println(h.describe()));
        out.println(header());
      }
      List<Json> results = new ArrayList<>();
      for (int run = -warmup; run < runs * variants.size(); run++) {
        Variant variant = variants.get(Math.floorMod(run, variants.size()));
        MigrationPolicy runPolicy = policy.toBuilder()
            .setCompression(dev.ferry.common.Specs.compressionMode(variant.compression())).build();
        Json result = runOnce(run, variant.compression(), template, runPolicy, variant.harness(), baseline, netty);
        if (run < 0) {
          continue;
        }
        results.add(result);
        out.println(json ? result.toString() : row(result));
      }
      if (!json) {
        printSummaries(variants, results);
      }
      boolean allIdentical = results.stream().allMatch(r -> Boolean.TRUE.equals(r.get("memory_identical")));
      return allIdentical ? 0 : 1;
    } finally {
      for (Harness h : harnesses) {
        h.close();
      }
    }
  }

  /** One harness and one compression mode: what a run alternates between. */
  private record Variant(Harness harness, String compression) {
    boolean matches(Json r) {
      return harness.mode().equals(r.get("mode")) && harness.tls().equals(r.get("tls"))
          && compression.equals(r.get("compression"));
    }
  }

  private void validateTls() {
    for (String mode : tls) {
      if (!StandaloneHarness.TLS_MODES.contains(mode)) {
        throw new InvalidConfigException("--tls", "'" + mode + "' is not one of " + String.join(", ",
            StandaloneHarness.TLS_MODES));
      }
    }
    if (tls.size() != new java.util.HashSet<>(tls).size()) {
      throw new InvalidConfigException("--tls", "a mode is listed twice");
    }
    if (tls.size() > 1 && compression.size() > 1) {
      throw new InvalidConfigException("--tls", "a list of TLS modes takes one --compression mode");
    }
    if (cluster && tls.size() > 1) {
      throw new InvalidConfigException("--tls", "--cluster takes one TLS mode (a cluster per mode is too heavy here)");
    }
  }

  /**
   * A standalone harness per TLS mode (all agents on one datastore, the TLS ones with
   * certificates of one throw-away CA), then the cluster one (one TLS mode, same CA).
   */
  private void startHarnesses(Path dir, List<Harness> harnesses) throws Exception {
    dev.ferry.daemons.ClusterCa ca = tls.stream().anyMatch(m -> !m.equals("off"))
        ? dev.ferry.daemons.ClusterCa.init(dir.resolve("ca-" + System.nanoTime()), java.time.Duration.ofDays(1))
        : null;
    if (!cluster || compare) {
      for (String mode : tls) {
        harnesses.add(new StandaloneHarness(dir, transport, mode, ca, tls.size() > 1 ? "-" + mode : ""));
      }
    }
    if (cluster) {
      harnesses.add(new ClusterHarness(dir.resolve("cluster"), transport, tls.get(0), ca));
    }
  }

  /** A summary per variant, then the paired line when exactly two things alternate. */
  private void printSummaries(List<Variant> variants, List<Json> results) {
    for (Variant variant : variants) {
      List<Json> of = results.stream().filter(variant::matches).toList();
      out.println((variants.size() > 1 ? label(variant) + ": " : "") + summary(of));
    }
    if (compression.size() == 2 && variants.size() == 2) {
      out.println(paired(results, "compression", compression.get(0), compression.get(1)));
    }
    if (tls.size() == 2 && variants.size() == 2) {
      out.println(paired(results, "tls", tls.get(0), tls.get(1)));
    }
    if (cluster && compare && variants.size() == 2) {
      out.println(pairedModes(results));
    }
  }

  /** What tells a variant from the others: its harness, TLS mode and compression where they vary. */
  private String label(Variant v) {
    List<String> parts = new ArrayList<>();
    if (compare) {
      parts.add(v.harness().mode());
    }
    if (tls.size() > 1) {
      parts.add("tls " + v.harness().tls());
    }
    if (compression.size() > 1) {
      parts.add("compression " + v.compression());
    }
    return String.join(", ", parts);
  }

  private Json runOnce(int run, String mode, GuestSpec template, MigrationPolicy policy, Harness harness,
      TcpBaseline baseline, NettyBaseline netty) throws IOException {
    String name = "bench-" + (run < 0 ? "warmup" + (-run) : String.valueOf(run));
    GuestSpec spec = template.toBuilder().setName(name).build();
    double baselineRate = baseline.measure(spec.getMemoryBytes());
    double nettyRate = netty == null ? 0 : netty.measure(spec.getMemoryBytes());
    Harness.Outcome outcome = harness.migrate(spec, policy);
    MigrationReport report = outcome.report();
    boolean completed = report.getPhase() == MigrationPhase.PHASE_COMPLETED;
    double seconds = report.getTotalNs() / 1e9;
    Json steps = new Json();
    for (PauseStep step : report.getPauseStepsList()) {
      steps.put(step.getName(), round(step.getMicros() / 1000.0));
    }
    return new Json().put("run", run)
        .put("mode", harness.mode())
        .put("tls", harness.tls())
        .put("memory_bytes", spec.getMemoryBytes())
        .put("dirty_rate_bytes_per_s", spec.getWorkload().getDirtyRateBytesPerS())
        .put("content", content)
        .put("compression", mode)
        .put("bandwidth_cap_bytes_per_s", policy.getBandwidthBytesPerS())
        .put("phase", report.getPhase().name().replace("PHASE_", "").toLowerCase(Locale.ROOT))
        .put("reason", report.getReason())
        .put("total_ms", round(report.getTotalNs() / 1e6))
        .put("downtime_ms", completed ? round(report.getDowntimeNs() / 1e6) : null)
        .put("max_downtime_ms", policy.getMaxDowntimeMs())
        .put("commit_reserve_ms", report.getCommitReserveMs())
        .put("over_budget_ms", completed ? round(report.getOverBudgetUs() / 1000.0) : null)
        .put("pause_steps", completed ? steps : null)
        .put("setup_ms", report.getSetupMs())
        .put("rounds", report.getRounds())
        .put("guest_bytes_sent", report.getGuestBytesSent())
        .put("wire_bytes_sent", report.getWireBytesSent())
        .put("pages_zero", report.getPagesZero())
        .put("pages_raw", report.getPagesRaw())
        .put("pages_lz4", report.getPagesLz4())
        .put("throttle_percent_max", report.getThrottlePercentMax())
        .put("throughput_bytes_per_s", Math.round(report.getGuestBytesSent() / Math.max(seconds, 1e-9)))
        .put("source_cpu_ms", round(report.getSourceCpuNs() / 1e6))
        .put("target_cpu_ms", round(report.getTargetCpuNs() / 1e6))
        .put("baseline_tcp_bytes_per_s", Math.round(baselineRate))
        .put("baseline_cpu_ms", round(baseline.lastCpuNanos() / 1e6))
        .put("baseline_netty_bytes_per_s", netty == null ? null : Math.round(nettyRate))
        .put("memory_identical", outcome.memoryIdentical())
        .put("vcpu_continues_from_pause", outcome.vcpuContinues());
  }

  private static double round(double v) {
    return Math.round(v * 100) / 100.0;
  }

  private static String header() {
    return String.format(Locale.ROOT, "%4s %10s %7s %5s %10s %10s %7s %7s %12s %12s %12s %7s %8s %8s %8s %8s %9s",
        "run", "mode", "tls", "lz4?", "total ms", "downtime", "rounds", "lz4 pg", "guest sent", "throughput", "tcp base", "ratio",
        "setup ms", "src cpu", "tgt cpu", "base cpu", "identical");
  }

  private static String row(Json r) {
    long throughput = (Long) r.get("throughput_bytes_per_s");
    long base = (Long) r.get("baseline_tcp_bytes_per_s");
    Object downtime = r.get("downtime_ms");
    String line = String.format(Locale.ROOT, "%4d %10s %7s %5s %10.1f %10s %7d %7d %12s %12s %12s %7.2f %8d %8.0f %8.0f %8.0f %9s",
        (Integer) r.get("run"), r.get("mode"), r.get("tls"), r.get("compression"), (Double) r.get("total_ms"),
        downtime == null ? "-" : String.format(Locale.ROOT, "%.2f", (Double) downtime),
        (Integer) r.get("rounds"), (Long) r.get("pages_lz4"), Sizes.formatBytes((Long) r.get("guest_bytes_sent")),
        Sizes.formatRate(throughput), Sizes.formatRate(base), throughput / (double) base, (Long) r.get("setup_ms"),
        (Double) r.get("source_cpu_ms"), (Double) r.get("target_cpu_ms"), (Double) r.get("baseline_cpu_ms"),
        r.get("memory_identical") == null ? r.get("phase") : r.get("memory_identical"));
    Object steps = r.get("pause_steps");
    return steps == null ? line : line + "\n" + " ".repeat(10) + "pause steps (ms): " + steps;
  }

  private static String summary(List<Json> results) {
    String netty = "";
    if (!results.isEmpty() && results.get(0).get("baseline_netty_bytes_per_s") != null) {
      double[] nettyRatio = results.stream().mapToDouble(r -> (Long) r.get("baseline_netty_bytes_per_s")
          / (double) (Long) r.get("baseline_tcp_bytes_per_s")).toArray();
      double[] ferryVsNetty = results.stream().mapToDouble(r -> (Long) r.get("throughput_bytes_per_s")
          / (double) (Long) r.get("baseline_netty_bytes_per_s")).toArray();
      netty = String.format(Locale.ROOT, "%n        bare Netty/baseline %.2f, throughput/bare Netty %.2f",
          median(nettyRatio), median(ferryVsNetty));
    }
    return summaryCore(results) + netty;
  }

  /**
   * The two modes compared run by run: each second-mode run against the first-mode run just
   * before it, on the same agents a few seconds apart, so that a slow spell of the machine
   * weighs on both sides of a pair.
   */
  static String paired(List<Json> results, String field, String first, String second) {
    List<Double> ratios = new ArrayList<>();
    for (int i = 0; i + 1 < results.size(); i += 2) {
      Json a = results.get(i);
      Json b = results.get(i + 1);
      if (first.equals(a.get(field)) && second.equals(b.get(field))) {
        ratios.add((Double) b.get("total_ms") / (Double) a.get("total_ms"));
      }
    }
    double[] values = ratios.stream().mapToDouble(Double::doubleValue).toArray();
    return String.format(Locale.ROOT, "paired: total time %s/%s per pair %s; median %.2f",
        second, first, ratios.stream().map(r -> String.format(Locale.ROOT, "%.2f", r)).toList(), median(values));
  }

  /**
   * Standalone and cluster compared run by run: each cluster run against the standalone run just
   * before it (alternating on the same machine, so a slow spell weighs on both sides of a pair).
   */
  static String pairedModes(List<Json> results) {
    List<Double> extra = new ArrayList<>();
    for (int i = 0; i + 1 < results.size(); i += 2) {
      Json a = results.get(i);
      Json b = results.get(i + 1);
      if ("standalone".equals(a.get("mode")) && "cluster".equals(b.get("mode")) && a.get("downtime_ms") != null
          && b.get("downtime_ms") != null) {
        extra.add((Double) b.get("downtime_ms") - (Double) a.get("downtime_ms"));
      }
    }
    return String.format(Locale.ROOT, "paired: downtime cluster - standalone per pair %s ms; median %.2f ms",
        extra.stream().map(d -> String.format(Locale.ROOT, "%.2f", d)).toList(),
        median(extra.stream().mapToDouble(Double::doubleValue).toArray()));
  }

  /** The p-th percentile (nearest rank) of {@code values}. */
  static double percentile(double[] values, double p) {
    double[] v = values.clone();
    Arrays.sort(v);
    return v.length == 0 ? Double.NaN : v[Math.max(0, (int) Math.ceil(p / 100.0 * v.length) - 1)];
  }

  /** Downtime percentiles, the budget, setup, CPU and the median of each pause step. */
  private static String pauseSummary(List<Json> results) {
    List<Json> done = results.stream().filter(r -> r.get("downtime_ms") != null).toList();
    if (done.isEmpty()) {
      return "";
    }
    double[] downtime = done.stream().mapToDouble(r -> (Double) r.get("downtime_ms")).toArray();
    long within = done.stream().filter(r -> (Double) r.get("over_budget_ms") == 0).count();
    double[] setup = results.stream().mapToDouble(r -> ((Long) r.get("setup_ms")).doubleValue()).toArray();
    StringBuilder steps = new StringBuilder();
    Json first = (Json) done.get(0).get("pause_steps");
    for (String step : List.of("stop", "final_copy", "target_verify", "commit", "resume", "other")) {
      if (first != null && first.get(step) != null) {
        double[] v = done.stream().map(r -> (Json) r.get("pause_steps")).filter(j -> j != null && j.get(step) != null)
            .mapToDouble(j -> (Double) j.get(step)).toArray();
        steps.append(steps.length() == 0 ? "" : ", ").append(step).append(String.format(Locale.ROOT, " %.2f", median(v)));
      }
    }
    return String.format(Locale.ROOT, "%n        downtime p50 %.2f ms, p95 %.2f ms, max %.2f ms; within the %s ms budget"
            + " in %d of %d (reserve for the commit: median %.0f ms); setup p50 %.0f ms%n        pause steps (median ms):"
            + " %s%n        CPU per migration (median): source %.0f ms, target %.0f ms; TCP baseline %.0f ms",
        median(downtime), percentile(downtime, 95), percentile(downtime, 100), done.get(0).get("max_downtime_ms"),
        within, done.size(), median(done.stream().mapToDouble(r -> ((Long) r.get("commit_reserve_ms")).doubleValue())
            .toArray()), median(setup), steps,
        median(results.stream().mapToDouble(r -> (Double) r.get("source_cpu_ms")).toArray()),
        median(results.stream().mapToDouble(r -> (Double) r.get("target_cpu_ms")).toArray()),
        median(results.stream().mapToDouble(r -> (Double) r.get("baseline_cpu_ms")).toArray()));
  }

  private static String summaryCore(List<Json> results) {
    double[] total = results.stream().mapToDouble(r -> (Double) r.get("total_ms")).toArray();
    double[] downtime = results.stream().filter(r -> r.get("downtime_ms") != null)
        .mapToDouble(r -> (Double) r.get("downtime_ms")).toArray();
    double[] ratio = results.stream().mapToDouble(r -> (Long) r.get("throughput_bytes_per_s")
        / (double) (Long) r.get("baseline_tcp_bytes_per_s")).toArray();
    double[] throughput = results.stream().mapToDouble(r -> (Long) r.get("throughput_bytes_per_s")).toArray();
    return String.format(Locale.ROOT, "median: total %.1f ms, downtime %s ms, throughput %s, throughput/baseline %.2f;"
        + " identical in %d of %d runs",
        median(total), downtime.length == 0 ? "-" : String.format(Locale.ROOT, "%.2f", median(downtime)),
        Sizes.formatRate((long) median(throughput)), median(ratio),
        results.stream().filter(r -> Boolean.TRUE.equals(r.get("memory_identical"))).count(), results.size())
        + pauseSummary(results);
  }

  static double median(double[] values) {
    double[] v = values.clone();
    Arrays.sort(v);
    int n = v.length;
    return n == 0 ? Double.NaN : n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
}
