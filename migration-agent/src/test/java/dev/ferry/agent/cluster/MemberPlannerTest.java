package dev.ferry.agent.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.agent.cluster.MemberPlanner.Action;
import dev.ferry.agent.cluster.MemberPlanner.BootGuest;
import dev.ferry.agent.cluster.MemberPlanner.CancelOutgoing;
import dev.ferry.agent.cluster.MemberPlanner.ClearBootError;
import dev.ferry.agent.cluster.MemberPlanner.ClearCheckpoint;
import dev.ferry.agent.cluster.MemberPlanner.DiscardUndecided;
import dev.ferry.agent.cluster.MemberPlanner.EnsureOwned;
import dev.ferry.agent.cluster.MemberPlanner.IgnoreStaleVm;
import dev.ferry.agent.cluster.MemberPlanner.Input;
import dev.ferry.agent.cluster.MemberPlanner.Plan;
import dev.ferry.agent.cluster.MemberPlanner.RecordPower;
import dev.ferry.agent.cluster.MemberPlanner.RecordResumed;
import dev.ferry.agent.cluster.MemberPlanner.RecordSuspended;
import dev.ferry.agent.cluster.MemberPlanner.RefuseMigration;
import dev.ferry.agent.cluster.MemberPlanner.ResolveUndecided;
import dev.ferry.agent.cluster.MemberPlanner.ResumeCommitted;
import dev.ferry.agent.cluster.MemberPlanner.RetryOutcome;
import dev.ferry.agent.cluster.MemberPlanner.StartOutgoing;
import dev.ferry.agent.cluster.MemberPlanner.StepAside;
import dev.ferry.agent.cluster.MemberPlanner.StopGuest;
import dev.ferry.agent.cluster.MemberPlanner.SuspendGuest;
import dev.ferry.cluster.model.MigrationStates;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationReport;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmRecord;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * The member's decisions over hand-built records and local states, compared as whole action
 * lists; then seeded random rounds whose plans must keep the safety invariants. A failing seed is
 * printed; {@code -Dferry.member.seed=S} replays the run.
 */
class MemberPlannerTest {
  private static final String HERE = "h1";
  private static final String OTHER = "h2";

  private static GuestSpec spec(String name) {
    return GuestSpec.newBuilder().setName(name).setMemoryBytes(64L << 20).setVcpus(1).build();
  }

  private static VmRecord.Builder vm(String name, String owner, long epoch) {
    return VmRecord.newBuilder().setFormatVersion(1).setSpec(spec(name)).setOwnerHost(owner).setEpoch(epoch)
        .setDesiredPower(PowerState.POWER_RUNNING).setPower(PowerState.POWER_RUNNING);
  }

  private static MigrationRecord.Builder migration(String id, String vm, long vmEpoch) {
    return MigrationRecord.newBuilder().setFormatVersion(1).setId(id).setVm(vm).setSourceHost(HERE)
        .setTargetHost(OTHER).setState(MigrationState.MIGRATION_RUNNING).setVmEpoch(vmEpoch);
  }

  /** Local state and records of one round, built up by a test. */
  private static final class Round {
    final List<VmRecord> vms = new ArrayList<>();
    final List<MigrationRecord> migrations = new ArrayList<>();
    final Map<String, String> guests = new HashMap<>();
    final Set<String> outgoing = new HashSet<>();
    final Map<String, String> undecidedGuests = new HashMap<>();
    final Set<String> waitingIncoming = new HashSet<>();
    final Map<String, Long> epochsSeen = new HashMap<>();
    final Set<String> bootFailed = new HashSet<>();
    final Map<String, Long> suspendedHere = new HashMap<>();
    final Set<String> finished = new HashSet<>();
    final Set<String> pendingOutcomes = new HashSet<>();

    Round vm(VmRecord.Builder v) {
      vms.add(v.build());
      return this;
    }

    Round migration(MigrationRecord.Builder m) {
      migrations.add(m.build());
      return this;
    }

    Round guest(String name, String state) {
      guests.put(name, state);
      return this;
    }

