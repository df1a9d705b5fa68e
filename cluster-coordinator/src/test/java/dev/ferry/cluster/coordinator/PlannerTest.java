package dev.ferry.cluster.coordinator;

import static dev.ferry.proto.MigrationState.MIGRATION_ABORTED;
import static dev.ferry.proto.MigrationState.MIGRATION_CANCELLED;
import static dev.ferry.proto.MigrationState.MIGRATION_COMPLETED;
import static dev.ferry.proto.MigrationState.MIGRATION_QUEUED;
import static dev.ferry.proto.MigrationState.MIGRATION_RUNNING;
import static dev.ferry.proto.MigrationState.MIGRATION_UNKNOWN;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.cluster.coordinator.Planner.Abort;
import dev.ferry.cluster.coordinator.Planner.Action;
import dev.ferry.cluster.coordinator.Planner.Admit;
import dev.ferry.cluster.coordinator.Planner.Cancel;
import dev.ferry.cluster.coordinator.Planner.ClearVmMigration;
import dev.ferry.cluster.coordinator.Planner.Complete;
import dev.ferry.cluster.coordinator.Planner.Limits;
import dev.ferry.cluster.coordinator.Planner.MarkHost;
import dev.ferry.cluster.coordinator.Planner.Settle;
import dev.ferry.cluster.model.MigrationStates;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.HostInventory;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.HostState;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationReport;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmRecord;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

/**
 * The planner's decisions over hand-built cluster views: refusals with the exact operator-facing
 * reason, placement, and each round's admissions and clean-ups; then seeded random rounds of a
 * small cluster simulation whose admissions must never exceed a limit. A failing seed is printed;
 * {@code -Dferry.planner.seed=S} replays the run.
 */
class PlannerTest {
  private static final long MIB = 1L << 20;
  private static final long GIB = 1L << 30;
  private static final String EPYC = "AMD EPYC 7443";
  private static final long VM_EPOCH = 3;
  private static final long NOW_MS = 1_700_000_000_000L;

  // --- A hand-built cluster ---------------------------------------------------------------------

  /** Records keyed and iterated in name order; every live host is in the inventory as up unless said otherwise. */
  private static final class Cluster {
    final Map<String, HostRecord> live = new TreeMap<>();
    final Map<String, HostInventory> inventory = new TreeMap<>();
    final Map<String, VmRecord> vms = new TreeMap<>();
    final Map<String, MigrationRecord> migrations = new TreeMap<>();

    Cluster host(String id, long memoryBytes) {
      return host(id, memoryBytes, h -> h);
    }

    Cluster host(String id, long memoryBytes, UnaryOperator<HostRecord.Builder> change) {
      live.put(id, change.apply(HostRecord.newBuilder().setHostId(id).setAddress(id + ":7700").setCpuCores(8)
          .setMemoryBytes(memoryBytes).setCpuModel(EPYC).setState(HostState.HOST_ACTIVE)).build());
      inventory.put(id, HostInventory.newBuilder().setHostId(id).setUp(true).build());
      return this;
    }

    /** A host the coordinator has seen, now gone (no live node). */
    Cluster downHost(String id) {
      live.remove(id);
      inventory.put(id, HostInventory.newBuilder().setHostId(id).setUp(false).build());
      return this;
    }

    Cluster vm(String name, String owner, long memoryBytes) {
      return vm(name, owner, memoryBytes, v -> v);
    }

    Cluster vm(String name, String owner, long memoryBytes, UnaryOperator<VmRecord.Builder> change) {
      vms.put(name, change.apply(VmRecord.newBuilder()
          .setSpec(GuestSpec.newBuilder().setName(name).setMemoryBytes(memoryBytes).setVcpus(2))
          .setOwnerHost(owner).setEpoch(VM_EPOCH).setDesiredPower(PowerState.POWER_RUNNING)
          .setPower(PowerState.POWER_RUNNING)).build());
      return this;
    }

    /** A migration of {@code vm} from its owner; the VM record points at it while it is active. */
    Cluster migration(String id, String vm, String target, MigrationState state, long createdMs) {
      return migration(id, vm, target, state, createdMs, m -> m);
    }

    Cluster migration(String id, String vm, String target, MigrationState state, long createdMs,
        UnaryOperator<MigrationRecord.Builder> change) {
      VmRecord v = vms.get(vm);
      migrations.put(id, change.apply(MigrationRecord.newBuilder().setId(id).setVm(vm)
          .setSourceHost(v == null ? "host-gone" : v.getOwnerHost()).setTargetHost(target).setState(state)
          .setVmEpoch(v == null ? VM_EPOCH : v.getEpoch()).setCreatedMs(createdMs)).build());
      if (v != null) {
        vms.put(vm, v.toBuilder().setCurrentMigration(id).build());
      }
      return this;
    }

    ClusterView view() {
      return new ClusterView(frozen(live), frozen(inventory), frozen(vms), frozen(migrations), NOW_MS);
    }

    /** A copy that iterates in key order, so every plan is the same on every run. */
    private static <T> Map<String, T> frozen(Map<String, T> records) {
      return Collections.unmodifiableMap(new TreeMap<>(records));
    }
  }

