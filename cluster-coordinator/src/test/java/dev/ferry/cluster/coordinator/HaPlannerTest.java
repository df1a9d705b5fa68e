package dev.ferry.cluster.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.HaPriority;
import dev.ferry.proto.HostInventory;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.HostState;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmRecord;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** HA's pure decisions: who is dead, what restarts where and in which order, and admission control. */
class HaPlannerTest {
  private static final long GIB = 1L << 30;
  private static final long TIMEOUT_MS = 15_000;

  private final Map<String, HostRecord> live = new TreeMap<>();
  private final Map<String, HostInventory> inventory = new TreeMap<>();
  private final Map<String, VmRecord> vms = new TreeMap<>();
  private final Map<String, MigrationRecord> migrations = new TreeMap<>();

  private HaPlannerTest host(String id, long memoryBytes) {
    live.put(id, HostRecord.newBuilder().setHostId(id).setMemoryBytes(memoryBytes).setCpuCores(4)
        .setState(HostState.HOST_ACTIVE).build());
    inventory.put(id, HostInventory.newBuilder().setHostId(id).setUp(true).build());
    return this;
  }

  private HaPlannerTest down(String id) {
    live.remove(id);
    inventory.put(id, HostInventory.newBuilder().setHostId(id).setUp(false).build());
    return this;
  }

  private HaPlannerTest vm(String name, String owner, long memoryBytes, HaPriority priority) {
    vms.put(name, VmRecord.newBuilder().setSpec(GuestSpec.newBuilder().setName(name).setMemoryBytes(memoryBytes))
        .setOwnerHost(owner).setEpoch(4).setDesiredPower(PowerState.POWER_RUNNING).setPower(PowerState.POWER_RUNNING)
        .setHaPriority(priority).build());
    return this;
  }

  private ClusterView view() {
    return new ClusterView(Map.copyOf(live), Map.copyOf(inventory), Map.copyOf(vms), Map.copyOf(migrations), 0);
  }

  @Test
  void aHostIsDeadOnlyWhenBothItsSessionAndItsHeartbeatHaveBeenSilentForTheTimeout() {
    host("host-b", 8 * GIB).down("host-a").down("host-c").down("host-d");
    Map<String, HaPlanner.Silence> silences = Map.of(
        "host-a", new HaPlanner.Silence(60_000, 1_000),       // session gone, heartbeat fresh: cut off from ZooKeeper
        "host-c", new HaPlanner.Silence(TIMEOUT_MS, TIMEOUT_MS), // both silent for the timeout
        "host-d", new HaPlanner.Silence(TIMEOUT_MS - 1, 60_000), // the session went a moment ago
        "host-b", new HaPlanner.Silence(60_000, 60_000));      // live in ZooKeeper: never dead
    assertEquals(Set.of("host-c"), HaPlanner.deadHosts(view(), silences, TIMEOUT_MS));
  }

  @Test
  void restartsGoHighPriorityFirstAndSkipDisabledStoppedAndMigratingVms() {
    host("host-b", 64 * GIB).host("host-c", 64 * GIB).down("host-a");
    vm("z-high", "host-a", GIB, HaPriority.HA_PRIORITY_HIGH);
    vm("a-low", "host-a", GIB, HaPriority.HA_PRIORITY_LOW);
    vm("m-medium", "host-a", GIB, HaPriority.HA_PRIORITY_MEDIUM);
    vm("b-old-record", "host-a", GIB, HaPriority.HA_PRIORITY_UNSPECIFIED); // medium
    vm("off", "host-a", GIB, HaPriority.HA_PRIORITY_DISABLED);
    vm("stopped", "host-a", GIB, HaPriority.HA_PRIORITY_HIGH);
    vms.put("stopped", vms.get("stopped").toBuilder().setDesiredPower(PowerState.POWER_STOPPED).build());
    vm("moving", "host-a", GIB, HaPriority.HA_PRIORITY_HIGH);
    migrations.put("m-1", MigrationRecord.newBuilder().setId("m-1").setVm("moving").setSourceHost("host-a")
        .setTargetHost("host-b").setState(MigrationState.MIGRATION_RUNNING).build());
    vms.put("moving", vms.get("moving").toBuilder().setCurrentMigration("m-1").build());
    vm("elsewhere", "host-b", GIB, HaPriority.HA_PRIORITY_HIGH);

    HaPlanner.Plan plan = HaPlanner.plan(view(), Set.of("host-a"), VmPlacement.LEAST_LOADED, 8, 8);
    assertEquals(List.of("z-high", "b-old-record", "m-medium", "a-low"),
        plan.restarts().stream().map(HaPlanner.Restart::vm).toList());
    for (HaPlanner.Restart r : plan.restarts()) {
      assertEquals("host-a", r.fromHost());
      assertEquals(4, r.epoch(), "the restart moves the epoch the VM had");
      assertTrue(Set.of("host-b", "host-c").contains(r.toHost()), r.toString());
    }
  }