    Input input() {
      Set<String> nodes = new HashSet<>();
      vms.forEach(v -> nodes.add(v.getSpec().getName()));
      return new Input(HERE, vms, nodes, true, migrations, guests, outgoing, undecidedGuests, waitingIncoming,
          epochsSeen, bootFailed, suspendedHere, finished, pendingOutcomes);
    }

    List<Action> plan() {
      return MemberPlanner.plan(input()).actions();
    }
  }

  @Test
  void theOwnerBootsItsVmAndRecordsItRunning() {
    Round r = new Round().vm(vm("a", HERE, 2).setPower(PowerState.POWER_STOPPED).setLastBootError("disk gone"));
    assertEquals(List.of(new BootGuest("a", spec("a"), 2, "", "a@2@@0"), new ClearBootError("a", 2),
        new RecordPower("a", 2, PowerState.POWER_RUNNING, false)), r.plan());
  }

  @Test
  void aVmResumedFromItsCheckpointForgetsIt() {
    Round r = new Round().vm(vm("a", HERE, 2).setPower(PowerState.POWER_SUSPENDED).setCheckpoint("cp"));
    assertEquals(List.of(new BootGuest("a", spec("a"), 2, "cp", "a@2@cp@0"), new RecordResumed("a", 2),
        new ClearCheckpoint("a", 2), new RecordPower("a", 2, PowerState.POWER_RUNNING, false)), r.plan());
  }

  @Test
  void aFailedBootIsNotRetriedAndItsNoteKept() {
    Round r = new Round().vm(vm("a", HERE, 2).setStartRequests(1));
    r.bootFailed.add("a@2@@1");
    assertEquals(List.of(new RecordPower("a", 2, PowerState.POWER_STOPPED, true)), r.plan());
    r.bootFailed.clear();
    r.bootFailed.add("a@2@@0"); // the operator asked again since: a new start request
    assertEquals(new BootGuest("a", spec("a"), 2, "", "a@2@@1"), r.plan().get(0));
  }

  @Test
  void aRunningOwnedGuestKeepsItsLease() {
    Round r = new Round().vm(vm("a", HERE, 2)).guest("a", "running");
    assertEquals(List.of(new EnsureOwned("a", spec("a"), 2)), r.plan());
  }

  @Test
  void aMigratingVmIsNotBootedHere() {
    Round r = new Round().vm(vm("a", HERE, 2).setCurrentMigration("m-1"));
    assertEquals(List.of(new RecordPower("a", 2, PowerState.POWER_STOPPED, false)), r.plan());
  }

  @Test
  void aNonOwnerStepsAsideUnlessMigrating() {
    Round r = new Round().vm(vm("a", OTHER, 3)).guest("a", "running");
    assertEquals(List.of(new StepAside("a", OTHER, 3)), r.plan());
    Round migrating = new Round().vm(vm("a", OTHER, 3).setCurrentMigration("m-1")).guest("a", "running");
    assertEquals(List.of(), migrating.plan());
    Round incoming = new Round().vm(vm("a", OTHER, 3)).guest("a", "incoming");
    assertEquals(List.of(), incoming.plan());
  }

  @Test
  void aGuestWithoutAVmRecordIsStoppedOnceTheRecordsAreLoaded() {
    Round r = new Round().guest("gone", "running").guest("arriving", "incoming");
    assertEquals(List.of(new StopGuest("gone", "the cluster has no VM named gone any more")), r.plan());
    Input notLoaded = r.input();
    notLoaded = new Input(HERE, notLoaded.vms(), notLoaded.vmNodes(), false, notLoaded.migrations(), notLoaded.guests(),
        notLoaded.outgoing(), notLoaded.undecidedGuests(), notLoaded.waitingIncoming(), notLoaded.epochsSeen(),
        notLoaded.bootFailed(), notLoaded.suspendedHere(), notLoaded.finished(), notLoaded.pendingOutcomes());
    assertEquals(List.of(), MemberPlanner.plan(notLoaded).actions());
  }

