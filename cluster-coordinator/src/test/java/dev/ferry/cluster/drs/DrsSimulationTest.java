package dev.ferry.cluster.drs;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * DRS over seeded random clusters ({@link Simulator}): random capacities, shifting loads, rules,
 * maintenance and host failures. Over every round no move or HA placement breaks a rule, a
 * capacity or a limit, no VM is balanced back to the host it just left, and with loads frozen DRS
 * settles. A second scenario per seed is constructed to be reachable (small VMs piled on a few
 * hosts, no rules): DRS must bring the spread under the threshold's target.
 *
 * <p>Seeds 1..N run by default ({@code -Dferry.sim.seeds=N}); a failure prints its seed, and
 * {@code -Dferry.sim.seed=S} replays just that one.
 */
class DrsSimulationTest {
  private static final int SEEDS = Integer.getInteger("ferry.sim.seeds", 250);
  private static final long ROUND_MILLIS = 5 * 60_000L;

  @Test
  @Timeout(value = 5, unit = TimeUnit.MINUTES)
  void randomClustersNeverBreakARuleACapacityOrALimitAndSettle() {
    String only = System.getProperty("ferry.sim.seed");
    List<Long> seeds = new ArrayList<>();
    if (only != null) {
      seeds.add(Long.parseLong(only));
    } else {
      for (long seed = 1; seed <= SEEDS; seed++) {
        seeds.add(seed);
      }
    }
    Map<String, Integer> totals = new HashMap<>();
    for (long seed : seeds) {
      Simulator simulator = randomCluster(seed);
      Simulator.Result result;
      try {
        result = simulator.run();
      } catch (RuntimeException e) {
        throw new AssertionError(simulator + " failed (replay with -Dferry.sim.seed=" + seed + "): " + e, e);
      }
      if (!result.violations().isEmpty()) {
        throw new AssertionError(simulator + " failed (replay with -Dferry.sim.seed=" + seed + "): "
            + result.violations().size() + " violations, first: " + String.join("\n  ", result.violations().subList(0,
            Math.min(5, result.violations().size()))));
      }
      for (Simulator.Round r : result.rounds()) {
        totals.merge("balance moves", r.balanceMoves(), Integer::sum);
        totals.merge("mandatory moves", r.mandatoryMoves(), Integer::sum);
        totals.merge("blocked", r.blocked(), Integer::sum);
        totals.merge("HA restarts", r.haRestarts(), Integer::sum);
      }
    }
    System.out.printf("DRS simulation: %d seeds, %s%n", seeds.size(), totals);
    if (only == null) { // the runs exercised what they claim to
      for (String kind : List.of("balance moves", "mandatory moves", "blocked", "HA restarts")) {
        assertTrue(totals.getOrDefault(kind, 0) > 0, "no " + kind + " in any run: " + totals);
      }
    }
  }

  @Test
  @Timeout(value = 5, unit = TimeUnit.MINUTES)
  void aReachableBalanceIsReached() {
    String only = System.getProperty("ferry.sim.seed");
    long first = only == null ? 1 : Long.parseLong(only);
    long last = only == null ? SEEDS : first;
    for (long seed = first; seed <= last; seed++) {
      try {
        reachable(seed);
      } catch (AssertionError | RuntimeException e) {
        throw new AssertionError("reachable balance, seed " + seed + " failed (replay with -Dferry.sim.seed=" + seed
            + "): " + e.getMessage(), e);
      }
    }
  }

  private static Simulator randomCluster(long seed) {
    Random r = new Random(seed);
    DrsConfig config = new DrsConfig(DrsConfig.Mode.FULL, 1 + r.nextInt(5),
        new DrsConfig.Limits(1 + r.nextInt(3), 1 + r.nextInt(3), 2 + r.nextInt(15)), (2 + r.nextInt(6)) * ROUND_MILLIS);
    return new Simulator(seed, new Simulator.Settings(4 + r.nextInt(20), 3 + r.nextInt(6), 60, 40, ROUND_MILLIS, config,
        true, r.nextInt(4) != 0));
  }

  /**
   * Hosts of random capacity (4–16 cores); VMs of at most 0.1 core (a 40th of the smallest host)
   * piled on two hosts, everything fitting anywhere by memory. Such a cluster can be balanced to
   * well under any target by single moves; rounds apply every move at once, as migrations done.
   */
  private static void reachable(long seed) {
    Random r = new Random(seed);
    int threshold = 2 + r.nextInt(4);
    int hostCount = 3 + r.nextInt(20);
    double[] sizes = {4, 8, 16};
    List<Host> hosts = new ArrayList<>();
    double totalCapacity = 0;
    for (int h = 0; h < hostCount; h++) {
      double cores = sizes[r.nextInt(sizes.length)];
      totalCapacity += cores;
      hosts.add(Host.active("h" + h, cores, 0, 1L << 40, 0));
    }
    List<Vm> vms = new ArrayList<>();
    double placed = 0;
    double pile = Math.min(hosts.get(0).cpuCapacityCores(), hosts.get(1).cpuCapacityCores()) * 2 * 0.95;
    for (int i = 0; placed < Math.min(pile, totalCapacity * 0.6); i++) {
      double cores = 0.01 + r.nextDouble() * 0.09;
      placed += cores;
      vms.add(Vm.of("v" + i, i % 2 == 0 ? "h0" : "h1", cores, 1L << 28));
    }
    DrsConfig config = new DrsConfig(DrsConfig.Mode.FULL, threshold,
        new DrsConfig.Limits(1 + r.nextInt(4), 1 + r.nextInt(4), 1 + r.nextInt(16)), 30 * 60_000L);
    long now = 1_800_000_000_000L;
    Plan plan = null;
    for (int round = 0; round < 2000; round++, now += ROUND_MILLIS) {
      Snapshot snapshot = new Snapshot(withUse(hosts, vms), vms, List.of(), config, List.of(), now);
      plan = Balancer.plan(snapshot);
      List<String> violations = PlanChecker.check(snapshot, plan);
      assertTrue(violations.isEmpty(), violations.toString());
      if (plan.recommendations().isEmpty()) {
        assertTrue(plan.spreadBefore() <= Balancer.targetSpread(threshold), "DRS stopped at spread " + plan.spreadBefore()
            + " over the target " + Balancer.targetSpread(threshold) + " (threshold " + threshold + ", " + hostCount
            + " hosts, " + vms.size() + " VMs)");
        return;
      }
      Map<String, Recommendation> moves = new HashMap<>();
      plan.recommendations().forEach(m -> moves.put(m.vm(), m));
      long at = now;
      vms = vms.stream().map(vm -> moves.containsKey(vm.name())
          ? vm.movedFrom(vm.host(), at, moves.get(vm.name()).to()) : vm).toList();
    }
    throw new AssertionError("DRS still moves after 2000 rounds: " + plan.recommendations().get(0).reason());
  }

  private static List<Host> withUse(List<Host> hosts, List<Vm> vms) {
    Map<String, Double> cpu = new HashMap<>();
    Map<String, Long> memory = new HashMap<>();
    for (Vm vm : vms) {
      cpu.merge(vm.host(), vm.cpuDemandCores(), Double::sum);
      memory.merge(vm.host(), vm.memoryBytes(), Long::sum);
    }
    return hosts.stream().map(h -> h.withUse(cpu.getOrDefault(h.id(), 0.0), memory.getOrDefault(h.id(), 0L))).toList();
  }
}
