package dev.ferry.it.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * DRS and maintenance mode through the CLI, against real processes: three agents of 2 cores each
 * (--cpu-capacity) on this machine. CPU-heavy VMs piled on one host are spread by full DRS; then,
 * with only mandatory moves, an anti-affinity rule holds through a maintenance drain, a VM pinned
 * by a must rule is named as blocked, and the host is in maintenance once it is free.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 6, unit = TimeUnit.MINUTES)
class DrsMaintenanceTest {
  @TempDir(cleanup = org.junit.jupiter.api.io.CleanupMode.ON_SUCCESS)
  static Path dir;

  private static final List<String> HOT = List.of("hot-1", "hot-2", "hot-3");
  private TestCluster cluster;

  @BeforeAll
  void start() throws Exception {
    cluster = TestCluster.start(dir, 1);
    cluster.startCoordinator("c1");
    for (String host : List.of("host-1", "host-2", "host-3")) {
      cluster.startAgent(host, List.of(), "--cpu-capacity", "2", "--load-interval", "0.5");
    }
    TestCluster.await("three hosts up", Duration.ofSeconds(60),
        () -> cluster.cli("hosts", "--json").out().split("\"up\":true", -1).length - 1 == 3);
    ok(cluster.cli("drs", "config", "--mode", "full", "--threshold", "3", "--interval", "5"));
  }

  @AfterAll
  void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  @Order(1)
  void fullDrsSpreadsBusyVmsPiledOnOneHost() throws Exception {
    for (String vm : HOT) {
      ok(cluster.cli("vm", "create", vm, "--memory", "64MiB", "--cpu-load", "0.3", "--dirty-rate", "1MiB/s",
          "--host", "host-1"));
    }
    // 0.9 cores on one host of 2 and none on the others: a spread of about 0.21, over threshold 3's 0.12.
    TestCluster.await("DRS moves a busy VM off host-1", Duration.ofSeconds(90), () -> hostsOf(HOT).size() >= 2);
    TestCluster.await("the moves end", Duration.ofSeconds(60), this::nothingMigrating);
    Set<String> hosts = hostsOf(HOT);
    assertTrue(hosts.size() >= 2, "spread over " + hosts);
    for (String vm : HOT) {
      cluster.assertRunsOnlyOn(vm, cluster.vm(vm).getOwnerHost());
    }
    String events = cluster.cli("events", "--limit", "100").out();
    assertTrue(events.contains("drs-move") && events.contains("brings the spread from"), events);
    TestCluster.Cli status = cluster.cli("drs", "status");
    ok(status);
    assertTrue(status.out().matches("(?s).*[; ][1-9][0-9]* move\\(s\\) started by DRS.*"),
        "DRS counts the moves it started: " + status);
  }

  @Test
  @Order(2)
  void aMaintenanceDrainKeepsRulesNamesWhatIsBlockedAndEndsInMaintenance() throws Exception {
    // Only mandatory moves from here: what moves, moves for the rules and the drain.
    ok(cluster.cli("drs", "config", "--threshold", "1"));
    for (String vm : HOT) {
      ok(cluster.cli("vm", "stop", vm));
      TestCluster.await(vm + " stopped", Duration.ofSeconds(30),
          () -> cluster.cli("vm", "delete", vm).exitCode() == 0);
    }
    ok(cluster.cli("vm", "create", "web-1", "--memory", "64MiB", "--dirty-rate", "2MiB/s", "--host", "host-1"));
    ok(cluster.cli("vm", "create", "web-2", "--memory", "64MiB", "--dirty-rate", "2MiB/s", "--host", "host-2"));
    ok(cluster.cli("vm", "create", "db-1", "--memory", "64MiB", "--host", "host-2"));
    ok(cluster.cli("rule", "add", "web-apart", "--anti-affinity", "web-1,web-2"));
    ok(cluster.cli("rule", "add", "db-pin", "--vm", "db-1", "--host", "host-2", "--must"));

    ok(cluster.cli("host", "maintenance", "enter", "host-2"));
    // web-2 may not join web-1 on host-1: host-3 is the only place it can go.
    TestCluster.await("web-2 leaves host-2", Duration.ofSeconds(90),
        () -> owner("web-2").equals("host-3") && nothingMigrating());
    assertEquals("host-1", owner("web-1"));
    cluster.assertRunsOnlyOn("web-2", "host-3");
    TestCluster.await("the pinned VM is named as blocked", Duration.ofSeconds(60),
        () -> cluster.cli("hosts").out().lines().anyMatch(l -> l.startsWith("host-2")
            && l.contains("entering-maintenance (1 VM blocked: db-1: must rule db-pin")));
    assertEquals("host-2", owner("db-1"), "a must rule is never broken");
    MigrationRecord drained = migrations().stream()
        .filter(m -> m.getVm().equals("web-2")).reduce((a, b) -> b).orElseThrow();
    assertEquals(MigrationState.MIGRATION_COMPLETED, drained.getState(), drained.toString());
    assertTrue(drained.getReport().getDowntimeNs() > 0, "a live migration: the guest paused, not restarted");

    ok(cluster.cli("rule", "rm", "db-pin"));
    TestCluster.await("host-2 is in maintenance once empty", Duration.ofSeconds(90),
        () -> cluster.cli("hosts").out().lines().anyMatch(l -> l.startsWith("host-2") && l.contains("in-maintenance")
            && !l.contains("entering")));
    assertNotEquals("host-2", owner("db-1"));
    assertNotEquals(owner("web-1"), owner("web-2"), "the anti-affinity rule held through the drain");
    for (String vm : List.of("web-1", "web-2", "db-1")) {
      cluster.assertRunsOnlyOn(vm, owner(vm));
    }
    TestCluster.Cli refused = cluster.cli("migrate", "web-1", "--to", "host-2");
    assertEquals(4, refused.exitCode(), refused.toString());
    assertTrue(refused.err().contains("maintenance"), refused.toString());

    ok(cluster.cli("host", "maintenance", "exit", "host-2"));
    assertTrue(cluster.cli("hosts").out().lines().anyMatch(l -> l.startsWith("host-2") && l.contains("active")));
  }

  private String owner(String vm) {
    try {
      return cluster.vm(vm).getOwnerHost();
    } catch (Exception e) {
      return "";
    }
  }

  private Set<String> hostsOf(List<String> vms) {
    Set<String> hosts = new HashSet<>();
    vms.forEach(vm -> hosts.add(owner(vm)));
    return hosts;
  }

  private boolean nothingMigrating() {
    try {
      return migrations().stream().noneMatch(m -> m.getState() == MigrationState.MIGRATION_QUEUED
          || m.getState() == MigrationState.MIGRATION_RUNNING);
    } catch (Exception e) {
      return false;
    }
  }

  /** Every migration record, oldest first. */
  private List<MigrationRecord> migrations() throws Exception {
    List<MigrationRecord> all = new java.util.ArrayList<>();
    for (String id : cluster.zk().getChildren().forPath(dev.ferry.cluster.model.ZkPaths.MIGRATIONS)) {
      String path = dev.ferry.cluster.model.ZkPaths.migration(id);
      try {
        all.add(dev.ferry.cluster.model.Records.migration(path, cluster.zk().getData().forPath(path)));
      } catch (org.apache.zookeeper.KeeperException.NoNodeException e) {
        // forgotten meanwhile
      }
    }
    all.sort(java.util.Comparator.comparingLong(MigrationRecord::getCreatedMs));
    return all;
  }

  private static void ok(TestCluster.Cli cli) {
    assertEquals(0, cli.exitCode(), cli.toString());
  }
}
