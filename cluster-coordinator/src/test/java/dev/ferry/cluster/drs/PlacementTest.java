package dev.ferry.cluster.drs;

import static dev.ferry.cluster.drs.TestCluster.GIB;
import static dev.ferry.cluster.drs.TestCluster.MIB;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Placement's hard constraints, its preference, and the reasons it gives when no host fits. */
class PlacementTest {

  private static String placed(Placement.Result result) {
    assertTrue(result instanceof Placement.Placed, () -> "expected a host, got " + result);
    return ((Placement.Placed) result).host();
  }

  private static String refused(Placement.Result result) {
    assertTrue(result instanceof Placement.NoHost, () -> "expected no host, got " + result);
    return ((Placement.NoHost) result).reason();
  }

  @Test
  void theBiggerHostWinsAtEqualCoresInUse() {
    // 1 core in use on each: host-a is at 50 % of 2 cores, host-b at 12.5 % of 8 cores.
    Snapshot s = new TestCluster().host("host-a", 2, 16 * GIB).host("host-b", 8, 16 * GIB)
        .vm("x", "host-a", 1, GIB).vm("y", "host-b", 1, GIB).snapshot();
    assertEquals("host-b", placed(Placement.place(s, Vm.of("new", null, 0.5, GIB))));
  }

  @Test
  void memoryIsHardAndTheReasonListsWhatIsFree() {
    Snapshot s = new TestCluster().host("host-a", 4, 4 * GIB).host("host-b", 4, 4 * GIB)
        .vm("x", "host-a", 0.1, 2970 * MIB).vm("y", "host-b", 0.1, 3584 * MIB).snapshot();
    assertEquals("no host has 2.0 GiB free: host-a 1.1 GiB, host-b 512.0 MiB",
        refused(Placement.place(s, Vm.of("big", null, 0.1, 2 * GIB))));
    // the idle host with too little memory loses to the busier one with enough
    Snapshot t = new TestCluster().host("host-a", 4, 4 * GIB).host("host-b", 4, 8 * GIB)
        .vm("x", "host-a", 0.1, 3 * GIB).vm("y", "host-b", 3, GIB).snapshot();
    assertEquals("host-b", placed(Placement.place(t, Vm.of("big", null, 0.1, 2 * GIB))));
  }

  @Test
  void cpuCapacityIsHard() {
    Snapshot s = new TestCluster().host("host-a", 2, 8 * GIB).host("host-b", 2, 8 * GIB)
        .vm("x", "host-a", 1.5, GIB).vm("y", "host-b", 1.8, GIB).snapshot();
    assertEquals("host-a", placed(Placement.place(s, Vm.of("new", null, 0.5, GIB))));
    String reason = refused(Placement.place(s, Vm.of("new", null, 0.6, GIB)));
    assertTrue(reason.startsWith("no host fits new: host-a has 0.50 of 2 cores free, new uses 0.60"), reason);
  }

  @Test
  void neverAHostInMaintenanceEnteringItOrDown() {
    TestCluster c = new TestCluster().host("busy", 4, 8 * GIB).vm("x", "busy", 3, GIB)
        .host("m", 32, 64 * GIB, HostState.IN_MAINTENANCE).host("e", 32, 64 * GIB, HostState.ENTERING_MAINTENANCE)
        .host("d", 32, 64 * GIB, HostState.DOWN);
    assertEquals("busy", placed(Placement.place(c.snapshot(), Vm.of("new", null, 0.5, GIB))));
    assertEquals("no host fits new: busy has 1.00 of 4 cores free, new uses 1.50",
        refused(Placement.place(c.snapshot(), Vm.of("new", null, 1.5, GIB))));
  }

  @Test
  void aMustRuleToAHostInMaintenanceNamesBoth() {
    Snapshot s = new TestCluster().host("host-a", 4, 8 * GIB).host("host-c", 4, 8 * GIB, HostState.IN_MAINTENANCE)
        .rule(new Rule.VmHost("web-pin", "web-1", "host-c", true)).snapshot();
    assertEquals("must rule web-pin keeps web-1 on host-c, which is in maintenance",
        refused(Placement.place(s, Vm.of("web-1", null, 0.5, GIB))));
    Snapshot ok = new TestCluster().host("host-a", 4, 8 * GIB).host("host-c", 4, 8 * GIB).vm("x", "host-c", 3, GIB)
        .rule(new Rule.VmHost("web-pin", "web-1", "host-c", true)).snapshot();
    assertEquals("host-c", placed(Placement.place(ok, Vm.of("web-1", null, 0.5, GIB))));
  }

