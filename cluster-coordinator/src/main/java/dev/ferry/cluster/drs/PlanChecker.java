package dev.ferry.cluster.drs;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An independent check of a plan against its snapshot, written apart from the planner's own
 * bookkeeping (a second implementation of the constraints, replaying the moves in order): the
 * simulator and the benchmark report what it finds. Each violation is a sentence naming the move.
 */
public final class PlanChecker {
  private final Snapshot snapshot;
  private final Map<String, Host> hosts = new HashMap<>();
  private final Map<String, Vm> vms = new HashMap<>();
  private final Map<String, String> location = new HashMap<>();
  private final Map<String, Long> memory = new HashMap<>();
  private final Map<String, Double> cpu = new HashMap<>();
  private final Map<String, Integer> out = new HashMap<>();
  private final Map<String, Integer> in = new HashMap<>();
  private final Set<String> moving = new HashSet<>();
  private final Map<String, List<Rule>> rulesByVm = new HashMap<>();
  private int migrations;
  private final List<String> violations = new ArrayList<>();

  private PlanChecker(Snapshot snapshot) {
    this.snapshot = snapshot;
    snapshot.hosts().forEach(h -> {
      hosts.put(h.id(), h);
      memory.put(h.id(), h.memoryUsedBytes());
      cpu.put(h.id(), h.cpuUsedCores());
    });
    snapshot.vms().forEach(vm -> {
      vms.put(vm.name(), vm);
      if (vm.host() != null) {
        location.put(vm.name(), vm.host());
      }
      if (vm.migrating()) {
        moving.add(vm.name());
      }
    });
    for (Rule rule : snapshot.rules()) {
      List<String> named = rule instanceof Rule.VmHost r ? List.of(r.vm())
          : rule instanceof Rule.Affinity r ? r.vms() : ((Rule.AntiAffinity) rule).vms();
      named.forEach(vm -> rulesByVm.computeIfAbsent(vm, k -> new ArrayList<>()).add(rule));
    }
    snapshot.inFlight().forEach(m -> apply(vms.get(m.vm()), m.from(), m.to()));
  }

  /** What is wrong with {@code plan}'s moves (empty: nothing). */
  public static List<String> check(Snapshot snapshot, Plan plan) {
    PlanChecker c = new PlanChecker(snapshot);
    Set<String> ids = new HashSet<>();
    for (Recommendation r : plan.recommendations()) {
      if (!ids.add(r.id())) {
        c.violations.add("recommendation id " + r.id() + " appears twice");
      }
      c.checkMove(r);
    }
    for (Plan.Blocked b : plan.blocked()) {
      if (b.reason() == null || b.reason().isBlank()) {
        c.violations.add(b.vm() + " is blocked without a reason");
      }
    }
    return c.violations;
  }

  /** What is wrong with placing these VMs (no migrations: no limits), in order. */
  public static List<String> checkPlacements(Snapshot snapshot, List<Placement.Placed> placed) {
    PlanChecker c = new PlanChecker(snapshot);
    for (Placement.Placed p : placed) {
      Vm vm = c.vms.get(p.vm());
      String what = "placing " + p.vm() + " on " + p.host();
      c.location.remove(p.vm()); // a restart: it ran nowhere
      c.checkTarget(what, vm, p.host());
      c.memory.merge(p.host(), vm.memoryBytes(), Long::sum);
      c.cpu.merge(p.host(), vm.cpuDemandCores(), Double::sum);
      c.location.put(p.vm(), p.host());
    }
    return c.violations;
  }

  private void checkMove(Recommendation r) {
    String what = r.kind() + " move of " + r.vm() + " " + r.from() + " -> " + r.to();
    Vm vm = vms.get(r.vm());
    if (vm == null || !r.from().equals(location.get(r.vm())) || moving.contains(r.vm())) {
      violations.add(what + ": the VM is not on " + r.from() + " or is already moving");
      return;
    }
    if (r.reason() == null || r.reason().isBlank()) {
      violations.add(what + ": no reason");
    }
    checkTarget(what, vm, r.to());
    DrsConfig.Limits limits = snapshot.config().limits();
    if (out.getOrDefault(r.from(), 0) >= limits.outPerHost() || in.getOrDefault(r.to(), 0) >= limits.inPerHost()
        || migrations >= limits.cluster()) {
      violations.add(what + ": past the concurrency limits");
    }
    Vm.LastMove last = vm.lastMove();
    if (r.kind() == Recommendation.Kind.BALANCE && last != null
        && snapshot.nowMillis() - last.atMillis() < snapshot.config().recentMoveWindowMillis()
        && last.fromHost().equals(r.to())) {
      violations.add(what + ": ping-pong, it left " + r.to() + " " + (snapshot.nowMillis() - last.atMillis()) + " ms ago");
    }
    if (r.kind() == Recommendation.Kind.BALANCE && snapshot.config().threshold() == 1) {
      violations.add(what + ": a balance move at threshold 1");
    }
    apply(vm, r.from(), r.to());
  }

  private void checkTarget(String what, Vm vm, String to) {
    Host target = hosts.get(to);
    if (target == null || target.state() != HostState.ACTIVE) {
      violations.add(what + ": target is " + (target == null ? "unknown" : target.state()));
      return;
    }
    if (memory.get(to) + vm.memoryBytes() > target.memoryCapacityBytes()) {
      violations.add(what + ": memory over capacity");
    }
    if (cpu.get(to) + vm.cpuDemandCores() > target.cpuCapacityCores() + 1e-6) {
      violations.add(what + ": CPU over capacity");
    }
    for (Rule rule : rulesByVm.getOrDefault(vm.name(), List.of())) {
      if (rule instanceof Rule.VmHost r && r.must() && r.vm().equals(vm.name()) && !r.host().equals(to)) {
        violations.add(what + ": breaks must rule " + r.name());
      } else if (rule instanceof Rule.AntiAffinity r && r.vms().contains(vm.name())) {
        for (String other : r.vms()) {
          if (!other.equals(vm.name()) && to.equals(running(other))) {
            violations.add(what + ": breaks anti-affinity rule " + r.name() + " (" + other + ")");
          }
        }
      } else if (rule instanceof Rule.Affinity r && r.vms().contains(vm.name())) {
        boolean anchored = false;
        boolean joins = false;
        for (String other : r.vms()) {
          String at = running(other);
          if (!other.equals(vm.name()) && at != null) {
            anchored |= hosts.get(at).state() == HostState.ACTIVE;
            joins |= at.equals(to);
          }
        }
        if (anchored && !joins) {
          violations.add(what + ": breaks affinity rule " + r.name());
        }
      }
    }
  }

  private String running(String vm) {
    String at = location.get(vm);
    return at != null && hosts.get(at).state() != HostState.DOWN ? at : null;
  }

  private void apply(Vm vm, String from, String to) {
    moving.add(vm.name());
    location.put(vm.name(), to);
    memory.merge(to, vm.memoryBytes(), Long::sum);
    cpu.merge(from, -vm.cpuDemandCores(), (a, b) -> Math.max(0, a + b));
    cpu.merge(to, vm.cpuDemandCores(), Double::sum);
    out.merge(from, 1, Integer::sum);
    in.merge(to, 1, Integer::sum);
    migrations++;
  }
}
