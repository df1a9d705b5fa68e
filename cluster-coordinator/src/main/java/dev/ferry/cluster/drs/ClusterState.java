package dev.ferry.cluster.drs;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A snapshot indexed for planning, and changed as a plan's moves are chosen: projected CPU and
 * memory per host, where each VM will be, rule groups' members per host, the concurrency counts
 * and the running spread. One plan's scratch state; never shared.
 *
 * <p>A moving VM (in flight, or moved by this plan) counts on its target for CPU and rules, and on
 * both hosts for memory (the source frees it only when the migration ends).
 */
final class ClusterState {
  final Snapshot snapshot;
  final DrsConfig config;
  final Host[] hosts;
  final Map<String, Integer> hostIndex = new HashMap<>();
  final double[] cpuUsed;
  final long[] memUsed;
  final int[] outgoing;
  final int[] incoming;
  int migrations;

  final Vm[] vms;
  final Map<String, Integer> vmIndex = new HashMap<>();
  final int[] vmHost;
  final int[] vmTarget;
  /** In flight, or moved by this plan: not moved again. */
  final boolean[] fixed;
  final List<List<Integer>> vmsOnHost;

  final List<Rule.VmHost>[] must;
  final List<Rule.VmHost>[] should;
  final Group[] groups;
  final int[][] groupsOf;

  private double loadSum;
  private double loadSquares;
  private int activeHosts;

  /** An affinity or anti-affinity rule, its members (VMs of the snapshot) and their count per host. */
  static final class Group {
    final Rule rule;
    final boolean affinity;
    final int[] members;
    final Map<Integer, Integer> perHost = new HashMap<>();

    Group(Rule rule, boolean affinity, int[] members) {
      this.rule = rule;
      this.affinity = affinity;
      this.members = members;
    }

    int on(int host) {
      return perHost.getOrDefault(host, 0);
    }
  }

  @SuppressWarnings("unchecked")
  ClusterState(Snapshot snapshot, List<Vm> extraVms) {
    this.snapshot = snapshot;
    this.config = snapshot.config();
    hosts = snapshot.hosts().toArray(new Host[0]);
    int h = hosts.length;
    cpuUsed = new double[h];
    memUsed = new long[h];
    outgoing = new int[h];
    incoming = new int[h];
    vmsOnHost = new ArrayList<>(h);
    for (int i = 0; i < h; i++) {
      hostIndex.put(hosts[i].id(), i);
      cpuUsed[i] = hosts[i].cpuUsedCores();
      memUsed[i] = hosts[i].memoryUsedBytes();
      vmsOnHost.add(new ArrayList<>());
    }
    // Extra VMs: new ones (vm create) are appended; one named like a snapshot VM replaces it (HA, evacuation).
    Map<String, Vm> replacing = new HashMap<>();
    extraVms.forEach(vm -> replacing.put(vm.name(), vm));
    List<Vm> all = new ArrayList<>(snapshot.vms().size() + extraVms.size());
    for (Vm vm : snapshot.vms()) {
      Vm replaced = replacing.remove(vm.name());
      all.add(replaced == null ? vm : replaced.onHost(vm.host()));
    }
    extraVms.stream().filter(vm -> replacing.containsKey(vm.name())).forEach(vm -> all.add(vm.onHost(null)));
    vms = all.toArray(new Vm[0]);
    int v = vms.length;
    vmHost = new int[v];
    vmTarget = new int[v];
    fixed = new boolean[v];
    Arrays.fill(vmTarget, -1);
    for (int i = 0; i < v; i++) {
      Vm vm = vms[i];
      vmIndex.put(vm.name(), i);
      vmHost[i] = vm.host() == null ? -1 : hostIndex.get(vm.host());
      fixed[i] = vm.migrating();
      if (vmHost[i] >= 0) {
        vmsOnHost.get(vmHost[i]).add(i);
      }
    }
    for (InFlight m : snapshot.inFlight()) {
      int vm = vmIndex.get(m.vm());
      int from = hostIndex.get(m.from());
      int to = hostIndex.get(m.to());
      fixed[vm] = true;
      project(vm, from, to);
    }
    must = new List[v];
    should = new List[v];
    List<Group> groupList = new ArrayList<>();
    for (Rule rule : snapshot.rules()) {
      if (rule instanceof Rule.VmHost r) {
        Integer vm = vmIndex.get(r.vm());
        if (vm != null) {
          List<Rule.VmHost>[] into = r.must() ? must : should;
          if (into[vm] == null) {
            into[vm] = new ArrayList<>(1);
          }
          into[vm].add(r);
        }
      } else if (rule instanceof Rule.Affinity r) {
        groupList.add(group(r, true, r.vms()));
      } else if (rule instanceof Rule.AntiAffinity r) {
        groupList.add(group(r, false, r.vms()));
      }
    }
    groups = groupList.toArray(new Group[0]);
    int[] counts = new int[v];
    for (Group g : groups) {
      for (int m : g.members) {
        counts[m]++;
      }
    }
    groupsOf = new int[v][];
    for (int i = 0; i < v; i++) {
      groupsOf[i] = new int[counts[i]];
      counts[i] = 0;
    }
    for (int gi = 0; gi < groups.length; gi++) {
      for (int m : groups[gi].members) {
        groupsOf[m][counts[m]++] = gi;
        int at = runningOn(m);
        if (at >= 0) {
          groups[gi].perHost.merge(at, 1, Integer::sum);
        }
      }
    }
    recomputeSpread();
  }