  /** host-a and host-b, 16 GiB each, same CPU; web-1 (4 GiB) runs on host-a. */
  private static Cluster twoHosts() {
    return new Cluster().host("host-a", 16 * GIB).host("host-b", 16 * GIB).vm("web-1", "host-a", 4 * GIB);
  }

  private static Optional<String> refuse(Cluster c, String vm, String target) {
    return Planner.refuseMigration(c.view(), vm, target);
  }

  private static GuestSpec spec(String name, long memoryBytes) {
    return GuestSpec.newBuilder().setName(name).setMemoryBytes(memoryBytes).setVcpus(2).build();
  }

  private static List<Action> plan(Cluster c) {
    return Planner.plan(c.view(), Limits.DEFAULT);
  }

  private static List<String> admitted(List<Action> actions) {
    return actions.stream().filter(a -> a instanceof Admit).map(a -> ((Admit) a).migrationId()).toList();
  }

  private static Set<String> mentioned(List<Action> actions) {
    Set<String> ids = new HashSet<>();
    for (Action a : actions) {
      migrationId(a).ifPresent(ids::add);
    }
    return ids;
  }

  @Test
  void theSourcesReportSettlesTheStateAndACommitWinsOverAReportedAbort() {
    Cluster c = new Cluster();
    c.host("host-a", 8 * GIB);
    c.host("host-b", 8 * GIB);
    c.vm("web-1", "host-a", GIB);
    c.vm("db-1", "host-a", GIB);
    MigrationReport aborted = MigrationReport.newBuilder().setPhase(MigrationPhase.PHASE_ABORTED)
        .setReason("link to target lost").build();
    c.migration("m-1", "web-1", "host-b", MIGRATION_RUNNING, 1, m -> m.setReport(aborted));
    c.migration("m-2", "db-1", "host-b", MIGRATION_RUNNING, 2, m -> m.setCommitOpId("op-2").setReport(aborted));
    List<Action> actions = Planner.plan(c.view(), Limits.DEFAULT);
    assertTrue(actions.contains(new Settle("m-1", MIGRATION_ABORTED, "link to target lost")), actions.toString());
    assertTrue(actions.contains(new Settle("m-2", MIGRATION_COMPLETED, "link to target lost")), actions.toString());
    assertEquals(2, actions.stream().filter(a -> migrationId(a).isPresent()).count(), actions.toString());
  }

  private static Optional<String> migrationId(Action a) {
    if (a instanceof Admit x) {
      return Optional.of(x.migrationId());
    } else if (a instanceof Abort x) {
      return Optional.of(x.migrationId());
    } else if (a instanceof Cancel x) {
      return Optional.of(x.migrationId());
    } else if (a instanceof Complete x) {
      return Optional.of(x.migrationId());
    } else if (a instanceof Settle x) {
      return Optional.of(x.migrationId());
    }
    return Optional.empty();
  }

  // --- refuseMigration ---------------------------------------------------------------------------

  @Test
  void acceptsAMigrationThatFits() {
    assertEquals(Optional.empty(), refuse(twoHosts(), "web-1", "host-b"));
  }

  @Test
  void refusesAnUnknownVm() {
    assertEquals(Optional.of("there is no VM named web-9"), refuse(twoHosts(), "web-9", "host-b"));
  }

  @Test
  void refusesAVmThatIsAlreadyMigrating() {
    Cluster c = twoHosts().host("host-c", 16 * GIB).migration("m-17", "web-1", "host-c", MIGRATION_QUEUED, 1);
    assertEquals(Optional.of("web-1 is already migrating (m-17)"), refuse(c, "web-1", "host-b"));
    c.migration("m-17", "web-1", "host-c", MIGRATION_RUNNING, 1);
    assertEquals(Optional.of("web-1 is already migrating (m-17)"), refuse(c, "web-1", "host-b"));
    c.migration("m-17", "web-1", "host-c", MIGRATION_UNKNOWN, 1);
    assertEquals(Optional.of("web-1 is already migrating (m-17)"), refuse(c, "web-1", "host-b"));
  }

  @Test
  void aFinishedOrMissingMigrationDoesNotBlockTheNext() {
    Cluster c = twoHosts().host("host-c", 16 * GIB).migration("m-17", "web-1", "host-c", MIGRATION_ABORTED, 1);
    assertEquals(Optional.empty(), refuse(c, "web-1", "host-b"));
    c.migrations.remove("m-17");
    assertEquals(Optional.empty(), refuse(c, "web-1", "host-b"));
  }

  @Test
  void refusesATargetInMaintenance() {
    Cluster c = twoHosts().host("host-c", 16 * GIB, h -> h.setState(HostState.HOST_IN_MAINTENANCE));
    assertEquals(Optional.of("host-c is in maintenance"), refuse(c, "web-1", "host-c"));
    c.host("host-c", 16 * GIB, h -> h.setState(HostState.HOST_ENTERING_MAINTENANCE));
    assertEquals(Optional.of("host-c is in maintenance"), refuse(c, "web-1", "host-c"));
  }