  @Test
  void theOperatorStopsAndSuspends() {
    Round stop = new Round().vm(vm("a", HERE, 2).setDesiredPower(PowerState.POWER_STOPPED)).guest("a", "running");
    assertEquals(List.of(new StopGuest("a", "stopped by the operator"),
        new RecordPower("a", 2, PowerState.POWER_STOPPED, false)), stop.plan());
    Round suspend = new Round().vm(vm("a", HERE, 2).setDesiredPower(PowerState.POWER_SUSPENDED)).guest("a", "running");
    assertEquals(List.of(new SuspendGuest("a", 2)), suspend.plan());
    Round suspendMigrating = new Round().vm(vm("a", HERE, 2).setDesiredPower(PowerState.POWER_SUSPENDED)
        .setCurrentMigration("m-1")).guest("a", "running");
    assertEquals(List.of(), suspendMigrating.plan());
  }

  @Test
  void aSuspendTheRecordMissedIsWrittenAgain() {
    Round r = new Round().vm(vm("a", HERE, 2).setDesiredPower(PowerState.POWER_SUSPENDED));
    r.suspendedHere.put("a", 2L);
    assertEquals(List.of(new RecordSuspended("a", 2, "suspend")), r.plan());
  }

  @Test
  void aStaleEpochIsRefused() {
    Round r = new Round().vm(vm("a", HERE, 4)).guest("a", "running")
        .migration(migration("m-1", "a", 3));
    r.epochsSeen.put("a", 5L);
    Plan plan = MemberPlanner.plan(r.input());
    assertEquals(List.of(new IgnoreStaleVm("a", 4, 5), new RefuseMigration("m-1", 3, 5)), plan.actions());
    assertEquals(Map.of("a", 5L), plan.epochsSeen());
  }

  @Test
  void theNewestEpochIsRemembered() {
    Round r = new Round().vm(vm("a", HERE, 7)).guest("a", "running");
    r.epochsSeen.put("a", 5L);
    assertEquals(Map.of("a", 7L), MemberPlanner.plan(r.input()).epochsSeen());
  }

  @Test
  void anUndecidedGuestResumesWhenTheMigrationEndedWithoutCommit() {
    Round r = new Round().vm(vm("a", HERE, 2)).guest("a", "paused")
        .migration(migration("m-1", "a", 2).setState(MigrationState.MIGRATION_ABORTED));
    r.undecidedGuests.put("a", "m-1");
    assertEquals(List.of(new ResolveUndecided("a", true, "it ended MIGRATION_ABORTED without a commit")), r.plan());
    Round gone = new Round().vm(vm("a", HERE, 2)).guest("a", "paused");
    gone.undecidedGuests.put("a", "m-1");
    assertEquals(List.of(new ResolveUndecided("a", true, "it ended (record gone) without a commit")), gone.plan());
    Round unknown = new Round().vm(vm("a", HERE, 2)).guest("a", "paused")
        .migration(migration("m-1", "a", 2).setState(MigrationState.MIGRATION_UNKNOWN));
    unknown.undecidedGuests.put("a", "m-1");
    assertEquals(List.of(), unknown.plan(), "still undecided: the guest stays paused");
  }

  @Test
  void anUndecidedGuestIsFreedWhenTheCommitIsRecorded() {
    Round r = new Round().vm(vm("a", HERE, 2)).guest("a", "paused")
        .migration(migration("m-1", "a", 2).setState(MigrationState.MIGRATION_UNKNOWN).setCommitOpId("op"));
    r.undecidedGuests.put("a", "m-1");
    assertEquals(List.of(new ResolveUndecided("a", false, "the commit is recorded; a runs on h1")), r.plan());
    Round moved = new Round().vm(vm("a", OTHER, 3)).guest("a", "paused");
    moved.undecidedGuests.put("a", "m-1");
    assertEquals(List.of(new ResolveUndecided("a", false, "the commit is recorded; a runs on h2")), moved.plan());
  }