  private Group group(Rule rule, boolean affinity, List<String> names) {
    return new Group(rule, affinity, names.stream().map(vmIndex::get).filter(i -> i != null)
        .mapToInt(Integer::intValue).toArray());
  }

  /** Where the VM is or is going; -1 if nowhere. */
  int location(int vm) {
    return vmTarget[vm] >= 0 ? vmTarget[vm] : vmHost[vm];
  }

  /** Where the VM runs (or will), for rules: -1 if nowhere or on a down host. */
  int runningOn(int vm) {
    int at = location(vm);
    return at >= 0 && hosts[at].state() != HostState.DOWN ? at : -1;
  }

  double load(int host) {
    return cpuUsed[host] / hosts[host].cpuCapacityCores();
  }

  boolean active(int host) {
    return hosts[host].state() == HostState.ACTIVE;
  }

  long memoryFree(int host) {
    return hosts[host].memoryCapacityBytes() - memUsed[host];
  }

  /** Moves the VM's CPU from {@code from} to {@code to} and reserves its memory there; counts the migration. */
  private void project(int vm, int from, int to) {
    double cores = vms[vm].cpuDemandCores();
    cpuUsed[from] = Math.max(0, cpuUsed[from] - cores);
    cpuUsed[to] += cores;
    memUsed[to] += vms[vm].memoryBytes();
    outgoing[from]++;
    incoming[to]++;
    migrations++;
    vmTarget[vm] = to;
  }

  /** A move chosen by the plan (or a placement made by {@link Placement#placeAll}). */
  void move(int vm, int to) {
    int from = vmHost[vm] >= 0 && hosts[vmHost[vm]].state() != HostState.DOWN ? vmHost[vm] : -1;
    int runningBefore = runningOn(vm);
    if (active(to)) {
      removeLoad(to);
    }
    if (from >= 0 && active(from)) {
      removeLoad(from);
    }
    if (from >= 0) {
      project(vm, from, to);
    } else { // placed or restarted, not migrated: no limits involved
      cpuUsed[to] += vms[vm].cpuDemandCores();
      memUsed[to] += vms[vm].memoryBytes();
      vmTarget[vm] = to;
    }
    if (active(to)) {
      addLoad(to);
    }
    if (from >= 0 && active(from)) {
      addLoad(from);
    }
    fixed[vm] = true;
    for (int gi : groupsOf[vm]) {
      Map<Integer, Integer> perHost = groups[gi].perHost;
      if (runningBefore >= 0) {
        perHost.merge(runningBefore, -1, (a, b) -> a + b == 0 ? null : a + b);
      }
      perHost.merge(to, 1, Integer::sum);
    }
  }

  private void removeLoad(int host) {
    double l = load(host);
    loadSum -= l;
    loadSquares -= l * l;
  }

  private void addLoad(int host) {
    double l = load(host);
    loadSum += l;
    loadSquares += l * l;
  }

  void recomputeSpread() {
    loadSum = 0;
    loadSquares = 0;
    activeHosts = 0;
    for (int i = 0; i < hosts.length; i++) {
      if (active(i)) {
        activeHosts++;
        addLoad(i);
      }
    }
  }

  int activeHosts() {
    return activeHosts;
  }

  /** The spread: the population standard deviation of load/capacity over the active hosts. */
  double spread() {
    return Math.sqrt(squaredDeviations(loadSum, loadSquares) / Math.max(1, activeHosts));
  }

  double squaredDeviations() {
    return squaredDeviations(loadSum, loadSquares);
  }

  private double squaredDeviations(double sum, double squares) {
    return activeHosts == 0 ? 0 : Math.max(0, squares - sum * sum / activeHosts);
  }

  /**
   * The sum of squared deviations of the active hosts' loads after moving {@code cores} from
   * {@code from} to {@code to} (both active): O(1), what the balancer compares moves by.
   */
  double squaredDeviationsAfter(int from, int to, double cores) {
    double lf = load(from);
    double lt = load(to);
    double nf = Math.max(0, cpuUsed[from] - cores) / hosts[from].cpuCapacityCores();
    double nt = (cpuUsed[to] + cores) / hosts[to].cpuCapacityCores();
    double sum = loadSum - lf - lt + nf + nt;
    double squares = loadSquares - lf * lf - lt * lt + nf * nf + nt * nt;
    return squaredDeviations(sum, squares);
  }

  double spreadFromSquaredDeviations(double ssd) {
    return Math.sqrt(ssd / Math.max(1, activeHosts));
  }

  /** Another member of {@code group} that runs on {@code host}, for reasons. */
  String memberOn(Group group, int host, int except) {
    for (int m : group.members) {
      if (m != except && runningOn(m) == host) {
        return vms[m].name();
      }
    }
    return "?";
  }
}