  @Test
  void refusesATargetWithoutRoomAndSaysHowMuch() {
    // 8 GiB - 6963 MiB = 1229 MiB = 1.2 GiB free.
    Cluster c = twoHosts().host("host-b", 8 * GIB).vm("db-1", "host-b", 6963 * MIB);
    assertEquals(Optional.of("host-b has 1.2 GiB free, web-1 needs 4.0 GiB"), refuse(c, "web-1", "host-b"));
  }

  @Test
  void memoryOnItsWayToATargetIsTakenThere() {
    // web-2 (6 GiB) is queued to host-b (8 GiB): only 2 GiB remain for anyone else.
    Cluster c = twoHosts().host("host-b", 8 * GIB).vm("web-2", "host-a", 6 * GIB)
        .migration("m-2", "web-2", "host-b", MIGRATION_QUEUED, 1);
    assertEquals(Optional.of("host-b has 2.0 GiB free, web-1 needs 4.0 GiB"), refuse(c, "web-1", "host-b"));
    // Once committed, the VM belongs to host-b and counts there as its own, not twice.
    c.vm("web-2", "host-b", 6 * GIB).migration("m-2", "web-2", "host-b", MIGRATION_COMPLETED, 1,
        m -> m.setSourceHost("host-a").setCommitOpId("op-1"));
    assertEquals(Optional.of("host-b has 2.0 GiB free, web-1 needs 4.0 GiB"), refuse(c, "web-1", "host-b"));
  }

  @Test
  void tellsADownTargetFromAnUnknownOne() {
    Cluster c = twoHosts().downHost("host-d");
    assertEquals(Optional.of("host host-d is down"), refuse(c, "web-1", "host-d"));
    assertEquals(Optional.of("there is no host named host-z"), refuse(c, "web-1", "host-z"));
  }

  @Test
  void refusesAMoveToTheSameHost() {
    assertEquals(Optional.of("web-1 already runs on host-a"), refuse(twoHosts(), "web-1", "host-a"));
  }

  @Test
  void refusesADifferentCpuModel() {
    Cluster c = twoHosts().host("host-c", 16 * GIB, h -> h.setCpuModel("Intel Xeon 8380"));
    assertEquals(Optional.of("host-c has a different CPU (Intel Xeon 8380) than host-a (AMD EPYC 7443): "
        + "web-1 cannot move live between them"), refuse(c, "web-1", "host-c"));
  }

  @Test
  void refusesAVmThatIsNotRunning() {
    String reason = "web-1 is not running on host-a (live migration moves running VMs)";
    Cluster c = twoHosts().vm("web-1", "host-a", 4 * GIB, v -> v.setPower(PowerState.POWER_STOPPED));
    assertEquals(Optional.of(reason), refuse(c, "web-1", "host-b"));
    // Still running, but the operator asked for it to stop: no migration either.
    c.vm("web-1", "host-a", 4 * GIB, v -> v.setDesiredPower(PowerState.POWER_STOPPED));
    assertEquals(Optional.of(reason), refuse(c, "web-1", "host-b"));
  }

  @Test
  void refusesAVmWhoseHostIsDown() {
    Cluster c = twoHosts().downHost("host-a");
    assertEquals(Optional.of("web-1's host host-a is down"), refuse(c, "web-1", "host-b"));
  }

  /**
   * A host killed a few seconds ago keeps its live node until its ZooKeeper session expires; its
   * heartbeat (updated_ms, every ~2 s) tells that it is gone.
   */
  @Test
  void refusesATargetOrSourceThatHasNotReportedLately() {
    Cluster c = twoHosts().host("host-b", 16 * GIB, h -> h.setUpdatedMs(NOW_MS - 6_400));
    assertEquals(Optional.of("host-b has not reported for 6 s"), refuse(c, "web-1", "host-b"));
    c.host("host-b", 16 * GIB, h -> h.setUpdatedMs(NOW_MS - 1_900));
    assertEquals(Optional.empty(), refuse(c, "web-1", "host-b"), "a heartbeat 2 s old is on time");
    c.host("host-a", 16 * GIB, h -> h.setUpdatedMs(NOW_MS - 30_000));
    assertEquals(Optional.of("web-1's host host-a has not reported for 30 s"), refuse(c, "web-1", "host-b"));
  }

  @Test
  void aQueuedMigrationWaitsWhileItsTargetIsSilentAndStartsWhenItReports() {
    Cluster c = twoHosts().host("host-b", 16 * GIB, h -> h.setUpdatedMs(NOW_MS - 8_000))
        .migration("m-1", "web-1", "host-b", MIGRATION_QUEUED, 1);
    assertEquals(List.of(), plan(c), "neither admitted nor aborted: the host may report again or go down");
    c.host("host-b", 16 * GIB, h -> h.setUpdatedMs(NOW_MS - 500));
    assertEquals(List.of(new Admit("m-1")), plan(c));
    c.downHost("host-b");
    assertEquals(List.of(new Abort("m-1", "host host-b is down")), plan(c));
  }

