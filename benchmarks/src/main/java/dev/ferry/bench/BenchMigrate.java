package dev.ferry.bench;

import dev.ferry.agent.cli.AgentProcess;
import dev.ferry.agent.cli.GuestCommand;
import dev.ferry.common.Json;
import dev.ferry.common.InvalidConfigException;
import dev.ferry.common.Sizes;
import dev.ferry.agent.transport.AgentClient;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.GuestStatus;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationPolicy;
import dev.ferry.proto.MigrationReport;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
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
 * measured in the same run. Downtime is the target's first vCPU step minus the source's last (one
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
      description = "Encryption of the migration link: off, on (TLS 1.3, mutual authentication, the agents' choice"
          + " of provider), openssl or jdk (default: ${DEFAULT-VALUE}). A list (off,on or openssl,jdk) runs a pair of"
          + " agents per mode and alternates them run by run, as --compression does; one of the two may be a list.")
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
      for (String mode : tls) {
        if (!List.of("off", "on", "openssl", "jdk").contains(mode)) {
          throw new InvalidConfigException("--tls", "'" + mode + "' is not one of off, on, openssl, jdk");
        }
      }
      if (tls.size() > 1 && compression.size() > 1) {
        throw new InvalidConfigException("--tls", "a list of TLS modes takes one --compression mode");
      }
      InvalidConfigException.requireRange("--runs", runs, 1, 1000);
      InvalidConfigException.requireRange("--warmup", warmup, 0, 100);
    } catch (InvalidConfigException e) {
      System.err.println("bench-migrate: " + e.getMessage());
      return 2;
    }
    Path dir = workDir != null ? Files.createDirectories(workDir) : Files.createTempDirectory("ferry-bench");
    boolean byTls = tls.size() > 1;
    List<String> variants = byTls ? tls : compression;
    try (Agents agents = new Agents(dir, tls);
        TcpBaseline baseline = new TcpBaseline(template.getMemoryBytes());
        NettyBaseline netty = nettyBaseline
            ? new NettyBaseline(NettyTransport.Kind.parse(transport), template.getMemoryBytes()) : null) {
      if (!json) {
        agents.describe(out, dir);
        out.println(header());
      }
      List<Json> results = new ArrayList<>();
      for (int run = -warmup; run < runs * variants.size(); run++) {
        String variant = variants.get(Math.floorMod(run, variants.size()));
        String mode = byTls ? compression.get(0) : variant;
        String tlsMode = byTls ? variant : tls.get(0);
        MigrationPolicy runPolicy = policy.toBuilder().setCompression(dev.ferry.common.Specs.compressionMode(mode)).build();
        Agents.Pair pair = agents.pair(tlsMode);
        Json result = runOnce(run, mode, template, runPolicy, pair.source(), pair.target(), pair.targetProcess(),
            baseline, netty).put("tls", tlsMode).put("variant", variant);
        if (run < 0) {
          continue;
        }
        results.add(result);
        out.println(json ? result.toString() : row(result));
      }
      if (!json) {
        for (String variant : variants) {
          List<Json> ofMode = results.stream().filter(r -> variant.equals(r.get("variant"))).toList();
          out.println((variants.size() > 1 ? (byTls ? "tls " : "compression ") + variant + ": " : "")
              + summary(ofMode));
        }
        if (variants.size() == 2) {
          out.println(paired(results, variants.get(0), variants.get(1)));
        }
      }
      boolean allIdentical = results.stream().allMatch(r -> Boolean.TRUE.equals(r.get("memory_identical")));
      return allIdentical ? 0 : 1;
    }
  }

  /**
   * The agents: a source and a target per TLS mode (a link's encryption is the agents' setting,
   * not a migration's), all on the same datastore; with TLS, certificates of a throw-away CA.
   */
  private final class Agents implements AutoCloseable {
    record Pair(AgentClient source, AgentClient target, AgentProcess targetProcess) { }

    private final List<AutoCloseable> open = new ArrayList<>();
    private final java.util.Map<String, Pair> pairs = new java.util.LinkedHashMap<>();
    private final NettyTransport client = NettyTransport.create(NettyTransport.Kind.NIO, 1, "bench-client");

    Agents(Path dir, List<String> modes) throws Exception {
      try {
        dev.ferry.daemons.ClusterCa ca = modes.stream().anyMatch(m -> !m.equals("off"))
            ? dev.ferry.daemons.ClusterCa.init(dir.resolve("ca-" + System.nanoTime()), Duration.ofDays(1)) : null;
        dev.ferry.agent.transport.MigrationTls clientTls = dev.ferry.agent.transport.MigrationTls.OFF;
        if (ca != null) {
          Path bench = dir.resolve("tls-bench-client");
          ca.issue("bench-client", bench, Duration.ofDays(1));
          clientTls = dev.ferry.agent.transport.MigrationTls.loadDir(dev.ferry.agent.transport.MigrationTls.Mode.REQUIRED,
              bench, dev.ferry.agent.transport.MigrationTls.Provider.AUTO);
        }
        for (String mode : modes) {
          String suffix = modes.size() > 1 ? "-" + mode : "";
          AgentProcess a = start("bench-a" + suffix, dir, ca, mode);
          AgentProcess b = start("bench-b" + suffix, dir, ca, mode);
          dev.ferry.agent.transport.MigrationTls tlsHere = mode.equals("off")
              ? dev.ferry.agent.transport.MigrationTls.OFF : clientTls;
          pairs.put(mode, new Pair(new AgentClient(client, a.address(), tlsHere, a.hostId()),
              new AgentClient(client, b.address(), tlsHere, b.hostId()), b));
        }
      } catch (Exception e) {
        close();
        throw e;
      }
    }

    private AgentProcess start(String host, Path dir, dev.ferry.daemons.ClusterCa ca, String mode) throws Exception {
      List<String> args = new ArrayList<>(List.of("--transport", transport));
      if (!mode.equals("off")) {
        Path tlsDir = dir.resolve("tls-" + host);
        ca.issue(host, tlsDir, Duration.ofDays(1));
        args.addAll(List.of("--tls-dir", tlsDir.toString(), "--migration-encryption", "required",
            "--tls-provider", mode.equals("on") ? "auto" : mode));
      }
      AgentProcess agent = AgentProcess.start(host, dir.resolve("datastore"), dir.resolve("agent-" + host + ".log"), args);
      open.add(agent);
      return agent;
    }

    Pair pair(String mode) {
      return pairs.get(mode);
    }

    void describe(PrintWriter out, Path dir) {
      pairs.forEach((mode, p) -> out.printf("agents (tls %s): %s -> %s (%s); logs in %s%n", mode,
          p.source().address(), p.targetProcess().hostId(), p.targetProcess().address(), dir));
    }

    @Override
    public void close() {
      for (AutoCloseable c : open) {
        try {
          c.close();
        } catch (Exception e) {
          System.err.println("bench-migrate: " + e.getMessage());
        }
      }
      client.close();
    }
  }

  private Json runOnce(int run, String mode, GuestSpec template, MigrationPolicy policy, AgentClient source,
      AgentClient target, AgentProcess targetProcess, TcpBaseline baseline, NettyBaseline netty) throws IOException {
    String name = "bench-" + (run < 0 ? "warmup" + (-run) : String.valueOf(run));
    GuestSpec spec = template.toBuilder().setName(name).build();
    source.create(spec);
    double baselineRate = baseline.measure(spec.getMemoryBytes());
    double nettyRate = netty == null ? 0 : netty.measure(spec.getMemoryBytes());
    MigrationReport report = source.migrate(name, targetProcess.address(), policy, p -> { });
    boolean completed = report.getPhase() == MigrationPhase.PHASE_COMPLETED;
    Boolean identical = null;
    Boolean sameStep = null;
    if (completed) {
      GuestStatus status = target.awaitDigestAtResume(name, Duration.ofSeconds(120));
      identical = status.getDigestAtResume().equals(report.getSourceDigest());
      sameStep = status.getVcpuStateAtResume().equals(report.getStateAtPause());
      target.destroy(name);
    } else {
      source.destroy(name);
    }
    double seconds = report.getTotalNs() / 1e9;
    return new Json().put("run", run)
        .put("memory_bytes", spec.getMemoryBytes())
        .put("dirty_rate_bytes_per_s", spec.getWorkload().getDirtyRateBytesPerS())
        .put("content", content)
        .put("compression", mode)
        .put("bandwidth_cap_bytes_per_s", policy.getBandwidthBytesPerS())
        .put("phase", report.getPhase().name().replace("PHASE_", "").toLowerCase(Locale.ROOT))
        .put("reason", report.getReason())
        .put("total_ms", round(report.getTotalNs() / 1e6))
        .put("downtime_ms", completed ? round(report.getDowntimeNs() / 1e6) : null)
        .put("rounds", report.getRounds())
        .put("guest_bytes_sent", report.getGuestBytesSent())
        .put("wire_bytes_sent", report.getWireBytesSent())
        .put("pages_zero", report.getPagesZero())
        .put("pages_raw", report.getPagesRaw())
        .put("pages_lz4", report.getPagesLz4())
        .put("throttle_percent_max", report.getThrottlePercentMax())
        .put("throughput_bytes_per_s", Math.round(report.getGuestBytesSent() / Math.max(seconds, 1e-9)))
        .put("baseline_tcp_bytes_per_s", Math.round(baselineRate))
        .put("baseline_netty_bytes_per_s", netty == null ? null : Math.round(nettyRate))
        .put("memory_identical", identical)
        .put("vcpu_continues_from_pause", sameStep);
  }

  private static double round(double v) {
    return Math.round(v * 100) / 100.0;
  }

  private static String header() {
    return String.format(Locale.ROOT, "%4s %5s %7s %10s %10s %7s %7s %12s %12s %12s %7s %9s",
        "run", "lz4?", "tls", "total ms", "downtime", "rounds", "lz4 pg", "guest sent", "throughput", "tcp base", "ratio",
        "identical");
  }

  private static String row(Json r) {
    long throughput = (Long) r.get("throughput_bytes_per_s");
    long base = (Long) r.get("baseline_tcp_bytes_per_s");
    Object downtime = r.get("downtime_ms");
    return String.format(Locale.ROOT, "%4d %5s %7s %10.1f %10s %7d %7d %12s %12s %12s %7.2f %9s",
        (Integer) r.get("run"), r.get("compression"), r.get("tls"), (Double) r.get("total_ms"), downtime == null ? "-" : String.format(Locale.ROOT, "%.2f", (Double) downtime),
        (Integer) r.get("rounds"), (Long) r.get("pages_lz4"), Sizes.formatBytes((Long) r.get("guest_bytes_sent")),
        Sizes.formatRate(throughput), Sizes.formatRate(base), throughput / (double) base,
        r.get("memory_identical") == null ? r.get("phase") : r.get("memory_identical"));
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
  static String paired(List<Json> results, String first, String second) {
    List<Double> ratios = new ArrayList<>();
    for (int i = 0; i + 1 < results.size(); i += 2) {
      Json a = results.get(i);
      Json b = results.get(i + 1);
      if (first.equals(a.get("variant")) && second.equals(b.get("variant"))) {
        ratios.add((Double) b.get("total_ms") / (Double) a.get("total_ms"));
      }
    }
    double[] values = ratios.stream().mapToDouble(Double::doubleValue).toArray();
    return String.format(Locale.ROOT, "paired: total time %s/%s per pair %s; median %.2f",
        second, first, ratios.stream().map(r -> String.format(Locale.ROOT, "%.2f", r)).toList(), median(values));
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
        results.stream().filter(r -> Boolean.TRUE.equals(r.get("memory_identical"))).count(), results.size());
  }

  static double median(double[] values) {
    double[] v = values.clone();
    Arrays.sort(v);
    int n = v.length;
    return n == 0 ? Double.NaN : n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
}
