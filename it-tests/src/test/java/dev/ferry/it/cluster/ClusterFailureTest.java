package dev.ferry.it.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.proto.CoordinatorEpoch;
import dev.ferry.proto.GuestStatus;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Failures in the middle of a migration, with real processes: the leading coordinator killed
 * with kill -9 (on a three-server ZooKeeper ensemble), and the source agent frozen until its
 * ZooKeeper session expires. After each, exactly one host runs the VM, and when it moved, its
 * memory at resume equals the memory at pause. Throughout, the VM never ran on two hosts at once:
 * the agents record every interval their guests ran (see {@link RunIntervals}), and no two of
 * them on different hosts overlap, however short.
 */
@Timeout(value = 8, unit = TimeUnit.MINUTES)
class ClusterFailureTest {
  @TempDir(cleanup = org.junit.jupiter.api.io.CleanupMode.ON_SUCCESS)
  Path dir;

  private TestCluster cluster;
  private final List<Path> runLogs = new ArrayList<>();

  @AfterEach
  void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void killingTheLeaderMidMigrationLeavesTheVmOnExactlyOneHost() throws Exception {
    cluster = TestCluster.start(dir, 3);
    cluster.startCoordinator("c1");
    cluster.startCoordinator("c2");
    startAgent("host-1");
    startAgent("host-2");
    awaitHostsUp(2);
    assertEquals(0, cluster.cli("vm", "create", "vm-1", "--memory", "256MiB", "--dirty-rate", "8MiB/s",
        "--working-set", "32MiB", "--content", "random", "--host", "host-1").exitCode());

    RunningSampler sampler = new RunningSampler(cluster, "vm-1");
    String id = startCappedMigration("vm-1", "host-2", "32MiB/s");
    awaitBytesSent(id, 16L << 20);
    CoordinatorEpoch before = cluster.coordinatorEpoch();
    FerryProcess leader = cluster.coordinators.get(before.getLeaderId());
    leader.kill();

    MigrationRecord done = awaitEnd(id);
    sampler.stop();
    CoordinatorEpoch after = TestCluster.awaitValue(() -> {
      CoordinatorEpoch e = cluster.coordinatorEpoch();
      return e.getEpoch() > before.getEpoch() ? e : null;
    }, Duration.ofSeconds(60));
    assertTrue(after != null, "the standby took over with a newer epoch");
    assertNotEquals(before.getLeaderId(), after.getLeaderId());
    TestCluster.Cli listed = cluster.cli("migrations");
    assertEquals(0, listed.exitCode(), "the CLI finds the new leader: " + listed);

    assertTrue(sampler.violations.isEmpty(), "two hosts ran vm-1 at once: " + sampler.violations);
    if (done.getState() == MigrationState.MIGRATION_COMPLETED) {
      cluster.assertRunsOnlyOn("vm-1", "host-2");
      GuestStatus arrived = cluster.agentClient("host-2").awaitDigestAtResume("vm-1", Duration.ofSeconds(60));
      assertEquals(done.getReport().getSourceDigest(), arrived.getDigestAtResume(),
          "memory on host-2 at resume equals memory on host-1 at pause");
      assertEquals(done.getReport().getStateAtPause(), arrived.getVcpuStateAtResume());
    } else {
      assertEquals(MigrationState.MIGRATION_ABORTED, done.getState(), done.toString());
      cluster.assertRunsOnlyOn("vm-1", "host-1");
    }
    List<RunIntervals.Interval> runs = assertNeverRanOnTwoHostsAtOnce("vm-1");
    assertTrue(runs.stream().anyMatch(r -> r.host().equals("host-1")), "host-1's run log shows vm-1: " + runs);
    assertEquals(done.getState() == MigrationState.MIGRATION_COMPLETED,
        runs.stream().anyMatch(r -> r.host().equals("host-2")), "vm-1 ran on host-2 only if it moved: " + runs);
  }