  @Test
  void anOutgoingMigrationStartsOnlyWhenTheSourceMayProceed() {
    MigrationRecord.Builder open = migration("m-1", "a", 2);
    assertEquals(List.of(new StartOutgoing(open.build())), new Round().migration(open).plan());
    List<MigrationRecord.Builder> closed = List.of(migration("m-1", "a", 2).setState(MigrationState.MIGRATION_QUEUED),
        migration("m-1", "a", 2).setPhase(MigrationPhase.PHASE_ABORTED),
        migration("m-1", "a", 2).setCommitOpId("op"),
        migration("m-1", "a", 2).setReport(MigrationReport.newBuilder().setMigrationId("m-1")),
        migration("m-1", "a", 2).setState(MigrationState.MIGRATION_CANCELLED),
        migration("m-1", "a", 2).setSourceHost(OTHER).setTargetHost(HERE));
    for (MigrationRecord.Builder m : closed) {
      assertEquals(List.of(), new Round().migration(m).plan(), m.toString());
    }
    Round finished = new Round().migration(open);
    finished.finished.add("m-1");
    assertEquals(List.of(), finished.plan(), "ran to an end here: a lagging cache does not start it again");
  }

  @Test
  void aCancelRequestCancelsTheRunningMigration() {
    Round r = new Round().migration(migration("m-1", "a", 2).setCancelRequested(true));
    r.outgoing.add("m-1");
    assertEquals(List.of(new CancelOutgoing("m-1", "cancelled by the operator")), r.plan());
    r.outgoing.clear();
    r.outgoing.add("m-2");
    assertEquals(List.of(new StartOutgoing(r.migrations.get(0))), r.plan(), "not started yet: the record decides");
  }

  @Test
  void pendingOutcomesAreWrittenFirst() {
    Round r = new Round().vm(vm("a", HERE, 2)).guest("a", "running");
    r.pendingOutcomes.add("m-9");
    assertEquals(List.of(new RetryOutcome("m-9"), new EnsureOwned("a", spec("a"), 2)), r.plan());
  }

  @Test
  void aWaitingTargetGuestFollowsTheRecord() {
    Round committed = new Round().migration(migration("m-1", "a", 2).setSourceHost(OTHER).setTargetHost(HERE)
        .setCommitOpId("op"));
    committed.waitingIncoming.add("m-1");
    Plan plan = MemberPlanner.plan(committed.input());
    assertEquals(List.of(new ResumeCommitted("m-1", "a", 3)), plan.actions());
    assertEquals(Map.of("a", 3L), plan.epochsSeen());
    Round aborted = new Round().migration(migration("m-1", "a", 2).setSourceHost(OTHER).setTargetHost(HERE)
        .setState(MigrationState.MIGRATION_ABORTED));
    aborted.waitingIncoming.add("m-1");
    assertEquals(List.of(new DiscardUndecided("m-1", "the migration ended MIGRATION_ABORTED without a commit")),
        aborted.plan());
    Round running = new Round().migration(migration("m-1", "a", 2).setSourceHost(OTHER).setTargetHost(HERE));
    running.waitingIncoming.add("m-1");
    assertEquals(List.of(), running.plan(), "a commit may still land: the guest waits");
  }

  // --- Simulation ------------------------------------------------------------------------------

  private static final long SEED = Long.getLong("ferry.member.seed", 0x13e3L);
  private static final int RUNS = Integer.getInteger("ferry.member.runs", 200);
  private static final int ROUNDS = 50;

  @Test
  void seededRoundsKeepTheInvariants() {
    int actions = 0;
    for (int i = 0; i < RUNS; i++) {
      Sim sim = new Sim(SEED + i);
      try {
        actions += sim.run();
      } catch (AssertionError e) {
        throw new AssertionError("member seed " + sim.seed + " (replay: -Dferry.member.seed=" + sim.seed
            + " -Dferry.member.runs=1), round " + sim.round + ": " + e.getMessage(), e);
      }
    }
    System.out.printf("member simulation (seed %d): %d runs x %d rounds, %d actions%n", SEED, RUNS, ROUNDS, actions);
    assertTrue(actions > RUNS, "the simulation exercised the planner");
  }