  @Test
  void aShouldRuleWeighsButDoesNotOverrideALargeDifference() {
    TestCluster c = new TestCluster().host("host-a", 4, 8 * GIB).host("host-b", 4, 8 * GIB)
        .rule(new Rule.VmHost("prefer-b", "web-1", "host-b", false));
    // 0.4 cores busier (10 points) on host-b: the preference wins
    Snapshot near = c.vm("x", "host-b", 0.4, GIB).snapshot();
    assertEquals("host-b", placed(Placement.place(near, Vm.of("web-1", null, 0.1, GIB))));
    // 2 cores busier (50 points): load wins
    Snapshot far = c.vm("x", "host-b", 2, GIB).snapshot();
    assertEquals("host-a", placed(Placement.place(far, Vm.of("web-1", null, 0.1, GIB))));
  }

  @Test
  void antiAffinityKeepsApartAndAffinityKeepsTogether() {
    TestCluster c = new TestCluster().host("host-a", 4, 8 * GIB).host("host-b", 4, 8 * GIB)
        .vm("db-1", "host-a", 0.1, GIB).vm("app-1", "host-b", 3, GIB);
    Snapshot anti = c.rule(new Rule.AntiAffinity("db-apart", List.of("db-1", "db-2"))).snapshot();
    // host-a is emptier, but db-1 runs there
    assertEquals("host-b", placed(Placement.place(anti, Vm.of("db-2", null, 0.1, GIB))));
    Snapshot aff = new TestCluster().host("host-a", 4, 8 * GIB).host("host-b", 4, 8 * GIB)
        .vm("app-1", "host-a", 0.1, GIB).vm("cache-1", "host-b", 3, GIB)
        .rule(new Rule.Affinity("app-cache", List.of("app-2", "cache-1"))).snapshot();
    assertEquals("host-b", placed(Placement.place(aff, Vm.of("app-2", null, 0.1, GIB))));
    String reason = refused(Placement.place(aff, Vm.of("app-2", null, 1.1, GIB)));
    assertTrue(reason.contains("affinity rule app-cache keeps app-2 with cache-1 on host-b"), reason);
  }

  @Test
  void placeAllCountsEachPlacementForTheNext() {
    Snapshot s = new TestCluster().host("host-a", 8, 3 * GIB).host("host-b", 8, 3 * GIB)
        .rule(new Rule.AntiAffinity("apart", List.of("r-1", "r-2"))).snapshot();
    List<Placement.Result> results = Placement.placeAll(s, List.of(Vm.of("r-1", null, 0.1, 2 * GIB),
        Vm.of("r-2", null, 0.1, 512 * MIB), Vm.of("r-3", null, 0.1, 2 * GIB), Vm.of("r-4", null, 0.1, 2 * GIB)));
    String first = placed(results.get(0));
    String second = placed(results.get(1));
    assertTrue(!first.equals(second), "anti-affinity: " + results);
    assertEquals(first.equals("host-a") ? "host-b" : "host-a", placed(results.get(2)));
    // 3 GiB each: 2 + 2 GiB are promised, 0.5 GiB on one, so the fourth fits nowhere
    assertTrue(refused(results.get(3)).startsWith("no host has 2.0 GiB free"), results.get(3).toString());
  }

  @Test
  void aDeadHostsVmGoesElsewhere() {
    Snapshot s = new TestCluster().host("dead", 32, 64 * GIB, HostState.DOWN).host("host-a", 4, 8 * GIB)
        .vm("web-1", "dead", 0.5, GIB).snapshot();
    assertEquals("host-a", placed(Placement.place(s, s.vms().get(0))));
  }

  @Test
  void snapshotFieldsAreValidatedByName() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> new Host("host-a", 0, 0, GIB, 0, HostState.ACTIVE));
    assertTrue(e.getMessage().startsWith("host host-a cpu capacity (cores)"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> new TestCluster().host("host-a", 4, GIB)
        .vm("x", "host-z", 1, GIB).snapshot());
    assertEquals("vm x host: host-z is not a host of the snapshot", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> DrsConfig.DEFAULT.withThreshold(6));
    assertTrue(e.getMessage().startsWith("drs threshold"), e.getMessage());
  }
}
