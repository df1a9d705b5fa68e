package dev.ferry.cluster.drs;

import static dev.ferry.cluster.drs.TestCluster.GIB;
import static dev.ferry.cluster.drs.TestCluster.MIB;
import static dev.ferry.cluster.drs.TestCluster.NOW;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.cluster.drs.Recommendation.Kind;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The planner's moves, one rule or constraint per test, over hand-built snapshots. */
class BalancerTest {
  private static final long MINUTE = 60_000;

  private static String moves(Plan plan) {
    return String.join(", ", plan.recommendations().stream()
        .map(r -> r.vm() + " " + r.from() + "->" + r.to() + " " + r.kind()).toList());
  }

  /** host-a (2 cores) runs three busy VMs, host-c (4 cores) nearly nothing. */
  private static TestCluster hot() {
    return new TestCluster().host("host-a", 2, 8 * GIB).host("host-c", 4, 8 * GIB)
        .vm("web-1", "host-a", 0.8, 512 * MIB).vm("web-2", "host-a", 0.6, 512 * MIB)
        .vm("web-3", "host-a", 0.44, 512 * MIB).vm("idle", "host-c", 0.72, 512 * MIB);
  }

  @Test
  void aHotHostIsRelievedWithAReasonThatSaysWhy() {
    Plan plan = hot().plan();
    Recommendation first = plan.recommendations().get(0);
    assertEquals("web-1 host-a->host-c BALANCE", moves(plan));
    assertEquals("host-a at 92 % of 2 cores, host-c at 18 % of 4 cores; moving web-1 (0.8 cores, 512.0 MiB) brings "
        + "the spread from 0.37 to 0.07", first.reason());
    assertEquals(0.37, plan.spreadBefore(), 0.005);
    assertTrue(plan.spreadAfter() <= Balancer.targetSpread(3), "after " + plan.spreadAfter());
    assertTrue(first.automatic(), "full mode applies balance moves");
  }

  @Test
  void thresholdOneMakesNoBalanceMoveAndHigherThresholdsAimLower() {
    assertEquals("", moves(hot().threshold(1).plan()));
    assertEquals(Double.POSITIVE_INFINITY, hot().threshold(1).plan().targetSpread());
    double previous = Double.POSITIVE_INFINITY;
    for (int t = 2; t <= 5; t++) {
      assertTrue(Balancer.targetSpread(t) < previous, "threshold " + t);
      previous = Balancer.targetSpread(t);
    }
    // spread 0.10: under threshold 3's target (0.12), over threshold 4's (0.08)
    TestCluster mild = new TestCluster().host("host-a", 4, 8 * GIB).host("host-b", 4, 8 * GIB)
        .vm("a1", "host-a", 1.2, GIB).vm("a2", "host-a", 0.4, GIB).vm("b1", "host-b", 0.8, GIB);
    assertEquals(0.10, Balancer.spread(mild.snapshot()), 1e-9);
    assertEquals("", moves(mild.threshold(3).plan()));
    assertEquals("a2 host-a->host-b BALANCE", moves(mild.threshold(4).plan()));
  }

  @Test
  void aBusyVmGoesToTheBiggerHost() {
    // host-s (2 cores) and host-b (8 cores) both idle; host-x (4 cores) is full. Moving the
    // 1.6-core VM to host-b leaves load 0.2 there; host-s would be at 0.8.
    TestCluster c = new TestCluster().host("host-s", 2, 8 * GIB).host("host-b", 8, 8 * GIB).host("host-x", 4, 8 * GIB)
        .vm("busy", "host-x", 1.6, GIB).vm("rest", "host-x", 2.2, GIB).threshold(5);
    assertEquals("host-b", c.plan().recommendations().get(0).to());
  }

  @Test
  void hostsEnteringMaintenanceAreDrainedWithinTheLimitsInEveryMode() {
    TestCluster c = new TestCluster().host("host-a", 8, 16 * GIB, HostState.ENTERING_MAINTENANCE)
        .host("host-b", 8, 16 * GIB).host("host-c", 8, 16 * GIB)
        .vm("v1", "host-a", 0.5, GIB).vm("v2", "host-a", 0.5, GIB).vm("v3", "host-a", 0.5, GIB)
        .threshold(1).config(DrsConfig.DEFAULT.withThreshold(1).withMode(DrsConfig.Mode.MANUAL)).limits(2, 2, 8);
    Plan plan = c.plan();
    assertEquals("v1 host-a->host-b MANDATORY_MAINTENANCE, v2 host-a->host-c MANDATORY_MAINTENANCE", moves(plan));
    assertTrue(plan.recommendations().stream().allMatch(Recommendation::automatic), "maintenance is applied even in manual");
    assertTrue(plan.recommendations().get(0).reason().startsWith("host-a is entering maintenance; v1 (0.5 cores, 1.0 GiB) goes to host-b"),
        plan.recommendations().get(0).reason());
    assertEquals(List.of(), plan.blocked(), "v3 waits for the limits, it is not blocked");
  }

