package dev.ferry.bench;

import dev.ferry.cluster.drs.Balancer;
import dev.ferry.cluster.drs.DrsConfig;
import dev.ferry.cluster.drs.Host;
import dev.ferry.cluster.drs.HostState;
import dev.ferry.cluster.drs.Plan;
import dev.ferry.cluster.drs.PlanChecker;
import dev.ferry.cluster.drs.Recommendation;
import dev.ferry.cluster.drs.Rule;
import dev.ferry.cluster.drs.Simulator;
import dev.ferry.cluster.drs.Snapshot;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * DRS's cost and behaviour at scale, in one process, no cluster: {@code plan} times
 * {@link Balancer#plan} over one random snapshot (median of several runs after warm-up);
 * {@code --simulate} runs the seeded {@link Simulator} for a simulated day and prints moves and
 * spread hour by hour, with every plan checked by {@link PlanChecker}.
 */
@Command(name = "bench-drs", mixinStandardHelpOptions = true,
    description = "Time a DRS plan over a large random cluster, or simulate a day of DRS on one.")
public final class BenchDrs implements Callable<Integer> {
  @Option(names = "--hosts", description = "Hosts (default: 1000; 10000 with --simulate).")
  Integer hosts;

  @Option(names = "--vms-per-host", description = "VMs per host on average (default: 20; 10 with --simulate).")
  Integer vmsPerHost;

  @Option(names = "--threshold", defaultValue = "3", description = "DRS threshold 1-5 (default: ${DEFAULT-VALUE}).")
  int threshold;

  @Option(names = "--limits", defaultValue = "2,2,100", split = ",",
      description = "Migrations out per host, in per host, in the cluster (default: ${DEFAULT-VALUE}).")
  int[] limits;

  @Option(names = "--maintenance", defaultValue = "5", description = "Hosts entering maintenance in the plan's snapshot (default: ${DEFAULT-VALUE}).")
  int maintenance;

  @Option(names = "--broken-rules", description = "Keep the random rules that the random placement breaks (by default they are"
      + " dropped, so the plan balances instead of spending the limits on rule repairs).")
  boolean brokenRules;

  @Option(names = "--runs", defaultValue = "15", description = "Measured plans (default: ${DEFAULT-VALUE}).")
  int runs;

  @Option(names = "--warmup", defaultValue = "10", description = "Unreported plans first (default: ${DEFAULT-VALUE}).")
  int warmup;

  @Option(names = "--simulate", description = "Simulate instead: rounds of HA, maintenance, failures, shifting loads and DRS.")
  boolean simulate;

  @Option(names = "--hours", defaultValue = "24", description = "Simulated hours (default: ${DEFAULT-VALUE}).")
  int hours;

  @Option(names = "--round-minutes", defaultValue = "5", description = "Minutes between DRS rounds (default: ${DEFAULT-VALUE}).")
  int roundMinutes;

  @Option(names = "--seed", defaultValue = "1", description = "Random seed (default: ${DEFAULT-VALUE}).")
  long seed;

  public static void main(String[] args) {
    System.exit(new CommandLine(new BenchDrs()).execute(args));
  }

  @Override
  public Integer call() {
    if (limits.length != 3) {
      throw new CommandLine.ParameterException(new CommandLine(this), "--limits: three numbers, out,in,cluster");
    }
    DrsConfig config = new DrsConfig(DrsConfig.Mode.FULL, threshold, new DrsConfig.Limits(limits[0], limits[1], limits[2]),
        30 * 60_000L);
    return simulate ? simulate(config) : plan(config);
  }

  private int plan(DrsConfig config) {
    int hostCount = hosts == null ? 1000 : hosts;
    int perHost = vmsPerHost == null ? 20 : vmsPerHost;
    Simulator simulator = new Simulator(seed, new Simulator.Settings(hostCount, perHost, 0, 0, 300_000L, config, false, true));
    Snapshot base = simulator.snapshot();
    List<Host> hostList = new ArrayList<>(base.hosts());
    for (int i = 0; i < maintenance && i < hostList.size(); i++) {
      hostList.set(i * 7 % hostList.size(), hostList.get(i * 7 % hostList.size()).withState(HostState.ENTERING_MAINTENANCE));
    }
    List<Rule> rules = base.rules();
    if (!brokenRules) {
      rules = rules.stream().filter(rule -> kept(rule, base)).toList();
    }
    Snapshot snapshot = new Snapshot(hostList, base.vms(), rules, config, base.inFlight(), base.nowMillis());
    Plan plan = null;
    for (int i = 0; i < warmup; i++) {
      plan = Balancer.plan(snapshot);
    }
    double[] millis = new double[runs];
    for (int i = 0; i < runs; i++) {
      long start = System.nanoTime();
      plan = Balancer.plan(snapshot);
      millis[i] = (System.nanoTime() - start) / 1e6;
    }
    List<String> violations = PlanChecker.check(snapshot, plan);
    long balance = plan.recommendations().stream().filter(r -> r.kind() == Recommendation.Kind.BALANCE).count();
    double[] sorted = millis.clone();
    Arrays.sort(sorted);
    System.out.printf(Locale.ROOT, "plan: %d hosts, %d VMs, %d rules, threshold %d, limits %d/%d/%d%n", hostCount,
        snapshot.vms().size(), snapshot.rules().size(), threshold, limits[0], limits[1], limits[2]);
    System.out.printf(Locale.ROOT, "moves %d (%d balance, %d mandatory), blocked %d; spread %.3f -> %.3f (target %.2f)%n",
        plan.recommendations().size(), balance, plan.recommendations().size() - balance, plan.blocked().size(),
        plan.spreadBefore(), plan.spreadAfter(), plan.targetSpread());
    System.out.printf(Locale.ROOT, "plan time over %d runs (after %d warm-up): median %.1f ms, min %.1f, max %.1f%n", runs,
        warmup, sorted[runs / 2], sorted[0], sorted[runs - 1]);
    System.out.println("violations found by PlanChecker: " + violations.size());
    if (!plan.recommendations().isEmpty()) {
      System.out.println("first move: " + plan.recommendations().get(0).reason());
    }
    return violations.isEmpty() ? 0 : 1;
  }

  /** Whether the snapshot keeps the rule (a should rule always counts: it only weighs). */
  private static boolean kept(Rule rule, Snapshot snapshot) {
    Map<String, String> hostOf = new HashMap<>();
    if (rule instanceof Rule.VmHost r) {
      return !r.must() || snapshot.vms().stream().anyMatch(vm -> vm.name().equals(r.vm()) && r.host().equals(vm.host()));
    }
    List<String> members = rule instanceof Rule.Affinity r ? r.vms() : ((Rule.AntiAffinity) rule).vms();
    snapshot.vms().stream().filter(vm -> members.contains(vm.name()) && vm.host() != null)
        .forEach(vm -> hostOf.put(vm.name(), vm.host()));
    Set<String> distinct = new HashSet<>(hostOf.values());
    return rule instanceof Rule.Affinity ? distinct.size() <= 1 : distinct.size() == hostOf.size();
  }

  private int simulate(DrsConfig config) {
    int hostCount = hosts == null ? 10_000 : hosts;
    int perHost = vmsPerHost == null ? 10 : vmsPerHost;
    int rounds = hours * 60 / roundMinutes;
    long start = System.nanoTime();
    Simulator simulator = new Simulator(seed, new Simulator.Settings(hostCount, perHost, rounds, 0,
        roundMinutes * 60_000L, config, true, true));
    Simulator.Result result = simulator.run();
    double seconds = (System.nanoTime() - start) / 1e9;
    System.out.printf(Locale.ROOT, "simulated %d h: %d hosts, %d VMs, %d rules, threshold %d, limits %d/%d/%d, a round every %d min%n",
        hours, hostCount, result.vms(), result.rules(), threshold, limits[0], limits[1], limits[2], roundMinutes);
    System.out.println(" hour  spread(start)  spread(end)  balance  mandatory  blocked(max)  down  maint  HA restarts  plan ms(max)");
    int perHour = 60 / roundMinutes;
    for (int h = 0; h * perHour < result.rounds().size(); h++) {
      List<Simulator.Round> hour = result.rounds().subList(h * perHour, Math.min(result.rounds().size(), (h + 1) * perHour));
      Simulator.Round last = hour.get(hour.size() - 1);
      System.out.printf(Locale.ROOT, "%5d  %13.3f  %11.3f  %7d  %9d  %12d  %4d  %5d  %11d  %12.1f%n", h,
          hour.get(0).spreadBefore(), last.spreadAfter(), hour.stream().mapToInt(Simulator.Round::balanceMoves).sum(),
          hour.stream().mapToInt(Simulator.Round::mandatoryMoves).sum(),
          hour.stream().mapToInt(Simulator.Round::blocked).max().orElse(0), last.hostsDown(), last.hostsInMaintenance(),
          hour.stream().mapToInt(Simulator.Round::haRestarts).sum(),
          hour.stream().mapToLong(Simulator.Round::planNanos).max().orElse(0) / 1e6);
    }
    double[] planMillis = result.rounds().stream().mapToDouble(r -> r.planNanos() / 1e6).sorted().toArray();
    System.out.printf(Locale.ROOT, "moves %d over %d rounds; plan median %.1f ms, max %.1f ms; run %.1f s; violations %d%n",
        result.moves(), rounds, planMillis[planMillis.length / 2], planMillis[planMillis.length - 1], seconds,
        result.violations().size());
    result.violations().stream().limit(5).forEach(v -> System.out.println("  " + v));
    return result.violations().isEmpty() ? 0 : 1;
  }
}