  @Test
  void aNewVmIsNotPlacedOnASilentHost() {
    Cluster c = new Cluster().host("host-a", 16 * GIB, h -> h.setUpdatedMs(NOW_MS - 10_000))
        .host("host-b", 4 * GIB, h -> h.setLoad(7));
    assertEquals("host-b", Planner.placeVm(c.view(), spec("web-9", GIB), "").value());
    assertEquals("host-a has not reported for 10 s", Planner.placeVm(c.view(), spec("web-9", GIB), "host-a").refusal());
  }

  // --- placeVm -----------------------------------------------------------------------------------

  /** host-a busy, host-b idle but nearly full, host-c lightly loaded with room, host-m in maintenance. */
  private static Cluster placement() {
    return new Cluster()
        .host("host-a", 64 * GIB, h -> h.setLoad(6.0))
        .host("host-b", 8 * GIB, h -> h.setLoad(0.5)).vm("db-1", "host-b", 6 * GIB)
        .host("host-c", 64 * GIB, h -> h.setLoad(2.0))
        .host("host-m", 64 * GIB, h -> h.setLoad(0.0).setState(HostState.HOST_IN_MAINTENANCE));
  }

  @Test
  void placesOnTheLeastLoadedActiveHostThatFits() {
    Planner.Result r = Planner.placeVm(placement().view(), spec("web-9", 4 * GIB), "");
    assertTrue(r.ok(), r.refusal());
    assertEquals("host-c", r.value());
    // A small VM fits on host-b, the least loaded.
    assertEquals("host-b", Planner.placeVm(placement().view(), spec("web-9", 1 * GIB), "").value());
  }

  @Test
  void loadIsPerCoreAndTiesGoToMoreFreeMemory() {
    Cluster c = new Cluster()
        .host("host-a", 64 * GIB, h -> h.setLoad(4.0).setCpuCores(32)) // 0.125 per core
        .host("host-b", 64 * GIB, h -> h.setLoad(2.0).setCpuCores(8)); // 0.25 per core
    assertEquals("host-a", Planner.placeVm(c.view(), spec("web-9", GIB), "").value());
    c.host("host-b", 64 * GIB, h -> h.setLoad(4.0).setCpuCores(32)).vm("db-1", "host-a", 8 * GIB);
    assertEquals("host-b", Planner.placeVm(c.view(), spec("web-9", GIB), "").value());
  }

  @Test
  void refusesWhenNoHostHasRoom() {
    Planner.Result r = Planner.placeVm(placement().view(), spec("big-1", 100 * GIB), "");
    assertFalse(r.ok());
    assertNull(r.value());
    assertEquals("no active host has 100.0 GiB free for big-1", r.refusal());
  }

  @Test
  void refusesADuplicateName() {
    Planner.Result r = Planner.placeVm(placement().view(), spec("db-1", GIB), "");
    assertEquals("a VM named db-1 already exists (on host-b)", r.refusal());
    assertEquals("a VM named db-1 already exists (on host-b)",
        Planner.placeVm(placement().view(), spec("db-1", GIB), "host-c").refusal());
  }

  @Test
  void honoursTheRequestedHostEvenIfBusier() {
    Planner.Result r = Planner.placeVm(placement().view(), spec("web-9", 4 * GIB), "host-a");
    assertTrue(r.ok(), r.refusal());
    assertEquals("host-a", r.value());
  }

  @Test
  void refusesTheRequestedHostWithAReason() {
    Cluster c = placement().downHost("host-d");
    assertEquals("host-b has 2.0 GiB free, web-9 needs 4.0 GiB",
        Planner.placeVm(c.view(), spec("web-9", 4 * GIB), "host-b").refusal());
    assertEquals("host-m is in maintenance", Planner.placeVm(c.view(), spec("web-9", GIB), "host-m").refusal());
    assertEquals("host host-d is down", Planner.placeVm(c.view(), spec("web-9", GIB), "host-d").refusal());
    assertEquals("there is no host named host-z", Planner.placeVm(c.view(), spec("web-9", GIB), "host-z").refusal());
  }

  // --- plan: admission under the limits -------------------------------------------------------------

  @Test
  void limitsHaveDefaultsAndBounds() {
    assertEquals(new Limits(2, 2, 8), Limits.DEFAULT);
    assertThrows(IllegalArgumentException.class, () -> new Limits(0, 2, 8));
    assertThrows(IllegalArgumentException.class, () -> new Limits(2, 65, 8));
    assertThrows(IllegalArgumentException.class, () -> new Limits(2, 2, 1025));
  }

  /** {@code n} VMs on host-a, each queued to its own target host-t0..; created in reverse id order. */
  private static Cluster queuedFromOneSource(int n) {
    Cluster c = new Cluster().host("host-a", 64 * GIB);
    for (int i = 0; i < n; i++) {
      c.host("host-t" + i, 16 * GIB).vm("web-" + i, "host-a", GIB)
          .migration("m-" + i, "web-" + i, "host-t" + i, MIGRATION_QUEUED, 1000 - i * 10);
    }
    return c;
  }

  @Test
  void admitsAtMostTwoOutOfOneHostOldestFirst() {
    List<Action> actions = plan(queuedFromOneSource(5));
    // m-4 (created 960) and m-3 (970) are the oldest; the other three stay queued, untouched.
    assertEquals(List.of(new Admit("m-4"), new Admit("m-3")), actions);
  }