  @Test
  void aVmThatCannotLeaveIsNamedAndTheOthersKeepMoving() {
    Plan plan = new TestCluster().host("host-a", 8, 16 * GIB, HostState.ENTERING_MAINTENANCE).host("host-b", 8, 4 * GIB)
        .vm("db-1", "host-a", 0.5, 8 * GIB).vm("web-1", "host-a", 0.5, GIB)
        .vm("pinned", "host-a", 0.1, GIB).rule(new Rule.VmHost("pin", "pinned", "host-a", true))
        .limits(4, 4, 8).plan();
    assertEquals("web-1 host-a->host-b MANDATORY_MAINTENANCE", moves(plan));
    assertEquals(List.of(
        new Plan.Blocked("db-1", "host-a", Kind.MANDATORY_MAINTENANCE, "no host has 8.0 GiB free: host-b 4.0 GiB"),
        new Plan.Blocked("pinned", "host-a", Kind.MANDATORY_MAINTENANCE,
            "must rule pin keeps pinned on host-a, which is entering maintenance")), plan.blocked());
  }

  @Test
  void aBrokenMustRuleIsRepairedEvenAtThresholdOne() {
    TestCluster c = new TestCluster().host("host-a", 4, 8 * GIB).host("host-c", 4, 8 * GIB)
        .vm("web-1", "host-a", 0.5, GIB).rule(new Rule.VmHost("web-pin", "web-1", "host-c", true)).threshold(1)
        .config(DrsConfig.DEFAULT.withThreshold(1).withMode(DrsConfig.Mode.PARTIAL));
    Plan plan = c.plan();
    assertEquals("web-1 host-a->host-c MANDATORY_RULE", moves(plan));
    assertEquals("must rule web-pin keeps web-1 on host-c; it runs on host-a", plan.recommendations().get(0).reason());
    assertFalse(plan.recommendations().get(0).automatic(), "partial mode recommends rule moves");
    Plan blocked = new TestCluster().host("host-a", 4, 8 * GIB).host("host-c", 4, 8 * GIB, HostState.IN_MAINTENANCE)
        .vm("web-1", "host-a", 0.5, GIB).rule(new Rule.VmHost("web-pin", "web-1", "host-c", true)).plan();
    assertEquals("", moves(blocked));
    assertEquals("must rule web-pin keeps web-1 on host-c, which is in maintenance", blocked.blocked().get(0).reason());
  }

  @Test
  void aMustPinnedVmIsNeverBalancedAway() {
    Plan plan = hot().rule(new Rule.VmHost("p1", "web-1", "host-a", true))
        .rule(new Rule.VmHost("p2", "web-2", "host-a", true)).rule(new Rule.VmHost("p3", "web-3", "host-a", true)).plan();
    assertEquals("", moves(plan));
  }

  @Test
  void antiAffinityIsRepairedAndNeverBrokenByBalance() {
    // db-1 and db-2 together on host-a: the cheaper (db-2, less memory) leaves
    Plan repair = new TestCluster().host("host-a", 4, 8 * GIB).host("host-b", 4, 8 * GIB)
        .vm("db-1", "host-a", 0.2, 2 * GIB).vm("db-2", "host-a", 0.2, GIB).vm("x", "host-b", 0.4, GIB)
        .rule(new Rule.AntiAffinity("db-apart", List.of("db-1", "db-2"))).threshold(1).plan();
    assertEquals("db-2 host-a->host-b MANDATORY_RULE", moves(repair));
    assertEquals("anti-affinity rule db-apart: db-1 and db-2 both run on host-a; db-2 goes to host-b",
        repair.recommendations().get(0).reason());
    // balance wants web-1 on host-c, but a VM of its anti-affinity rule runs there: it takes web-2 instead
    Plan balance = hot().vm("web-9", "host-c", 0.01, 512 * MIB)
        .rule(new Rule.AntiAffinity("web-apart", List.of("web-1", "web-9"))).plan();
    assertFalse(moves(balance).contains("web-1"), moves(balance));
    assertTrue(moves(balance).startsWith("web-2 host-a->host-c"), moves(balance));
  }

