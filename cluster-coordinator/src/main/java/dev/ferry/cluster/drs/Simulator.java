package dev.ferry.cluster.drs;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A seeded, single-threaded cluster for DRS: random host capacities, VMs with random and shifting
 * CPU loads, rules (some broken from the start), hosts entering and leaving maintenance, failing
 * and coming back. Each round completes due migrations, applies the round's events, restarts
 * VMs that run nowhere through {@link Placement} (HA), plans with {@link Balancer}, checks the
 * plan with {@link PlanChecker} and starts every move (as in full mode), each taking one or two
 * rounds. The last {@code frozenRounds} have no events and no load changes: DRS must settle
 * (once a plan moves nothing, with nothing in flight and no VM inside the recent-move window,
 * every later plan is empty too; a ping-pong would never settle).
 *
 * <p>Shared by the simulation test (many seeds, small clusters) and the benchmark (10,000 hosts,
 * a simulated day); the same seed gives the same run.
 */
public final class Simulator {
  private static final long GIB = 1L << 30;
  private static final long MIB = 1L << 20;
  private static final long START_MILLIS = 1_800_000_000_000L;

  /** {@code eventsPerHostPerRound} scales failures and maintenance with the cluster's size. */
  public record Settings(int hosts, int vmsPerHost, int rounds, int frozenRounds, long roundMillis, DrsConfig config,
      boolean faults, boolean rules) {}

  public record Round(int index, long atMillis, double spreadBefore, double spreadAfter, int balanceMoves,
      int mandatoryMoves, int blocked, int inFlight, int hostsDown, int hostsInMaintenance, int haRestarts,
      long planNanos) {}

  public record Result(long seed, List<Round> rounds, List<String> violations, int vms, int rules) {
    public int moves() {
      return rounds.stream().mapToInt(r -> r.balanceMoves() + r.mandatoryMoves()).sum();
    }
  }

  private static final class SimVm {
    final String name;
    final long memoryBytes;
    final long dirtyRate;
    /** What the VM's load returns to: its demand wanders around this, a hot spot lasts until its next change. */
    final double baseDemand;
    double demand;
    int host = -1;
    int migrationTo = -1;
    int migrationDoneRound;
    Vm.LastMove lastMove;

    SimVm(String name, double demand, long memoryBytes, long dirtyRate) {
      this.name = name;
      this.demand = demand;
      this.baseDemand = demand;
      this.memoryBytes = memoryBytes;
      this.dirtyRate = dirtyRate;
    }
  }

  private final long seed;
  private final Settings settings;
  private final Random random;
  private final String[] hostIds;
  private final double[] capacity;
  private final long[] memoryCapacity;
  private final HostState[] states;
  private final List<SimVm> vms = new ArrayList<>();
  private final List<Rule> rules = new ArrayList<>();
  private final List<String> violations = new ArrayList<>();
  private int round;
  private long lastMoveMillis;

  public Simulator(long seed, Settings settings) {
    this.seed = seed;
    this.settings = settings;
    this.random = new Random(seed);
    int n = settings.hosts();
    hostIds = new String[n];
    capacity = new double[n];
    memoryCapacity = new long[n];
    states = new HostState[n];
    double[] cores = {2, 4, 8, 16, 32};
    for (int h = 0; h < n; h++) {
      hostIds[h] = String.format("host-%05d", h);
      capacity[h] = cores[random.nextInt(cores.length)];
      memoryCapacity[h] = (long) (capacity[h] * (2 + random.nextInt(7)) * GIB);
      states[h] = HostState.ACTIVE;
    }
    long[] sizes = {256 * MIB, 512 * MIB, GIB, 2 * GIB, 4 * GIB};
    int count = n * settings.vmsPerHost();
    for (int i = 0; i < count; i++) {
      double r = random.nextDouble();
      SimVm vm = new SimVm(String.format("vm-%06d", i), 0.02 + r * r * 1.5, sizes[random.nextInt(sizes.length)],
          random.nextInt(65) * MIB);
      vms.add(vm);
      placeRandomly(vm);
    }
    if (settings.rules()) {
      makeRules(count);
    }
  }

  /** Initial placement at random (so the cluster starts unbalanced); a VM that fits nowhere waits for HA. */
  private void placeRandomly(SimVm vm) {
    for (int tries = 0; tries < 10; tries++) {
      int h = random.nextInt(hostIds.length);
      if (usedCpu(h) + vm.demand <= capacity[h] && usedMemory(h) + vm.memoryBytes <= memoryCapacity[h]) {
        vm.host = h;
        hostCpu.merge(h, vm.demand, Double::sum);
        hostMemory.merge(h, vm.memoryBytes, Long::sum);
        return;
      }
    }
  }

  private final Map<Integer, Double> hostCpu = new HashMap<>();
  private final Map<Integer, Long> hostMemory = new HashMap<>();

  private double usedCpu(int h) {
    return hostCpu.getOrDefault(h, 0.0);
  }