  @Test
  void admitsAtMostTwoIntoOneHost() {
    Cluster c = new Cluster().host("host-b", 64 * GIB);
    for (int i = 0; i < 5; i++) {
      c.host("host-s" + i, 16 * GIB).vm("web-" + i, "host-s" + i, GIB)
          .migration("m-" + i, "web-" + i, "host-b", MIGRATION_QUEUED, 100 + i);
    }
    assertEquals(List.of(new Admit("m-0"), new Admit("m-1")), plan(c));
  }

  @Test
  void admitsAtMostEightInTheCluster() {
    // 6 sources x 2 queued each, all to distinct targets: 12 allowed per host, 8 in the cluster.
    Cluster c = new Cluster();
    int created = 0;
    for (int s = 0; s < 6; s++) {
      c.host("host-s" + s, 16 * GIB);
      for (int k = 0; k < 2; k++) {
        String name = "web-" + s + "-" + k;
        c.host("host-t" + s + "-" + k, 16 * GIB).vm(name, "host-s" + s, GIB)
            .migration("m-" + s + "-" + k, name, "host-t" + s + "-" + k, MIGRATION_QUEUED, 100 + created++);
      }
    }
    assertEquals(List.of("m-0-0", "m-0-1", "m-1-0", "m-1-1", "m-2-0", "m-2-1", "m-3-0", "m-3-1"),
        admitted(plan(c)));
    assertEquals(List.of("m-0-0", "m-0-1", "m-1-0"), admitted(Planner.plan(c.view(), new Limits(2, 2, 3))));
  }

  @Test
  void runningMigrationsTakeTheirSlots() {
    Cluster c = queuedFromOneSource(4);
    c.migration("m-0", "web-0", "host-t0", MIGRATION_RUNNING, 1000);
    assertEquals(List.of(new Admit("m-3")), plan(c));
    c.migration("m-3", "web-3", "host-t3", MIGRATION_RUNNING, 970);
    assertEquals(List.of(), plan(c));
  }

  @Test
  void equalCreationTimesGoInIdOrder() {
    Cluster c = new Cluster().host("host-a", 64 * GIB).host("host-b", 64 * GIB);
    for (String id : List.of("m-c", "m-a", "m-b")) {
      c.vm("web-" + id, "host-a", GIB).migration(id, "web-" + id, "host-b", MIGRATION_QUEUED, 500);
    }
    assertEquals(List.of("m-a", "m-b"), admitted(plan(c)));
  }

  /**
   * Regression: a queued migration's own room on the target was counted twice (once as reserved
   * for it, once as what it needs), so any VM needing more than half of the target's free memory
   * was accepted by refuseMigration and then aborted by the next round.
   */
  @Test
  void aQueuedMigrationIsNotRefusedItsOwnReservation() {
    Cluster c = twoHosts().host("host-b", 8 * GIB).vm("web-1", "host-a", 6 * GIB);
    assertEquals(Optional.empty(), refuse(c, "web-1", "host-b"));
    c.migration("m-1", "web-1", "host-b", MIGRATION_QUEUED, 1);
    assertEquals(List.of(new Admit("m-1")), plan(c));
    // A VM that needs exactly all the free memory fits too.
    c = twoHosts().host("host-b", 8 * GIB).vm("web-1", "host-a", 8 * GIB)
        .migration("m-1", "web-1", "host-b", MIGRATION_QUEUED, 1);
    assertEquals(List.of(new Admit("m-1")), plan(c));
  }

  @Test
  void aQueuedMigrationThatNoLongerFitsIsAborted() {
    // db-1 was placed on host-b after web-1's migration was queued: 8 - 6 GiB left, with web-1's room.
    Cluster c = twoHosts().host("host-b", 8 * GIB).vm("db-1", "host-b", 6 * GIB)
        .migration("m-1", "web-1", "host-b", MIGRATION_QUEUED, 1);
    assertEquals(List.of(new Abort("m-1", "host-b has 2.0 GiB free, web-1 needs 4.0 GiB")), plan(c));
  }

  // --- plan: clean-ups -------------------------------------------------------------------------------

  @Test
  void aRunningMigrationWhoseSourceWentDownIsAbortedUnlessCommitted() {
    Cluster c = twoHosts().vm("web-2", "host-a", GIB)
        .migration("m-1", "web-1", "host-b", MIGRATION_RUNNING, 1)
        .migration("m-2", "web-2", "host-b", MIGRATION_RUNNING, 2, m -> m.setCommitOpId("op-2"))
        .downHost("host-a");
    List<Action> actions = plan(c);
    assertTrue(actions.contains(new Abort("m-1", "source host host-a went down")), actions.toString());
    assertTrue(actions.contains(new Complete("m-2", "committed; its source host-a went down before reporting")),
        actions.toString());
    assertEquals(2, actions.size(), actions.toString());
  }