  @Test
  void affinityIsRepairedAndNeverBrokenByBalance() {
    Plan balance = hot().rule(new Rule.Affinity("web-together", List.of("web-1", "web-2", "web-3"))).plan();
    assertEquals("", moves(balance));
    Plan repair = new TestCluster().host("host-a", 4, 8 * GIB).host("host-b", 4, 8 * GIB)
        .vm("app", "host-a", 0.2, GIB).vm("cache", "host-b", 0.2, GIB).vm("db", "host-b", 0.2, GIB)
        .rule(new Rule.Affinity("stack", List.of("app", "cache", "db"))).threshold(1).plan();
    assertEquals("app host-a->host-b MANDATORY_RULE", moves(repair));
    assertEquals("affinity rule stack keeps app with cache on host-b; it runs on host-a",
        repair.recommendations().get(0).reason());
  }

  @Test
  void balanceNeverOverfillsMemoryOrCpu() {
    // host-c has cores to spare but only 256 MiB free: nothing fits there
    Plan memory = new TestCluster().host("host-a", 2, 8 * GIB).host("host-c", 4, GIB)
        .vm("web-1", "host-a", 0.8, 512 * MIB).vm("web-2", "host-a", 0.9, 512 * MIB)
        .vm("filler", "host-c", 0.1, 768 * MIB).plan();
    assertEquals("", moves(memory));
    // host-c (1 core) is idle but web-1 needs more than all of it; web-2 fits
    Plan cpu = new TestCluster().host("host-a", 2, 8 * GIB).host("host-c", 1, 8 * GIB)
        .vm("web-1", "host-a", 1.1, 512 * MIB).vm("web-2", "host-a", 0.8, 512 * MIB).plan();
    assertEquals("web-2 host-a->host-c BALANCE", moves(cpu));
  }

  @Test
  void inFlightMigrationsCountAgainstTheLimits() {
    TestCluster busy = new TestCluster().host("h1", 4, 16 * GIB).host("h2", 4, 16 * GIB).host("h3", 4, 16 * GIB)
        .host("h4", 4, 16 * GIB);
    for (int i = 0; i < 8; i++) {
      busy.vm("v" + i, "h1", 0.45, GIB);
    }
    busy.limits(3, 1, 8).threshold(5);
    Plan free = busy.plan();
    assertEquals(3, free.recommendations().size(), moves(free)); // one into each of h2..h4
    assertEquals(3, free.recommendations().stream().map(Recommendation::to).distinct().count(), moves(free));
    // one migration already goes h1 -> h2: h2 takes no other, h1 sends two more
    Plan withOne = busy.inFlight("v0", "h1", "h2").plan();
    assertEquals(2, withOne.recommendations().size(), moves(withOne));
    assertTrue(withOne.recommendations().stream().noneMatch(r -> r.to().equals("h2")), moves(withOne));
    // the cluster's limit is reached by in-flight migrations alone
    Plan full = busy.limits(3, 1, 1).plan();
    assertEquals("", moves(full));
  }

  @Test
  void aRecentlyMovedVmIsNotMovedBackWithinTheWindow() {
    // web-1 left host-c 10 minutes ago; the load changed and host-c is the emptiest again
    Vm web1 = Vm.of("web-1", "host-a", 0.8, 512 * MIB).movedFrom("host-c", NOW - 10 * MINUTE, "host-a");
    TestCluster c = new TestCluster().host("host-a", 2, 8 * GIB).host("host-c", 4, 8 * GIB)
        .vm(web1).vm("web-2", "host-a", 0.6, 2 * GIB).vm("web-3", "host-a", 0.44, 2 * GIB)
        .vm("idle", "host-c", 0.72, 512 * MIB);
    // moving web-1 back is still the best move by benefit/cost (its small memory outweighs the
    // recent-move penalty), and removes far more than the recent-move bar: only the rule stops it
    Plan inside = Balancer.plan(c.snapshot(NOW));
    assertFalse(moves(inside).contains("web-1"), moves(inside));
    assertTrue(moves(inside).startsWith("web-2 host-a->host-c"), moves(inside));
    // past the 30-minute window it is an ordinary candidate again (and the best one)
    Plan after = Balancer.plan(c.snapshot(NOW + 21 * MINUTE));
    assertTrue(moves(after).startsWith("web-1 host-a->host-c"), moves(after));
  }