  private long usedMemory(int h) {
    return hostMemory.getOrDefault(h, 0L);
  }

  private void makeRules(int count) {
    for (int i = 0; i < Math.max(1, count / 20); i++) {
      rules.add(new Rule.AntiAffinity("anti-" + i, distinctVms(2 + random.nextInt(2))));
    }
    for (int i = 0; i < Math.max(1, count / 80); i++) {
      rules.add(new Rule.Affinity("together-" + i, distinctVms(2)));
    }
    for (int i = 0; i < Math.max(1, count / 200); i++) {
      rules.add(new Rule.VmHost("pin-" + i, vms.get(random.nextInt(count)).name,
          hostIds[random.nextInt(hostIds.length)], true));
    }
    for (int i = 0; i < Math.max(1, count / 50); i++) {
      rules.add(new Rule.VmHost("prefer-" + i, vms.get(random.nextInt(count)).name,
          hostIds[random.nextInt(hostIds.length)], false));
    }
  }

  private List<String> distinctVms(int k) {
    List<String> names = new ArrayList<>();
    while (names.size() < k) {
      String name = vms.get(random.nextInt(vms.size())).name;
      if (!names.contains(name)) {
        names.add(name);
      }
    }
    return names;
  }

  /** The cluster as it stands (before any round): the benchmark plans over it. */
  public Snapshot snapshot() {
    return snapshot(START_MILLIS + round * settings.roundMillis());
  }

  public Result run() {
    List<Round> rounds = new ArrayList<>();
    boolean settled = false;
    for (round = 0; round < settings.rounds(); round++) {
      long now = START_MILLIS + round * settings.roundMillis();
      boolean frozen = round >= settings.rounds() - settings.frozenRounds();
      completeMigrations(now);
      if (!frozen) {
        shiftLoads();
        if (settings.faults()) {
          hostEvents();
        }
      }
      finishDrains();
      int restarts = restart(now);
      Snapshot snapshot = snapshot(now);
      long start = System.nanoTime();
      Plan plan = Balancer.plan(snapshot);
      long planNanos = System.nanoTime() - start;
      for (String v : PlanChecker.check(snapshot, plan)) {
        violations.add("round " + round + ": " + v);
      }
      if (frozen) {
        if (settled && !plan.recommendations().isEmpty()) {
          violations.add("round " + round + ": loads are frozen and DRS had settled, yet it moves again: "
              + plan.recommendations().get(0).reason());
        }
        // settled: nothing moves, nothing in flight, and no VM is held back by the recent-move window
        settled |= snapshot.inFlight().isEmpty() && plan.recommendations().isEmpty()
            && now - lastMoveMillis >= settings.config().recentMoveWindowMillis();
      }
      start(plan);
      int balance = (int) plan.recommendations().stream().filter(r -> r.kind() == Recommendation.Kind.BALANCE).count();
      rounds.add(new Round(round, now, plan.spreadBefore(), plan.spreadAfter(), balance,
          plan.recommendations().size() - balance, plan.blocked().size(), snapshot.inFlight().size(),
          count(HostState.DOWN), count(HostState.IN_MAINTENANCE) + count(HostState.ENTERING_MAINTENANCE), restarts,
          planNanos));
    }
    if (settings.frozenRounds() > 0 && !settled) {
      violations.add("DRS never settled in the " + settings.frozenRounds() + " rounds with frozen loads");
    }
    return new Result(seed, rounds, violations, vms.size(), rules.size());
  }

  private void completeMigrations(long now) {
    for (SimVm vm : vms) {
      if (vm.migrationTo >= 0 && vm.migrationDoneRound <= round) {
        vm.lastMove = new Vm.LastMove(now, hostIds[vm.host]);
        lastMoveMillis = now;
        vm.host = vm.migrationTo;
        vm.migrationTo = -1;
      }
    }
  }

  private void shiftLoads() {
    for (SimVm vm : vms) {
      if (random.nextDouble() < 0.1) {
        vm.demand = Math.min(4, Math.max(0.01, vm.baseDemand * (0.5 + random.nextDouble())));
      }
    }
    for (int i = events(0.001, 0.3); i > 0; i--) { // a hot spot: everything on one host gets busier
      int hot = random.nextInt(hostIds.length);
      vms.stream().filter(vm -> vm.host == hot).forEach(vm -> vm.demand = Math.min(4, vm.demand * 1.5));
    }
  }

  private int events(double perHost, double atLeast) {
    double expected = Math.max(atLeast, hostIds.length * perHost);
    int n = (int) expected;
    return n + (random.nextDouble() < expected - n ? 1 : 0);
  }