  @Test
  void restartsRespectMemoryAsTheRoundFillsHostsAndThePerHostLimit() {
    host("host-b", 3 * GIB).host("host-c", 2 * GIB).down("host-a");
    for (String name : List.of("vm-1", "vm-2", "vm-3", "vm-4")) {
      vm(name, "host-a", GIB, HaPriority.HA_PRIORITY_MEDIUM);
    }
    vm("vm-big", "host-a", 4 * GIB, HaPriority.HA_PRIORITY_HIGH);
    HaPlanner.Plan plan = HaPlanner.plan(view(), Set.of("host-a"), VmPlacement.LEAST_LOADED, 2, 8);
    assertEquals(List.of("vm-big"), plan.unplaced().stream().map(HaPlanner.Unplaced::vm).toList(), "4 GiB fits nowhere");
    assertEquals(4, plan.restarts().size(), plan.toString());
    Map<String, Long> perHost = new TreeMap<>();
    plan.restarts().forEach(r -> perHost.merge(r.toHost(), 1L, Long::sum));
    assertEquals(Map.of("host-b", 2L, "host-c", 2L), perHost, "two per host, and host-c (2 GiB) takes no third");

    HaPlanner.Plan limited = HaPlanner.plan(view(), Set.of("host-a"), VmPlacement.LEAST_LOADED, 8, 1);
    assertEquals(1, limited.restarts().size(), "at most the cluster's limit per round");
  }

  @Test
  void admissionKeepsTheLargestHostsMemoryFreeForFailover() {
    host("host-a", 8 * GIB).host("host-b", 4 * GIB).host("host-c", 4 * GIB);
    vm("web-1", "host-a", 6 * GIB, HaPriority.HA_PRIORITY_MEDIUM);
    // 16 GiB in all; the largest host (8 GiB) is kept for one failure: 8 GiB usable, 6 committed.
    assertTrue(HaPlanner.refuseAdmission(view(), 1, 2 * GIB, "web-2").isEmpty(), "2 GiB more still fits");
    Optional<String> refused = HaPlanner.refuseAdmission(view(), 1, 3 * GIB, "web-2");
    assertTrue(refused.isPresent());
    assertTrue(refused.get().contains("room for 1 host failure") && refused.get().contains("web-2 needs 3.0 GiB"),
        refused.get());
    assertTrue(HaPlanner.refuseAdmission(view(), 2, GIB, "web-2").isPresent(), "two failures leave 4 GiB");
    assertTrue(HaPlanner.refuseAdmission(view(), 0, 9 * GIB, "web-2").isEmpty(), "0 turns it off");
    vms.put("web-1", vms.get("web-1").toBuilder().setDesiredPower(PowerState.POWER_SUSPENDED).build());
    assertTrue(HaPlanner.refuseAdmission(view(), 1, 8 * GIB, "web-2").isEmpty(), "a suspended VM holds no memory");
  }

  @Test
  void admissionIsNotEnforcedWithNoMoreHostsThanFailuresToSurvive() {
    host("host-a", 4 * GIB);
    assertTrue(HaPlanner.refuseAdmission(view(), 1, GIB, "web-1").isEmpty(), "a one-host cluster runs VMs");
    assertEquals(0, HaPlanner.reserveAndAdmissible(view(), 1)[0]);
  }
}
