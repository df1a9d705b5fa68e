package dev.ferry.cluster.drs;

import dev.ferry.common.Sizes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * The DRS planner: a round's moves as a pure function of a {@link Snapshot}.
 *
 * <p>In order: (1) evacuate hosts entering maintenance, (2) repair broken must rules, (3)
 * anti-affinity and (4) affinity rules — mandatory moves, made at every threshold; then (5), at
 * threshold 2 and up, balance while the spread is above the threshold's target.
 *
 * <p>Load is a host's CPU use divided by its capacity in cores (a busy VM belongs on the bigger
 * host); the spread is the population standard deviation of that load over the active hosts.
 * Balance is greedy: each step weighs the VMs of the {@link #CANDIDATE_HOSTS} most loaded hosts,
 * each towards the {@link #TARGETS_PER_VM} least loaded hosts with room for it, and takes the
 * move with the best benefit/cost, where benefit is the drop in the loads' sum of squared
 * deviations (a should rule adds or takes {@link #SHOULD_WEIGHT}) and cost is
 * {@code 1 + memory in GiB + dirty rate/(256 MiB/s)}, plus 1 for a VM moved within the
 * recent-move window. A move must remove at least {@link #MIN_BENEFIT}.
 *
 * <p>No ping-pong: a VM moved within {@link DrsConfig#recentMoveWindowMillis()} is never moved
 * back to the host it left by balance, and moves elsewhere only for {@link #RECENT_BENEFIT} (a
 * real change of load). Mandatory moves ignore the window: maintenance and rules come first.
 *
 * <p>Never: a target not active, over memory or CPU capacity, against a must, affinity or
 * anti-affinity rule, or past the concurrency limits (in-flight migrations count).
 */
public final class Balancer {
  /** Sources considered per balance step: the most loaded hosts (widened when they offer no move). */
  static final int CANDIDATE_HOSTS = 32;
  /** How wide a step looks when the extremes offer no move (rules, limits, full hosts). */
  static final int MAX_CANDIDATE_HOSTS = 256;
  /** Targets weighed per VM: the least loaded hosts with room for it. */
  static final int TARGETS_PER_VM = 16;
  static final double MIN_BENEFIT = 0.0005;
  static final double RECENT_BENEFIT = 0.05;
  static final double SHOULD_WEIGHT = 0.02;
  private static final double GIB = 1L << 30;
  private static final double DIRTY_RATE_UNIT = 256.0 * (1L << 20);

  private Balancer() {}

  /**
   * The spread each threshold aims for: 1 none (only mandatory moves, {@code +Infinity});
   * 2: 0.20; 3: 0.12; 4: 0.08; 5: 0.04 (standard deviation of load/capacity).
   */
  public static double targetSpread(int threshold) {
    return switch (threshold) {
      case 1 -> Double.POSITIVE_INFINITY;
      case 2 -> 0.20;
      case 3 -> 0.12;
      case 4 -> 0.08;
      case 5 -> 0.04;
      default -> throw new IllegalArgumentException("drs threshold: " + threshold + " is outside 1..5");
    };
  }

  /** The snapshot's spread (in-flight migrations counted at their targets). */
  public static double spread(Snapshot snapshot) {
    return new ClusterState(snapshot, List.of()).spread();
  }

  public static Plan plan(Snapshot snapshot) {
    ClusterState s = new ClusterState(snapshot, List.of());
    Round round = new Round(s);
    double before = s.spread();
    round.evacuate();
    round.repairMustRules();
    round.repairAntiAffinity();
    round.repairAffinity();
    double target = targetSpread(snapshot.config().threshold());
    if (snapshot.config().threshold() >= 2) {
      round.balance(target);
    }
    return new Plan(round.moves, round.blocked, before, s.spread(), target);
  }

  /** One plan's moves and blocked VMs, over the state they change. */
  private static final class Round {
    final ClusterState s;
    final List<Recommendation> moves = new ArrayList<>();
    final List<Plan.Blocked> blocked = new ArrayList<>();
    final Set<Integer> handled = new HashSet<>();

    Round(ClusterState s) {
      this.s = s;
    }

    void evacuate() {
      for (int h : hostsById()) {
        if (s.hosts[h].state() != HostState.ENTERING_MAINTENANCE) {
          continue;
        }
        for (int vm : vmsByName(h)) {
          if (!movable(vm, h)) {
            continue;
          }
          if (!Fit.canLeave(s, h)) {
            break; // the limits defer the rest to a later round
          }
          int target = Placement.best(s, vm, true);
          if (target >= 0) {
            add(vm, target, Recommendation.Kind.MANDATORY_MAINTENANCE, s.hosts[h].id() + " is entering maintenance; "
                + describeVm(vm) + " goes to " + s.hosts[target].id() + String.format(Locale.ROOT, " (%s of %s cores)",
                Fit.percent(s.load(target)), Fit.cores(s.hosts[target].cpuCapacityCores())));
          } else if (Placement.best(s, vm, false) < 0) {
            block(vm, h, Recommendation.Kind.MANDATORY_MAINTENANCE, Placement.whyNoHost(s, vm, false));
          }
        }
      }
    }

    void repairMustRules() {
      for (int vm = 0; vm < s.vms.length; vm++) {
        int at = s.runningOn(vm);
        if (s.must[vm] == null || at < 0 || !movable(vm, at)) {
          continue;
        }
        for (Rule.VmHost rule : s.must[vm]) {
          if (rule.host().equals(s.hosts[at].id())) {
            continue;
          }
          Integer target = s.hostIndex.get(rule.host());
          Fit.Refusal refusal = target == null ? null : Fit.refuse(s, vm, target, true);
          if (target != null && refusal == null && Fit.canLeave(s, at)) {
            add(vm, target, Recommendation.Kind.MANDATORY_RULE, "must rule " + rule.name() + " keeps "
                + s.vms[vm].name() + " on " + rule.host() + "; it runs on " + s.hosts[at].id());
          } else if (target == null || (refusal != null && refusal.why() != Fit.Why.LIMIT)) {
            block(vm, at, Recommendation.Kind.MANDATORY_RULE, Placement.whyNoHost(s, vm, false));
          }
          break;
        }
      }
    }

    void repairAntiAffinity() {
      for (ClusterState.Group g : s.groups) {
        if (g.affinity) {
          continue;
        }
        for (int m : byCost(g.members)) {
          int at = s.runningOn(m);
          if (at < 0 || g.on(at) < 2 || !movable(m, at) || !Fit.canLeave(s, at)) {
            continue;
          }
          String other = s.memberOn(g, at, m);
          int target = Placement.best(s, m, true);
          if (target >= 0) {
            add(m, target, Recommendation.Kind.MANDATORY_RULE, "anti-affinity rule " + g.rule.name() + ": " + other
                + " and " + s.vms[m].name() + " both run on " + s.hosts[at].id() + "; " + s.vms[m].name()
                + " goes to " + s.hosts[target].id());
          } else if (Placement.best(s, m, false) < 0) {
            block(m, at, Recommendation.Kind.MANDATORY_RULE, "anti-affinity rule " + g.rule.name() + ": "
                + Placement.whyNoHost(s, m, false));
          }
        }
      }
    }

    void repairAffinity() {
      for (ClusterState.Group g : s.groups) {
        if (!g.affinity || g.perHost.size() < 2) {
          continue;
        }
        int home = g.perHost.keySet().stream().filter(s::active)
            .max(Comparator.comparingInt(g::on).thenComparing(h -> s.hosts[h].id(), Comparator.reverseOrder()))
            .orElse(-1);
        if (home < 0) {
          continue; // every member's host is being evacuated: the evacuation reunites them
        }
        for (int m : g.members) {
          int at = s.runningOn(m);
          if (at < 0 || at == home || !movable(m, at)) {
            continue;
          }
          Fit.Refusal refusal = Fit.refuse(s, m, home, true);
          if (refusal == null && Fit.canLeave(s, at)) {
            add(m, home, Recommendation.Kind.MANDATORY_RULE, "affinity rule " + g.rule.name() + " keeps "
                + s.vms[m].name() + " with " + s.memberOn(g, home, m) + " on " + s.hosts[home].id() + "; it runs on "
                + s.hosts[at].id());
          } else if (refusal != null && refusal.why() != Fit.Why.LIMIT) {
            block(m, at, Recommendation.Kind.MANDATORY_RULE, "affinity rule " + g.rule.name() + ": " + refusal.text());
          }
        }
      }
    }

    void balance(double target) {
      s.recomputeSpread();
      // every active host, least loaded first; re-sorted after each move (TimSort: nearly sorted, linear)
      Integer[] byLoad = IntStream.range(0, s.hosts.length).filter(s::active).boxed().toArray(Integer[]::new);
      Comparator<Integer> lighter = Comparator.comparingDouble(s::load);
      while (s.spread() > target && s.migrations < s.config.limits().cluster()) {
        Arrays.sort(byLoad, lighter);
        Move best = null;
        int widest = Math.min(s.hosts.length, MAX_CANDIDATE_HOSTS);
        for (int sources = Math.min(CANDIDATE_HOSTS, widest); ; sources = Math.min(sources * 4, widest)) {
          best = bestMove(sources, byLoad);
          if (best != null || sources >= widest) {
            break; // found, or nothing even among the widest set (rules, limits, full hosts)
          }
        }
        if (best == null) {
          return;
        }
        double before = s.spread();
        int from = s.vmHost[best.vm];
        String hosts = String.format(Locale.ROOT, "%s at %s of %s cores, %s at %s of %s cores",
            s.hosts[from].id(), Fit.percent(s.load(from)), Fit.cores(s.hosts[from].cpuCapacityCores()),
            s.hosts[best.to].id(), Fit.percent(s.load(best.to)), Fit.cores(s.hosts[best.to].cpuCapacityCores()));
        String after = String.format(Locale.ROOT, "%.2f", s.spreadFromSquaredDeviations(best.squaredDeviationsAfter));
        add(best.vm, best.to, Recommendation.Kind.BALANCE, hosts + "; moving " + describeVm(best.vm)
            + String.format(Locale.ROOT, " brings the spread from %.2f to ", before) + after
            + (Placement.prefers(s, best.vm, best.to) ? " (and meets a should rule)" : ""));
      }
    }

    private record Move(int vm, int to, double score, double squaredDeviationsAfter) {}

    /**
     * The best move of a VM on one of the {@code sourceCount} most loaded hosts; for each VM the
     * targets are the {@link #TARGETS_PER_VM} least loaded hosts with room for it (memory, CPU,
     * incoming limit), all less loaded than its host.
     */
    private Move bestMove(int sourceCount, Integer[] byLoad) {
      DrsConfig.Limits limits = s.config.limits();
      int[] sources = extremes(sourceCount, true, h -> s.outgoing[h] < limits.outPerHost());
      double now = s.squaredDeviations();
      Move best = null;
      for (int from : sources) {
        double fromLoad = s.load(from);
        for (int vm : s.vmsOnHost.get(from)) {
          Vm v = s.vms[vm];
          double cores = v.cpuDemandCores();
          if (s.fixed[vm] || handled.contains(vm) || cores <= 0) {
            continue;
          }
          Vm.LastMove last = v.lastMove();
          boolean recent = last != null && s.snapshot.nowMillis() - last.atMillis() < s.config.recentMoveWindowMillis();
          int considered = 0;
          for (int to : byLoad) {
            if (s.load(to) >= fromLoad || considered >= TARGETS_PER_VM) {
              break;
            }
            if (to == from || s.incoming[to] >= limits.inPerHost() || s.memoryFree(to) < v.memoryBytes()
                || s.cpuUsed[to] + cores > s.hosts[to].cpuCapacityCores()) {
              continue;
            }
            considered++;
            double after = s.squaredDeviationsAfter(from, to, cores);
            double benefit = now - after;
            if (benefit < MIN_BENEFIT || (recent && (benefit < RECENT_BENEFIT || last.fromHost().equals(s.hosts[to].id())))) {
              continue;
            }
            double weighed = benefit + should(vm, from, to);
            double score = weighed / cost(vm, recent);
            if (weighed < MIN_BENEFIT || (best != null && score <= best.score) || Fit.refuse(s, vm, to, true) != null) {
              continue;
            }
            best = new Move(vm, to, score, after);
          }
        }
      }
      return best;
    }

    /** The most ({@code top}) or least loaded active hosts that pass {@code eligible}, at most {@code count}. */
    private int[] extremes(int count, boolean top, java.util.function.IntPredicate eligible) {
      Comparator<Integer> byLoad = Comparator.comparingDouble(s::load);
      // the heap keeps the `count` best; its head is the worst of them
      PriorityQueue<Integer> heap = new PriorityQueue<>(top ? byLoad : byLoad.reversed());
      for (int h = 0; h < s.hosts.length; h++) {
        if (s.active(h) && eligible.test(h)) {
          heap.add(h);
          if (heap.size() > count) {
            heap.poll();
          }
        }
      }
      return heap.stream().sorted(top ? byLoad.reversed() : byLoad).mapToInt(Integer::intValue).toArray();
    }

    private double should(int vm, int from, int to) {
      if (Placement.prefers(s, vm, to)) {
        return SHOULD_WEIGHT;
      }
      return Placement.prefers(s, vm, from) ? -SHOULD_WEIGHT : 0;
    }

    private double cost(int vm, boolean recent) {
      Vm v = s.vms[vm];
      return 1 + v.memoryBytes() / GIB + v.dirtyRateBytesPerSecond() / DIRTY_RATE_UNIT + (recent ? 1 : 0);
    }

    private boolean movable(int vm, int at) {
      return !s.fixed[vm] && !handled.contains(vm) && s.location(vm) == at;
    }

    private void add(int vm, int to, Recommendation.Kind kind, String reason) {
      Vm v = s.vms[vm];
      String from = s.hosts[s.vmHost[vm]].id();
      String toId = s.hosts[to].id();
      boolean automatic = kind == Recommendation.Kind.MANDATORY_MAINTENANCE || s.config.mode() == DrsConfig.Mode.FULL;
      moves.add(new Recommendation(Recommendation.idFor(v, from, toId, kind), v.name(), from, toId, kind, reason,
          automatic));
      s.move(vm, to);
    }

    private void block(int vm, int host, Recommendation.Kind kind, String reason) {
      handled.add(vm);
      blocked.add(new Plan.Blocked(s.vms[vm].name(), s.hosts[host].id(), kind, reason));
    }

    private String describeVm(int vm) {
      Vm v = s.vms[vm];
      return String.format(Locale.ROOT, v.cpuDemandCores() < 0.095 ? "%s (%.2f cores, %s)" : "%s (%.1f cores, %s)",
          v.name(), v.cpuDemandCores(), Sizes.formatBytes(v.memoryBytes()));
    }

    private List<Integer> hostsById() {
      return IntStream.range(0, s.hosts.length).boxed().sorted(Comparator.comparing(h -> s.hosts[h].id())).toList();
    }

    private List<Integer> vmsByName(int host) {
      return s.vmsOnHost.get(host).stream().sorted(Comparator.comparing(vm -> s.vms[vm].name())).toList();
    }

    /** Cheapest to move first (memory to copy, then name): the costly member stays. */
    private List<Integer> byCost(int[] members) {
      return IntStream.of(members).boxed().sorted(Comparator.comparingLong((Integer vm) -> s.vms[vm].memoryBytes())
          .thenComparing(vm -> s.vms[vm].name())).toList();
    }
  }
}