  /** Random records and local states; the epochs seen carry over from round to round, as in the member. */
  private static final class Sim {
    private static final String[] HOSTS = {HERE, OTHER, "h3"};
    private static final String[] GUEST_STATES = {null, "running", "running", "incoming", "migrating-out", "paused"};
    final long seed;
    final Random random;
    int round;
    Map<String, Long> epochsSeen = new HashMap<>();

    Sim(long seed) {
      this.seed = seed;
      this.random = new Random(seed);
    }

    int run() {
      int actions = 0;
      for (round = 0; round < ROUNDS; round++) {
        Round r = randomRound();
        Input in = r.input();
        Plan plan = MemberPlanner.plan(in);
        check(in, plan);
        epochsSeen = new HashMap<>(plan.epochsSeen());
        actions += plan.actions().size();
      }
      return actions;
    }

    private <T> T pick(T[] values) {
      return values[random.nextInt(values.length)];
    }

    private Round randomRound() {
      Round r = new Round();
      r.epochsSeen.putAll(epochsSeen);
      for (int v = 0; v < 4; v++) {
        String name = "v" + v;
        long epoch = 1 + random.nextInt(5);
        if (random.nextInt(6) > 0) {
          VmRecord.Builder b = vm(name, pick(HOSTS), epoch)
              .setDesiredPower(pick(new PowerState[] {PowerState.POWER_RUNNING, PowerState.POWER_STOPPED,
                  PowerState.POWER_SUSPENDED}))
              .setPower(pick(new PowerState[] {PowerState.POWER_RUNNING, PowerState.POWER_STOPPED,
                  PowerState.POWER_SUSPENDED}))
              .setCheckpoint(random.nextBoolean() ? "" : "cp").setStartRequests(random.nextInt(2))
              .setCurrentMigration(random.nextInt(3) == 0 ? "m" + random.nextInt(4) : "");
          r.vm(b);
          if (random.nextInt(4) == 0) {
            r.bootFailed.add(name + "@" + epoch + "@" + b.getCheckpoint() + "@" + b.getStartRequests());
          }
          if (random.nextInt(4) == 0) {
            r.suspendedHere.put(name, epoch);
          }
        }
        String state = pick(GUEST_STATES);
        if (state != null) {
          r.guest(name, state);
          if ("paused".equals(state) && random.nextBoolean()) {
            r.undecidedGuests.put(name, "m" + random.nextInt(4));
          }
        }
      }
      for (int m = 0; m < 4; m++) {
        if (random.nextInt(4) == 0) {
          continue;
        }
        String id = "m" + m;
        MigrationRecord.Builder b = migration(id, "v" + random.nextInt(4), 1 + random.nextInt(5))
            .setSourceHost(pick(HOSTS)).setTargetHost(pick(HOSTS))
            .setState(pick(new MigrationState[] {MigrationState.MIGRATION_QUEUED, MigrationState.MIGRATION_RUNNING,
                MigrationState.MIGRATION_RUNNING, MigrationState.MIGRATION_UNKNOWN, MigrationState.MIGRATION_COMPLETED,
                MigrationState.MIGRATION_ABORTED, MigrationState.MIGRATION_CANCELLED}))
            .setPhase(random.nextInt(5) == 0 ? MigrationPhase.PHASE_ABORTED : MigrationPhase.PHASE_PRECOPY)
            .setCommitOpId(random.nextInt(3) == 0 ? "op" : "").setCancelRequested(random.nextInt(4) == 0);
        if (random.nextInt(5) == 0) {
          b.setReport(MigrationReport.newBuilder().setMigrationId(id));
        }
        r.migration(b);
        if (random.nextInt(3) == 0) {
          r.outgoing.add(id);
        }
        if (random.nextInt(4) == 0) {
          r.waitingIncoming.add(id);
        }
        if (random.nextInt(5) == 0) {
          r.finished.add(id);
        }
        if (random.nextInt(6) == 0) {
          r.pendingOutcomes.add(id);
        }
      }
      return r;
    }