  @Test
  void migrationsFromADownSourceFreeTheirTargetsSlots() {
    // m-1 and m-2 run into host-b from host-a, which is gone: host-b can take two new ones.
    Cluster c = twoHosts().vm("web-2", "host-a", GIB)
        .migration("m-1", "web-1", "host-b", MIGRATION_RUNNING, 1)
        .migration("m-2", "web-2", "host-b", MIGRATION_RUNNING, 2)
        .host("host-c", 16 * GIB).vm("web-3", "host-c", GIB).vm("web-4", "host-c", GIB)
        .migration("m-3", "web-3", "host-b", MIGRATION_QUEUED, 3)
        .migration("m-4", "web-4", "host-b", MIGRATION_QUEUED, 4)
        .downHost("host-a");
    assertEquals(List.of("m-3", "m-4"), admitted(plan(c)));
  }

  @Test
  void anUnknownOutcomeIsResolvedFromTheRecord() {
    Cluster c = twoHosts().vm("web-2", "host-a", GIB)
        .migration("m-1", "web-1", "host-b", MIGRATION_UNKNOWN, 1, m -> m.setCommitOpId("op-1"))
        .migration("m-2", "web-2", "host-b", MIGRATION_UNKNOWN, 2);
    assertEquals(List.of(new Complete("m-1", "the commit is recorded"),
        new Abort("m-2", "the commit never landed (its outcome was unknown to the source)")), plan(c));
  }

  @Test
  void aCancelledQueuedMigrationIsCancelledAndTakesNoSlot() {
    Cluster c = queuedFromOneSource(3);
    c.migration("m-2", "web-2", "host-t2", MIGRATION_QUEUED, 980, m -> m.setCancelRequested(true));
    assertEquals(List.of(new Cancel("m-2"), new Admit("m-1"), new Admit("m-0")), plan(c));
  }

  @Test
  void aQueuedMigrationOfAVmThatMovedIsAborted() {
    Cluster c = twoHosts().host("host-c", 16 * GIB).migration("m-1", "web-1", "host-c", MIGRATION_QUEUED, 1);
    c.vms.put("web-1", c.vms.get("web-1").toBuilder().setEpoch(VM_EPOCH + 1).build());
    assertEquals(List.of(new Abort("m-1", "web-1 moved since the migration was requested")), plan(c));
  }

  @Test
  void aQueuedMigrationOfAVmThatIsGoneIsAborted() {
    Cluster c = twoHosts().migration("m-1", "web-1", "host-b", MIGRATION_QUEUED, 1);
    c.vms.remove("web-1");
    assertEquals(List.of(new Abort("m-1", "the VM web-1 no longer exists")), plan(c));
  }

  @Test
  void aQueuedMigrationToAHostNowInMaintenanceIsAborted() {
    Cluster c = twoHosts().migration("m-1", "web-1", "host-b", MIGRATION_QUEUED, 1)
        .host("host-b", 16 * GIB, h -> h.setState(HostState.HOST_ENTERING_MAINTENANCE));
    assertEquals(List.of(new Abort("m-1", "host-b is in maintenance")), plan(c));
  }

  @Test
  void aVmWhoseMigrationEndedIsFreedForTheNext() {
    Cluster c = twoHosts().vm("web-2", "host-a", GIB).vm("web-3", "host-a", GIB)
        .migration("m-1", "web-1", "host-b", MIGRATION_ABORTED, 1)
        .migration("m-2", "web-2", "host-b", MIGRATION_COMPLETED, 2, m -> m.setCommitOpId("op-2"))
        .migration("m-3", "web-3", "host-b", MIGRATION_RUNNING, 3);
    c.vms.put("web-4", c.vms.get("web-1").toBuilder().setSpec(spec("web-4", GIB)).setCurrentMigration("m-gone").build());
    List<Action> actions = plan(c);
    assertEquals(Set.of(new ClearVmMigration("web-1", "m-1"), new ClearVmMigration("web-2", "m-2"),
        new ClearVmMigration("web-4", "m-gone")), Set.copyOf(actions));
    assertEquals(3, actions.size());
  }

  @Test
  void marksHostsUpAndDownFromTheLiveNodes() {
    Cluster c = new Cluster().host("host-a", GIB).host("host-new", GIB).host("host-back", GIB)
        .host("host-gone", GIB).downHost("host-old");
    c.inventory.remove("host-new");
    c.inventory.put("host-back", HostInventory.newBuilder().setHostId("host-back").setUp(false).build());
    c.live.remove("host-gone");
    assertEquals(Set.of(new MarkHost("host-new", true), new MarkHost("host-back", true),
        new MarkHost("host-gone", false)), Set.copyOf(plan(c)));
    assertEquals(3, plan(c).size());
  }

  @Test
  void aQuietClusterNeedsNothing() {
    assertEquals(List.of(), plan(twoHosts()));
  }

  // --- Seeded random rounds -----------------------------------------------------------------------

  private static final long SEED = Long.getLong("ferry.planner.seed", 0xf3227L);
  private static final int SIM_SEEDS = 300;
  private static final int SIM_ROUNDS = 40;