  @Test
  void aRecentlyMovedVmMovesOnwardOnlyForALargeBenefit() {
    // web-1 is the best move (spread 0.07 -> 0.01) but came from host-x 5 minutes ago: that gain is
    // not enough to move it again so soon, so the next best (a2) goes
    Vm web1 = Vm.of("web-1", "host-a", 0.3, 512 * MIB).movedFrom("host-x", NOW - 5 * MINUTE, "host-a");
    TestCluster recent = new TestCluster().host("host-a", 4, 8 * GIB).host("host-b", 4, 8 * GIB)
        .host("host-x", 4, 8 * GIB).vm(web1).vm("a2", "host-a", 0.5, 2 * GIB).vm("x", "host-x", 0.4, GIB)
        .vm("b", "host-b", 0.1, GIB).threshold(5);
    assertEquals("a2 host-a->host-b BALANCE", moves(recent.plan()));
    assertEquals("web-1 host-a->host-b BALANCE", moves(recent.vm(web1.withMigrating(false).onHost("host-a")
        .movedFrom("host-x", NOW - 40 * MINUTE, "host-a")).plan()));
  }

  @Test
  void shouldRulesWeighInBalance() {
    // two equal candidates (web-2 and web-3, same load): the one whose should rule names host-c goes
    TestCluster c = new TestCluster().host("host-a", 2, 8 * GIB).host("host-c", 2, 8 * GIB)
        .vm("web-2", "host-a", 0.6, 512 * MIB).vm("web-3", "host-a", 0.6, 512 * MIB).vm("web-4", "host-a", 0.6, 512 * MIB);
    assertEquals("web-2 host-a->host-c BALANCE", moves(c.plan())); // by order alone
    assertEquals("web-3 host-a->host-c BALANCE",
        moves(c.rule(new Rule.VmHost("prefer-c", "web-3", "host-c", false)).plan()));
    // a should rule for the current host keeps a VM home when another can go
    Plan stay = new TestCluster().host("host-a", 2, 8 * GIB).host("host-c", 2, 8 * GIB)
        .vm("web-2", "host-a", 0.6, 512 * MIB).vm("web-3", "host-a", 0.6, 512 * MIB).vm("web-4", "host-a", 0.6, 512 * MIB)
        .rule(new Rule.VmHost("stay-2", "web-2", "host-a", false)).plan();
    assertEquals("web-3 host-a->host-c BALANCE", moves(stay));
  }

  @Test
  void cheaperMovesWinAtEqualBenefit() {
    Plan plan = new TestCluster().host("host-a", 2, 16 * GIB).host("host-c", 2, 16 * GIB)
        .vm("big", "host-a", 0.6, 8 * GIB).vm("dirty", "host-a", 0.6, GIB).vm("cheap", "host-a", 0.6, GIB)
        .vm(Vm.of("dirty", "host-a", 0.6, GIB).withDirtyRate(512 * MIB)).plan();
    assertEquals("cheap host-a->host-c BALANCE", moves(plan));
  }

  @Test
  void idsAreStableWhileTheSituationHoldsAndUnique() {
    Recommendation now = hot().plan().recommendations().get(0);
    Recommendation later = Balancer.plan(hot().snapshot(NOW + 5 * MINUTE)).recommendations().get(0);
    assertEquals(now.id(), later.id());
    assertTrue(now.id().matches("drs-[0-9a-f]{12}"), now.id());
    Vm moved = Vm.of("web-1", "host-a", 0.8, 512 * MIB).movedFrom("host-b", NOW - 60 * MINUTE, "host-a");
    Recommendation afterMove = hot().vm(moved).plan().recommendations().get(0);
    assertEquals("web-1", afterMove.vm());
    assertNotEquals(now.id(), afterMove.id());
  }

  @Test
  void nothingMovesWhenTheSpreadIsUnderTarget() {
    Plan plan = new TestCluster().host("host-a", 4, 8 * GIB).host("host-b", 4, 8 * GIB)
        .vm("a", "host-a", 1.0, GIB).vm("b", "host-b", 1.2, GIB).threshold(5).plan();
    assertEquals(0.025, plan.spreadBefore(), 1e-9);
    assertEquals("", moves(plan));
  }
}