    private static void check(Input in, Plan plan) {
      Map<String, VmRecord> vms = new TreeMap<>();
      in.vms().forEach(v -> vms.put(v.getSpec().getName(), v));
      Map<String, MigrationRecord> migrations = new TreeMap<>();
      in.migrations().forEach(m -> migrations.put(m.getId(), m));
      Set<String> touched = new HashSet<>();
      for (Action a : plan.actions()) {
        String guest = guestOf(a);
        if (guest != null) {
          assertTrue(touched.add(guest), "two actions on guest " + guest + " in one round: " + plan.actions());
        }
        if (a instanceof BootGuest boot) {
          VmRecord v = vms.get(boot.name());
          assertEquals(HERE, v.getOwnerHost(), "booted " + boot.name() + " owned by " + v.getOwnerHost());
          assertTrue(v.getEpoch() >= in.epochsSeen().getOrDefault(boot.name(), 0L), "booted a stale record");
          assertTrue(v.getCurrentMigration().isEmpty(), "booted a migrating VM");
        }
        if (a instanceof StepAside aside) {
          VmRecord v = vms.get(aside.name());
          assertTrue(!v.getOwnerHost().equals(HERE) && v.getCurrentMigration().isEmpty(),
              "stepped aside from " + aside.name() + " owned by " + v.getOwnerHost() + ", migrating '"
                  + v.getCurrentMigration() + "'");
        }
        if (a instanceof StartOutgoing start) {
          MigrationRecord m = start.migration();
          assertTrue(MigrationStates.sourceMayProceed(m), "started a migration that is not open: " + m);
          assertEquals(HERE, m.getSourceHost());
          assertTrue(!in.outgoing().contains(m.getId()) && !in.finished().contains(m.getId()), "started twice");
          assertTrue(m.getVmEpoch() >= in.epochsSeen().getOrDefault(m.getVm(), 0L), "started a stale migration");
        }
        if (a instanceof CancelOutgoing cancel) {
          assertTrue(migrations.get(cancel.migrationId()).getCancelRequested(), "cancelled without a request");
        }
        if (a instanceof ResolveUndecided resolve && resolve.resume()) {
          MigrationRecord m = migrations.get(in.undecidedGuests().get(resolve.name()));
          assertTrue(m == null || m.getCommitOpId().isEmpty(), "resumed " + resolve.name() + " though committed");
          assertEquals(HERE, vms.get(resolve.name()).getOwnerHost(), "resumed a guest owned elsewhere");
        }
        if (a instanceof DiscardUndecided discard) {
          assertTrue(migrations.get(discard.migrationId()).getCommitOpId().isEmpty(), "discarded a committed guest");
        }
      }
      for (VmRecord v : vms.values()) {
        String name = v.getSpec().getName();
        boolean stale = v.getEpoch() < in.epochsSeen().getOrDefault(name, 0L);
        if (!stale && !v.getOwnerHost().equals(HERE) && v.getCurrentMigration().isEmpty()
            && "running".equals(in.guests().get(name))) {
          Action expected = in.undecidedGuests().containsKey(name)
              ? new ResolveUndecided(name, false, "the commit is recorded; " + name + " runs on " + v.getOwnerHost())
              : new StepAside(name, v.getOwnerHost(), v.getEpoch());
          assertTrue(plan.actions().contains(expected), name + " owned by " + v.getOwnerHost() + " kept running here");
        }
      }
      in.epochsSeen().forEach((vm, epoch) -> assertTrue(plan.epochsSeen().get(vm) >= epoch, "epoch of " + vm + " fell"));
    }

    /** The guest an action boots, stops, suspends or resolves; null for record writes and migrations. */
    private static String guestOf(Action a) {
      if (a instanceof BootGuest x) {
        return x.name();
      } else if (a instanceof StopGuest x) {
        return x.name();
      } else if (a instanceof StepAside x) {
        return x.name();
      } else if (a instanceof SuspendGuest x) {
        return x.name();
      } else if (a instanceof ResolveUndecided x) {
        return x.name();
      }
      return null;
    }
  }
}