  /**
   * Random clusters (host count, memory, limits) go through rounds of random requests (accepted
   * only if refuseMigration accepts them), cancels, host failures and returns, commits and aborts,
   * applying each plan's actions as the coordinator would. After every plan: running plus admitted
   * migrations stay within every limit; each migration gets at most one action, legal for its
   * state; a queued migration left waiting is waiting for a full limit; and, since no VM is created
   * in between, no accepted migration is ever aborted for lack of memory.
   */
  @Test
  void randomRoundsNeverExceedALimit() {
    int admittedTotal = 0;
    int abortedTotal = 0;
    int heldBackTotal = 0;
    for (int i = 0; i < SIM_SEEDS; i++) {
      Sim sim = new Sim(SEED + i);
      try {
        for (int round = 0; round < SIM_ROUNDS; round++) {
          sim.round(round);
        }
      } catch (AssertionError | RuntimeException e) {
        throw new AssertionError("planner seed " + sim.seed + " (replay: -Dferry.planner.seed=" + sim.seed + "), "
            + sim.limits + ": " + e.getMessage(), e);
      }
      admittedTotal += sim.admitted;
      abortedTotal += sim.aborted;
      heldBackTotal += sim.heldBack;
    }
    System.out.printf("planner simulation (seed %d): %d clusters x %d rounds, %d admitted, %d aborted,"
        + " %d held back by a full limit%n", SEED, SIM_SEEDS, SIM_ROUNDS, admittedTotal, abortedTotal, heldBackTotal);
    assertTrue(admittedTotal > SIM_SEEDS * 4, "the simulation should admit plenty: " + admittedTotal);
    assertTrue(heldBackTotal > SIM_SEEDS, "the limits should often hold migrations back: " + heldBackTotal);
    assertTrue(abortedTotal > 0, "the simulation should abort some: " + abortedTotal);
  }

  private static final class Sim {
    final long seed;
    final Random random;
    final Limits limits;
    final Cluster c = new Cluster();
    final List<String> hosts = new ArrayList<>();
    final Map<String, HostRecord> downHosts = new HashMap<>();
    int nextId;
    int admitted;
    int aborted;
    int heldBack;

    Sim(long seed) {
      this.seed = seed;
      this.random = new Random(seed);
      this.limits = new Limits(1 + random.nextInt(3), 1 + random.nextInt(3), 1 + random.nextInt(8));
      int hostCount = 2 + random.nextInt(7);
      for (int h = 0; h < hostCount; h++) {
        String id = "host-" + h;
        hosts.add(id);
        c.host(id, (8 + random.nextInt(57)) * GIB);
        for (int v = random.nextInt(5); v > 0; v--) {
          c.vm("vm-" + h + "-" + v, id, (1 + random.nextInt(8)) * GIB);
        }
      }
    }

    void round(int round) {
      events(round);
      ClusterView view = c.view();
      List<Action> actions = Planner.plan(view, limits);
      check(view, actions, round);
      apply(actions);
    }

    /** What happens between two rounds: requests, cancels, outcomes, hosts leaving and returning. */
    private void events(int round) {
      for (int k = c.vms.isEmpty() ? 0 : random.nextInt(4); k > 0; k--) {
        List<String> names = new ArrayList<>(c.vms.keySet());
        String vm = names.get(random.nextInt(names.size()));
        String target = hosts.get(random.nextInt(hosts.size()));
        if (Planner.refuseMigration(c.view(), vm, target).isEmpty()) {
          c.migration("m-" + nextId++, vm, target, MIGRATION_QUEUED, round * 10L + random.nextInt(10));
        }
      }
      for (MigrationRecord m : List.copyOf(c.migrations.values())) {
        int dice = random.nextInt(20);
        if (m.getState() == MIGRATION_QUEUED && dice == 0) {
          c.migrations.put(m.getId(), m.toBuilder().setCancelRequested(true).build());
        } else if (m.getState() == MIGRATION_RUNNING && m.getCommitOpId().isEmpty() && dice < 3) {
          commit(m);
        } else if (m.getState() == MIGRATION_RUNNING && !m.hasReport() && dice < 5) {
          // The source writes its report (only that); the planner settles the state from it.
          boolean committed = !m.getCommitOpId().isEmpty();
          report(m, committed ? MigrationPhase.PHASE_COMPLETED : MigrationPhase.PHASE_ABORTED);
        } else if (m.getState() == MIGRATION_RUNNING && !m.hasReport() && dice == 5) {
          report(m, MigrationPhase.PHASE_UNKNOWN);
        }
      }
      if (random.nextInt(6) == 0) {
        String id = hosts.get(random.nextInt(hosts.size()));
        if (c.live.containsKey(id)) {
          downHosts.put(id, c.live.remove(id));
        } else {
          c.live.put(id, downHosts.remove(id));
        }
      }
    }

    private void report(MigrationRecord m, MigrationPhase outcome) {
      c.migrations.put(m.getId(), m.toBuilder().setPhase(outcome).setReport(MigrationReport.newBuilder()
          .setMigrationId(m.getId()).setPhase(outcome).setReason("reported " + outcome)).build());
    }