  private void hostEvents() {
    for (int i = events(0.0002, 0.04); i > 0; i--) { // a host dies: its VMs run nowhere until HA restarts them
      int h = random.nextInt(hostIds.length);
      if (states[h] != HostState.DOWN) {
        states[h] = HostState.DOWN;
        for (SimVm vm : vms) {
          if (vm.host == h) {
            vm.host = -1;
            vm.migrationTo = -1;
          } else if (vm.migrationTo == h) {
            vm.migrationTo = -1; // the migration fails; the VM stays where it runs
          }
        }
      }
    }
    for (int h = 0; h < hostIds.length; h++) {
      double p = random.nextDouble();
      if (states[h] == HostState.DOWN && p < 0.1 || states[h] == HostState.IN_MAINTENANCE && p < 0.15
          || states[h] == HostState.ENTERING_MAINTENANCE && p < 0.02) {
        states[h] = HostState.ACTIVE;
      }
    }
    for (int i = events(0.0005, 0.08); i > 0; i--) {
      int h = random.nextInt(hostIds.length);
      if (states[h] == HostState.ACTIVE) {
        states[h] = HostState.ENTERING_MAINTENANCE;
      }
    }
  }

  private void finishDrains() {
    boolean[] occupied = new boolean[hostIds.length];
    for (SimVm vm : vms) {
      if (vm.host >= 0) {
        occupied[vm.host] = true;
      }
      if (vm.migrationTo >= 0) {
        occupied[vm.migrationTo] = true;
      }
    }
    for (int h = 0; h < hostIds.length; h++) {
      if (states[h] == HostState.ENTERING_MAINTENANCE && !occupied[h]) {
        states[h] = HostState.IN_MAINTENANCE;
      }
    }
  }

  /** HA: VMs that run nowhere, placed in name order; the placements are checked like moves. */
  private int restart(long now) {
    List<SimVm> waiting = vms.stream().filter(vm -> vm.host < 0).toList();
    if (waiting.isEmpty()) {
      return 0;
    }
    Snapshot snapshot = snapshot(now);
    Map<String, SimVm> byName = new HashMap<>();
    waiting.forEach(vm -> byName.put(vm.name, vm));
    List<Placement.Result> results = Placement.placeAll(snapshot,
        snapshot.vms().stream().filter(v -> byName.containsKey(v.name())).toList());
    List<Placement.Placed> placed = new ArrayList<>();
    Map<String, Integer> index = new HashMap<>();
    for (int h = 0; h < hostIds.length; h++) {
      index.put(hostIds[h], h);
    }
    for (Placement.Result r : results) {
      if (r instanceof Placement.Placed p) {
        placed.add(p);
        byName.get(p.vm()).host = index.get(p.host());
      } else if (((Placement.NoHost) r).reason().isBlank()) {
        violations.add("round " + round + ": no host for " + ((Placement.NoHost) r).vm() + " without a reason");
      }
    }
    for (String v : PlanChecker.checkPlacements(snapshot, placed)) {
      violations.add("round " + round + ": HA " + v);
    }
    return placed.size();
  }

  private Snapshot snapshot(long now) {
    double[] cpu = new double[hostIds.length];
    long[] memory = new long[hostIds.length];
    List<Vm> snapshotVms = new ArrayList<>(vms.size());
    List<InFlight> inFlight = new ArrayList<>();
    for (SimVm vm : vms) {
      if (vm.host >= 0) {
        cpu[vm.host] += vm.demand;
        memory[vm.host] += vm.memoryBytes;
      }
      if (vm.migrationTo >= 0) {
        inFlight.add(new InFlight(vm.name, hostIds[vm.host], hostIds[vm.migrationTo]));
      }
      snapshotVms.add(new Vm(vm.name, vm.host < 0 ? null : hostIds[vm.host], vm.demand, vm.memoryBytes, vm.dirtyRate,
          vm.lastMove, vm.migrationTo >= 0));
    }
    List<Host> hosts = new ArrayList<>(hostIds.length);
    for (int h = 0; h < hostIds.length; h++) {
      hosts.add(new Host(hostIds[h], capacity[h], Math.min(4096, cpu[h]), memoryCapacity[h], memory[h], states[h]));
    }
    return new Snapshot(hosts, snapshotVms, rules, settings.config(), inFlight, now);
  }

  private void start(Plan plan) {
    Map<String, Integer> index = new HashMap<>();
    for (int h = 0; h < hostIds.length; h++) {
      index.put(hostIds[h], h);
    }
    Map<String, SimVm> byName = new HashMap<>();
    vms.forEach(vm -> byName.put(vm.name, vm));
    for (Recommendation r : plan.recommendations()) {
      SimVm vm = byName.get(r.vm());
      vm.migrationTo = index.get(r.to());
      vm.migrationDoneRound = round + 1 + (random.nextDouble() < 0.3 ? 1 : 0);
    }
  }

  private int count(HostState state) {
    int n = 0;
    for (HostState s : states) {
      n += s == state ? 1 : 0;
    }
    return n;
  }

  @Override
  public String toString() {
    return "simulation seed " + seed + " (" + hostIds.length + " hosts, " + vms.size() + " VMs, " + rules.size()
        + " rules, round " + round + ")";
  }
}