  @Test
  void aSourceWhoseSessionExpiresBeforeTheCommitKeepsTheVm() throws Exception {
    cluster = TestCluster.start(dir, 1);
    cluster.startCoordinator("c1");
    startAgent("host-1", "--zk-session-timeout-ms", "3000");
    startAgent("host-2", "--zk-session-timeout-ms", "3000");
    awaitHostsUp(2);
    assertEquals(0, cluster.cli("vm", "create", "vm-2", "--memory", "256MiB", "--dirty-rate", "8MiB/s",
        "--working-set", "32MiB", "--content", "random", "--host", "host-1").exitCode());

    String id = startCappedMigration("vm-2", "host-2", "24MiB/s");
    awaitBytesSent(id, 8L << 20);
    FerryProcess source = cluster.agents.get("host-1");
    source.signal("STOP");
    try {
      // Frozen: no heartbeats. ZooKeeper expires the session; the leader sees the host go and
      // aborts the migration before anything could commit.
      TestCluster.await("the migration is aborted while its source is frozen", Duration.ofSeconds(60), () -> {
        try {
          return cluster.migration(id).getState() == MigrationState.MIGRATION_ABORTED;
        } catch (Exception e) {
          return false;
        }
      });
    } finally {
      source.signal("CONT");
    }
    MigrationRecord done = cluster.migration(id);
    assertTrue(done.getCommitOpId().isEmpty(), "nothing committed: " + done);
    assertTrue(done.getReason().contains("host-1"), done.getReason());
    cluster.assertRunsOnlyOn("vm-2", "host-1");
    assertEquals(1, cluster.vm("vm-2").getEpoch());
    long steps = cluster.agentClient("host-1").status("vm-2").getSteps();
    TestCluster.await("vm-2 keeps running on host-1", Duration.ofSeconds(30), () -> {
      try {
        return cluster.agentClient("host-1").status("vm-2").getSteps() > steps + 100;
      } catch (Exception e) {
        return false;
      }
    });
    TestCluster.await("host-1 is back in the cluster", Duration.ofSeconds(60),
        () -> cluster.cli("hosts", "--json").out().split("\"up\":true", -1).length - 1 == 2);
    List<RunIntervals.Interval> runs = assertNeverRanOnTwoHostsAtOnce("vm-2");
    assertTrue(runs.stream().noneMatch(r -> r.host().equals("host-2")), "vm-2 never ran on host-2: " + runs);
  }

  /** Starts an agent that records where its guests run. */
  private void startAgent(String hostId, String... extra) throws IOException {
    Path runLog = dir.resolve(hostId + ".runlog");
    runLogs.add(runLog);
    cluster.startAgent(hostId, List.of(RunIntervals.jvmArg(runLog)), extra);
  }

  /**
   * Stops the agents (SIGTERM: each writes the end of its guests' runs), then checks their run
   * logs: no two intervals of {@code vm} on different hosts overlap. Returns the intervals.
   */
  private List<RunIntervals.Interval> assertNeverRanOnTwoHostsAtOnce(String vm) throws IOException {
    cluster.agents.values().forEach(FerryProcess::close);
    // Anything still open ran until its agent died, which is before now.
    List<RunIntervals.Interval> runs = RunIntervals.read(runLogs, System.nanoTime());
    List<String> doubleRuns = RunIntervals.doubleRuns(runs, vm);
    assertTrue(doubleRuns.isEmpty(), vm + " ran on two hosts at once: " + doubleRuns);
    return runs;
  }

  private void awaitHostsUp(int n) throws Exception {
    TestCluster.await(n + " hosts up", Duration.ofSeconds(60),
        () -> cluster.cli("hosts", "--json").out().split("\"up\":true", -1).length - 1 == n);
  }

  private String startCappedMigration(String vm, String to, String bandwidth) {
    TestCluster.Cli started = cluster.cli("migrate", vm, "--to", to, "--bandwidth", bandwidth, "--verify", "--detach");
    assertEquals(0, started.exitCode(), started.toString());
    return started.out().trim();
  }

  private void awaitBytesSent(String id, long bytes) throws Exception {
    TestCluster.await(id + " has sent " + (bytes >> 20) + " MiB", Duration.ofSeconds(60), () -> {
      try {
        MigrationRecord m = cluster.migration(id);
        return m.getState() == MigrationState.MIGRATION_RUNNING && m.getProgress().getGuestBytesSent() >= bytes;
      } catch (Exception e) {
        return false;
      }
    });
  }

  private MigrationRecord awaitEnd(String id) throws Exception {
    MigrationRecord done = TestCluster.awaitValue(() -> {
      MigrationRecord m = cluster.migration(id);
      return m.getState() == MigrationState.MIGRATION_COMPLETED || m.getState() == MigrationState.MIGRATION_ABORTED
          || m.getState() == MigrationState.MIGRATION_CANCELLED ? m : null;
    }, Duration.ofSeconds(180));
    assertTrue(done != null, "migration " + id + " never ended: " + cluster.migration(id) + cluster.logs());
    return done;
  }

  /** Asks every agent, over and over, where the VM runs; notes any moment two say "running". */
  private static final class RunningSampler {
    final ConcurrentLinkedQueue<Map<String, String>> violations = new ConcurrentLinkedQueue<>();
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final Thread thread;

    RunningSampler(TestCluster cluster, String vm) {
      thread = new Thread(() -> {
        while (running.get()) {
          try {
            Map<String, String> where = cluster.whereIs(vm);
            if (where.values().stream().filter("running"::equals).count() > 1) {
              violations.add(where);
            }
          } catch (Exception e) {
            // an agent between states: sample again
          }
          LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
        }
      }, "running-sampler");
      thread.setDaemon(true);
      thread.start();
    }

    void stop() throws InterruptedException {
      running.set(false);
      thread.join();
    }
  }
}