    /** The cutover multi-op: the VM moves to the target with its epoch + 1, the migration records the op. */
    private void commit(MigrationRecord m) {
      VmRecord vm = c.vms.get(m.getVm());
      c.vms.put(m.getVm(), vm.toBuilder().setOwnerHost(m.getTargetHost()).setEpoch(vm.getEpoch() + 1).build());
      c.migrations.put(m.getId(), m.toBuilder().setCommitOpId("op-" + m.getId()).build());
    }

    private void check(ClusterView view, List<Action> actions, int round) {
      String where = "round " + round + ", actions " + actions;
      Map<String, Integer> out = new HashMap<>();
      Map<String, Integer> in = new HashMap<>();
      int total = 0;
      Set<String> admittedIds = new HashSet<>(admitted(actions));
      for (MigrationRecord m : view.migrations().values()) {
        boolean counts = admittedIds.contains(m.getId())
            || m.getState() == MIGRATION_RUNNING && (view.isUp(m.getSourceHost()) || m.hasReport());
        if (counts) {
          out.merge(m.getSourceHost(), 1, Integer::sum);
          in.merge(m.getTargetHost(), 1, Integer::sum);
          total++;
        }
      }
      for (Map.Entry<String, Integer> e : out.entrySet()) {
        assertTrue(e.getValue() <= limits.outPerHost(), where + ": " + e.getValue() + " out of " + e.getKey());
      }
      for (Map.Entry<String, Integer> e : in.entrySet()) {
        assertTrue(e.getValue() <= limits.inPerHost(), where + ": " + e.getValue() + " into " + e.getKey());
      }
      assertTrue(total <= limits.cluster(), where + ": " + total + " in the cluster");
      Set<String> seen = new HashSet<>();
      for (Action a : actions) {
        Optional<String> id = migrationId(a);
        if (id.isEmpty()) {
          continue;
        }
        assertTrue(seen.add(id.get()), where + ": two actions for " + id.get());
        MigrationRecord m = view.migrations().get(id.get());
        boolean legal;
        if (a instanceof Admit) {
          legal = m.getState() == MIGRATION_QUEUED && !m.getCancelRequested();
        } else if (a instanceof Cancel) {
          legal = m.getState() == MIGRATION_QUEUED && m.getCancelRequested();
        } else if (a instanceof Complete) {
          legal = !m.getCommitOpId().isEmpty() && ClusterView.isActive(m);
        } else if (a instanceof Settle x) {
          legal = m.hasReport() && MigrationStates.canMove(m.getState(), x.to(), !m.getCommitOpId().isEmpty());
        } else {
          legal = m.getCommitOpId().isEmpty() && ClusterView.isActive(m) && !((Abort) a).reason().contains(" free, ");
        }
        assertTrue(legal, where + ": " + a + " for " + m);
      }
      for (MigrationRecord m : view.migrations().values()) {
        if (m.getState() == MIGRATION_QUEUED && !seen.contains(m.getId())) {
          boolean full = out.getOrDefault(m.getSourceHost(), 0) >= limits.outPerHost()
              || in.getOrDefault(m.getTargetHost(), 0) >= limits.inPerHost() || total >= limits.cluster();
          assertTrue(full, where + ": " + m.getId() + " was left queued with free slots");
          heldBack++;
        }
      }
    }

    /** As the coordinator applies them. */
    private void apply(List<Action> actions) {
      for (Action a : actions) {
        if (a instanceof Admit x) {
          setState(x.migrationId(), MIGRATION_RUNNING);
          admitted++;
        } else if (a instanceof Abort x) {
          setState(x.migrationId(), MIGRATION_ABORTED);
          aborted++;
        } else if (a instanceof Cancel x) {
          setState(x.migrationId(), MIGRATION_CANCELLED);
        } else if (a instanceof Complete x) {
          setState(x.migrationId(), MIGRATION_COMPLETED);
        } else if (a instanceof Settle x) {
          setState(x.migrationId(), x.to());
        } else if (a instanceof ClearVmMigration x) {
          c.vms.computeIfPresent(x.vm(), (k, v) -> v.getCurrentMigration().equals(x.migrationId())
              ? v.toBuilder().setCurrentMigration("").build() : v);
        } else if (a instanceof MarkHost x) {
          c.inventory.put(x.hostId(), HostInventory.newBuilder().setHostId(x.hostId()).setUp(x.up()).build());
        }
      }
    }

    private void setState(String id, MigrationState state) {
      c.migrations.computeIfPresent(id, (k, m) -> m.toBuilder().setState(state).build());
    }
  }

  @Test
  void finishedMigrationsAreForgottenAfterTheRetentionOnly() {
    long now = 1_700_000_000_000L;
    Cluster c = twoHosts().vm("web-2", "host-a", GIB)
        .migration("m-old", "web-1", "host-b", MIGRATION_COMPLETED, 1,
            m -> m.setEndedMs(now - Planner.FINISHED_RETENTION_MILLIS - 1))
        .migration("m-new", "web-2", "host-b", MIGRATION_COMPLETED, 2, m -> m.setEndedMs(now - 1000));
    assertEquals(List.of(new Planner.Forget("m-old")),
        plan(c).stream().filter(a -> a instanceof Planner.Forget).toList());
  }
}
