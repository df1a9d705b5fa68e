package dev.ferry.it.cluster;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.proto.GuestStatus;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import java.io.IOException;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded fault injection over a whole cluster of real processes: rounds of migrations between
 * three agents while kill -9 and SIGSTOP/SIGCONT hit the source, the target or the leading
 * coordinator at random moments, and fail points halt the source at a chosen step inside the
 * pause. Throughout, an observer asks every agent what it runs and a client writes to a key-value
 * VM without pause, counting only acknowledged writes. At the end: no VM ever ran on two hosts
 * (the agents' run logs, see {@link RunIntervals}, and the observer), every acknowledged write
 * reads back, every migration ended completed, aborted or cancelled (the last two with a reason),
 * and each VM runs on exactly the host its record names.
 *
 * <p>{@code -Dferry.sim.seed=N} replays a run (the same faults in the same order; the moments are
 * the same delays, though processes never schedule exactly alike); {@code -Dferry.sim.rounds=N}
 * sets the number of rounds. The seed is printed at the start and in every failure.
 */
@Timeout(value = 6, unit = TimeUnit.MINUTES)
class FaultInjectionTest {
  private static final List<String> HOSTS = List.of("host-1", "host-2", "host-3");
  private static final List<String> VMS = List.of("kv-1", "vm-2");
  /** Source steps where a fail point halts the agent: the last round, and inside the pause. */
  private static final List<String> SOURCE_POINTS = List.of("after-round", "after-pause", "after-final-state");
  /** Target steps inside the pause where a fail point halts the agent: just before and just after its commit. */
  private static final List<String> TARGET_POINTS = List.of("before-commit", "after-commit");
  /** Short enough that a frozen or killed agent is noticed within the round. */
  private static final String SESSION_TIMEOUT_MS = "4000";
  /** No round starts after this much of the run: bounds the test on a loaded machine. */
  private static final Duration ROUNDS_BUDGET = Duration.ofSeconds(170);
  private static final Duration MIGRATION_END_TIMEOUT = Duration.ofSeconds(120);

  /** What a round does to the cluster while its migration runs. */
  enum Fault {
    NONE, KILL_SOURCE, KILL_TARGET, FAILPOINT_SOURCE, FAILPOINT_TARGET, STOP_SOURCE, STOP_TARGET, KILL_LEADER
  }

  /** Fault kinds this run draws from (all of them: none is known to break an invariant). */
  private static final Set<Fault> ENABLED = EnumSet.allOf(Fault.class);

  @TempDir(cleanup = org.junit.jupiter.api.io.CleanupMode.ON_SUCCESS)
  Path dir;

  private TestCluster cluster;
  private long seed;
  private Random random;
  private final List<String> sequence = new ArrayList<>();
  /** Every agent process ever started, with its run log: a killed one's open runs end at its death. */
  private final Map<FerryProcess, Path> runLogs = new HashMap<>();
  private final Map<String, Integer> incarnations = new HashMap<>();
  private final List<String> migrationIds = new ArrayList<>();
  /** Hosts frozen right now: the observer leaves them alone rather than wait on them. */
  private final Set<String> frozen = ConcurrentHashMap.newKeySet();
  private Observer observer;
  private KvWriter writer;

  @AfterEach
  void stop() throws InterruptedException {
    if (observer != null) {
      observer.stop();
    }
    if (writer != null) {
      writer.stop();
    }
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void migrationsUnderRandomFaultsKeepEveryInvariant() throws Throwable {
    seed = Long.getLong("ferry.sim.seed", new SecureRandom().nextLong());
    random = new Random(seed);
    int rounds = Integer.getInteger("ferry.sim.rounds", 8);
    System.out.println("FaultInjectionTest: seed " + seed + ", " + rounds + " rounds (replay with -Dferry.sim.seed="
        + seed + ")");
    long started = System.nanoTime();
    try {
      startCluster();
      for (int round = 1; round <= rounds; round++) {
        if (System.nanoTime() - started > ROUNDS_BUDGET.toNanos()) {
          note("time budget spent after " + (round - 1) + " rounds");
          break;
        }
        runRound(round);
      }
      checkAtTheEnd();
      System.out.println("FaultInjectionTest: seed " + seed + " passed in "
          + TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - started) + " s:\n" + String.join("\n", sequence));
    } catch (Throwable t) {
      String logs = cluster == null ? "" : cluster.logs();
      AssertionError failure = new AssertionError("seed " + seed + " (replay with -Dferry.sim.seed=" + seed + "): "
          + t.getMessage() + "\nsequence:\n" + String.join("\n", sequence) + "\nlogs in " + dir + logs, t);
      throw failure;
    }
  }

  private void startCluster() throws Exception {
    cluster = TestCluster.start(dir, 1);
    cluster.startCoordinator("c1");
    cluster.startCoordinator("c2");
    for (String host : HOSTS) {
      startAgent(host, List.of());
    }
    awaitHostsUp();
    int kvPort = TestCluster.freePort();
    expectOk(cluster.cli("vm", "create", "kv-1", "--memory", "64MiB", "--dirty-rate", "4MiB/s",
        "--kv-port", Integer.toString(kvPort), "--host", "host-1"));
    expectOk(cluster.cli("vm", "create", "vm-2", "--memory", "64MiB", "--dirty-rate", "8MiB/s",
        "--working-set", "16MiB", "--content", "random", "--host", "host-2"));
    observer = new Observer();
    writer = new KvWriter(kvPort);
    writer.awaitMore(20, Duration.ofSeconds(60));
  }

  /** One migration under one fault, then everything restarted and back in place. */
  private void runRound(int round) throws Exception {
    String vm = VMS.get(random.nextInt(VMS.size()));
    String source = cluster.vm(vm).getOwnerHost();
    List<String> others = new ArrayList<>(HOSTS);
    others.remove(source);
    String target = others.get(random.nextInt(others.size()));
    List<Fault> faults = new ArrayList<>(ENABLED);
    Fault fault = faults.get(random.nextInt(faults.size()));
    long delayMillis = random.nextInt(2500);
    long holdMillis = 1000 + random.nextInt(5000);
    String point = fault == Fault.FAILPOINT_TARGET ? TARGET_POINTS.get(random.nextInt(TARGET_POINTS.size()))
        : SOURCE_POINTS.get(random.nextInt(SOURCE_POINTS.size()));
    String what = "round " + round + ": " + vm + " " + source + " -> " + target + ", " + describe(fault, delayMillis,
        holdMillis, point);
    note(what);

    if (fault == Fault.FAILPOINT_SOURCE || fault == Fault.FAILPOINT_TARGET) {
      restartAgent(fault == Fault.FAILPOINT_SOURCE ? source : target, List.of("-Dferry.failpoint=" + point + ":exit"));
      awaitHostsUp();
      cluster.assertRunsOnlyOn(vm, source);
    }
    String id = startMigration(vm, target);
    migrationIds.add(id);
    List<String> killedAgents = new ArrayList<>();
    String killedCoordinator = null;
    switch (fault) {
      case NONE -> { }
      case KILL_SOURCE, KILL_TARGET -> {
        String host = fault == Fault.KILL_SOURCE ? source : target;
        pause(delayMillis);
        cluster.agents.get(host).kill();
        killedAgents.add(host);
      }
      case FAILPOINT_SOURCE, FAILPOINT_TARGET -> {
        // It halts itself at the step, unless the migration ended before reaching it.
        String host = fault == Fault.FAILPOINT_SOURCE ? source : target;
        if (cluster.agents.get(host).awaitExit(Duration.ofSeconds(60))) {
          note("  " + host + " halted at " + point);
        }
        killedAgents.add(host);
      }
      case STOP_SOURCE, STOP_TARGET -> freeze(fault == Fault.STOP_SOURCE ? source : target, delayMillis, holdMillis);
      case KILL_LEADER -> {
        pause(delayMillis);
        killedCoordinator = cluster.coordinatorEpoch().getLeaderId();
        cluster.coordinators.get(killedCoordinator).kill();
        note("  killed leader " + killedCoordinator);
      }
      default -> throw new IllegalStateException(fault.toString());
    }
    MigrationRecord end = awaitEnd(id);
    assertNothingDiedByItself(killedAgents, killedCoordinator);
    note("  " + id + " " + end.getState() + (end.getReason().isEmpty() ? "" : " (" + end.getReason() + ")"));
    for (String host : killedAgents) {
      restartAgent(host, List.of());
    }
    if (killedCoordinator != null) {
      cluster.startCoordinator(killedCoordinator);
    }
    awaitHostsUp();
    for (String each : VMS) {
      cluster.assertRunsOnlyOn(each, cluster.vm(each).getOwnerHost());
    }
    assertEndedWithReason(end);
    writer.awaitMore(5, Duration.ofSeconds(60));
  }

  /** A daemon the round did not kill must still run: an agent halts itself on a blocked event loop (exit 70). */
  private void assertNothingDiedByItself(List<String> killedAgents, String killedCoordinator) {
    List<String> dead = new ArrayList<>();
    cluster.agents.forEach((host, p) -> {
      if (!killedAgents.contains(host) && !p.isAlive()) {
        dead.add(host + " (exit " + p.exitCode() + ")");
      }
    });
    cluster.coordinators.forEach((id, p) -> {
      if (!id.equals(killedCoordinator) && !p.isAlive()) {
        dead.add(id + " (exit " + p.exitCode() + ")");
      }
    });
    assertTrue(dead.isEmpty(), "died though nothing killed them: " + dead);
  }

  private static String describe(Fault fault, long delayMillis, long holdMillis, String point) {
    return switch (fault) {
      case NONE -> "no fault";
      case KILL_SOURCE, KILL_TARGET, KILL_LEADER -> fault + " after " + delayMillis + " ms";
      case FAILPOINT_SOURCE -> "source halts at " + point;
      case FAILPOINT_TARGET -> "target halts at " + point;
      case STOP_SOURCE, STOP_TARGET -> fault + " after " + delayMillis + " ms for " + holdMillis + " ms";
    };
  }

  private void freeze(String host, long delayMillis, long holdMillis) throws Exception {
    pause(delayMillis);
    frozen.add(host);
    FerryProcess p = cluster.agents.get(host);
    p.signal("STOP");
    try {
      pause(holdMillis);
    } finally {
      p.signal("CONT");
      frozen.remove(host);
    }
  }

  /** A deliberate wait: the fault's moment, drawn from the seed (not a poll for a condition). */
  private static void pause(long millis) {
    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(millis));
  }

  /** Starts a migration, retrying while the API has no leader (one was just killed). */
  private String startMigration(String vm, String target) throws Exception {
    List<TestCluster.Cli> refused = new ArrayList<>();
    String id = TestCluster.awaitValue(() -> {
      TestCluster.Cli started = cluster.cli("migrate", vm, "--to", target, "--bandwidth", "48MiB/s", "--detach");
      if (started.exitCode() == 0) {
        return started.out().trim();
      }
      refused.add(started);
      return null;
    }, Duration.ofSeconds(60));
    if (id == null) {
      fail("the migration of " + vm + " to " + target + " was never admitted: " + refused.get(refused.size() - 1));
    }
    return id;
  }

  private MigrationRecord awaitEnd(String id) throws Exception {
    MigrationRecord done = TestCluster.awaitValue(() -> {
      MigrationRecord m = cluster.migration(id);
      return ended(m) ? m : null;
    }, MIGRATION_END_TIMEOUT);
    if (done == null) {
      fail("migration " + id + " never ended: " + cluster.migration(id));
    }
    return done;
  }

  private static boolean ended(MigrationRecord m) {
    return m.getState() == MigrationState.MIGRATION_COMPLETED || m.getState() == MigrationState.MIGRATION_ABORTED
        || m.getState() == MigrationState.MIGRATION_CANCELLED;
  }

  private static void assertEndedWithReason(MigrationRecord m) {
    assertTrue(ended(m), "migration " + m.getId() + " ended completed, aborted or cancelled: " + m);
    if (m.getState() != MigrationState.MIGRATION_COMPLETED) {
      assertTrue(!m.getReason().isBlank(), "migration " + m.getId() + " ended " + m.getState() + " with a reason: " + m);
      // "internal error: <exception>" is a bug talking, not a cause (it was a double release).
      assertTrue(!m.getReason().startsWith("internal error"), "migration " + m.getId() + " names its cause: "
          + m.getReason());
    }
  }

  /** The oracles over the whole run. */
  private void checkAtTheEnd() throws Exception {
    writer.stop();
    observer.stop();
    List<String> lost = writer.lostWrites();
    note(writer.acked.size() + " writes acknowledged, " + lost.size() + " lost");
    assertTrue(lost.isEmpty(), lost.size() + " of " + writer.acked.size() + " acknowledged writes are lost: " + lost);
    assertTrue(observer.doubleRuns.isEmpty(), "the agents said two hosts ran a VM: " + observer.doubleRuns);
    List<String> all = cluster.zk().getChildren().forPath(ZkPaths.MIGRATIONS);
    assertTrue(all.containsAll(migrationIds), "every migration has its record: " + all + " vs " + migrationIds);
    for (String id : all) {
      assertEndedWithReason(cluster.migration(id));
    }
    Map<String, String> owners = new HashMap<>();
    for (String vm : VMS) {
      owners.put(vm, cluster.vm(vm).getOwnerHost());
      cluster.assertRunsOnlyOn(vm, owners.get(vm));
    }
    // SIGTERM: each agent writes the end of its guests' runs; a killed one's end at its death.
    cluster.agents.values().forEach(FerryProcess::close);
    List<RunIntervals.Interval> runs = new ArrayList<>();
    long now = System.nanoTime();
    for (Map.Entry<FerryProcess, Path> e : runLogs.entrySet()) {
      runs.addAll(RunIntervals.read(List.of(e.getValue()), e.getKey().exitNanos(now)));
    }
    for (String vm : VMS) {
      List<String> doubleRuns = RunIntervals.doubleRuns(runs, vm);
      assertTrue(doubleRuns.isEmpty(), vm + " ran on two hosts at once: " + doubleRuns);
      assertTrue(runs.stream().anyMatch(r -> r.vm().equals(vm) && r.host().equals(owners.get(vm))),
          vm + " ran on " + owners.get(vm) + " as its record says");
    }
  }

  private void startAgent(String host, List<String> jvmArgs) throws IOException {
    int n = incarnations.merge(host, 1, Integer::sum);
    Path runLog = dir.resolve(host + "-" + n + ".runlog");
    List<String> args = new ArrayList<>(jvmArgs);
    args.add(RunIntervals.jvmArg(runLog));
    cluster.startAgent(host, args, "--zk-session-timeout-ms", SESSION_TIMEOUT_MS);
    runLogs.put(cluster.agents.get(host), runLog);
  }

  /** Stops {@code host} (SIGTERM unless it is dead already) and starts it again, same id and datastore. */
  private void restartAgent(String host, List<String> jvmArgs) throws Exception {
    FerryProcess old = cluster.agents.get(host);
    if (old.isAlive()) {
      old.close();
    }
    // The old session must be gone before the new agent registers under the same host id.
    TestCluster.await(host + " is seen down", Duration.ofSeconds(60), () -> !hostUp(host));
    startAgent(host, jvmArgs);
  }

  /** The host's ephemeral node: it goes when the agent's ZooKeeper session ends. */
  private boolean hostUp(String host) {
    try {
      return cluster.zk().checkExists().forPath(ZkPaths.host(host)) != null;
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private void awaitHostsUp() throws Exception {
    TestCluster.await("3 hosts up", Duration.ofSeconds(60),
        () -> cluster.cli("hosts", "--json").out().split("\"up\":true", -1).length - 1 == HOSTS.size());
  }

  private static void expectOk(TestCluster.Cli cli) {
    if (cli.exitCode() != 0) {
      fail(cli.toString());
    }
  }

  private void note(String line) {
    synchronized (sequence) {
      sequence.add(line);
    }
    System.out.println("FaultInjectionTest " + seed + ": " + line);
  }

  /** Asks every live, unfrozen agent what it runs, over and over; notes any VM two of them run. */
  private final class Observer {
    final ConcurrentLinkedQueue<String> doubleRuns = new ConcurrentLinkedQueue<>();
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final Thread thread = new Thread(this::observe, "observer");

    Observer() {
      thread.setDaemon(true);
      thread.start();
    }

    private void observe() {
      while (running.get()) {
        Map<String, List<String>> runningOn = new HashMap<>();
        for (String host : HOSTS) {
          FerryProcess p = cluster.agents.get(host);
          if (p == null || !p.isAlive() || frozen.contains(host)) {
            continue;
          }
          try {
            for (GuestStatus g : cluster.agentClient(host).list()) {
              if ("running".equals(g.getState())) {
                runningOn.computeIfAbsent(g.getSpec().getName(), k -> new ArrayList<>()).add(host);
              }
            }
          } catch (IOException | RuntimeException e) {
            // dying, starting or thawing: ask again next time
          }
        }
        runningOn.forEach((vm, hosts) -> {
          if (hosts.size() > 1) {
            doubleRuns.add(vm + " running on " + hosts);
          }
        });
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
      }
    }

    void stop() throws InterruptedException {
      running.set(false);
      thread.join(150_000);
    }
  }

  /** Writes k0, k1, ... to the key-value VM without pause; a write counts once it is answered OK. */
  private static final class KvWriter {
    final Set<Integer> acked = ConcurrentHashMap.newKeySet();
    private final int port;
    private final AtomicBoolean writing = new AtomicBoolean(true);
    private final Thread thread = new Thread(this::write, "kv-writer");

    KvWriter(int port) {
      this.port = port;
      thread.setDaemon(true);
      thread.start();
    }

    private void write() {
      KvClient client = new KvClient(port);
      for (int i = 0; writing.get(); i++) {
        // The same key again after an error or a closed connection: a write counts once, when OK'd.
        while (writing.get()) {
          if ("OK".equals(client.request("PUT k" + i + " v" + i))) {
            acked.add(i);
            break;
          }
        }
      }
      client.close();
    }

    void awaitMore(int more, Duration timeout) throws Exception {
      int target = acked.size() + more;
      TestCluster.await(target + " key-value writes acknowledged", timeout, () -> acked.size() >= target);
    }

    void stop() throws InterruptedException {
      writing.set(false);
      thread.join(30_000);
    }

    /** Every acknowledged write that does not read back as written. */
    List<String> lostWrites() {
      KvClient reader = new KvClient(port);
      List<String> lost = new ArrayList<>();
      for (int i : acked) {
        String answer = reader.request("GET k" + i);
        if (!("VALUE v" + i).equals(answer)) {
          lost.add("k" + i + " -> " + answer);
        }
      }
      reader.close();
      return lost;
    }
  }
}
