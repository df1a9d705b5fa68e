package dev.ferry.it.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.proto.MigrationPolicy;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.VmRecord;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.ZooKeeper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * One cluster of real processes — a ZooKeeper server, a coordinator, three agents (host-3 runs
 * with the duplicate-commit failpoint) — driven through the CLI and the real API.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 8, unit = TimeUnit.MINUTES)
class ClusterCliTest {
  @TempDir(cleanup = org.junit.jupiter.api.io.CleanupMode.ON_SUCCESS)
  static Path dir;

  private TestCluster cluster;

  @BeforeAll
  void start() throws Exception {
    cluster = TestCluster.start(dir, 1);
    cluster.startCoordinator("c1");
    cluster.startAgent("host-1", List.of());
    cluster.startAgent("host-2", List.of());
    // host-3 replays its commits (as a target: the target commits)
    // ZooKeeper instead of through its watch.
    cluster.startAgent("host-3", List.of("-Dferry.failpoint=commit-duplicate"));
    TestCluster.await("the coordinator lists three hosts up", Duration.ofSeconds(60),
        () -> cluster.cli("hosts", "--json").out().split("\"up\":true", -1).length - 1 == 3);
  }

  @AfterAll
  void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void createAndMigrateThroughTheCli() throws Exception {
    TestCluster.Cli created = cluster.cli("vm", "create", "web-1", "--memory", "128MiB", "--dirty-rate", "16MiB/s",
        "--working-set", "32MiB", "--host", "host-1");
    assertEquals(0, created.exitCode(), created.toString());
    assertTrue(created.out().contains("running on host-1 (epoch 1)"), created.toString());
    cluster.assertRunsOnlyOn("web-1", "host-1");

    TestCluster.Cli moved = cluster.cli("migrate", "web-1", "--to", "host-2", "--verify");
    assertEquals(0, moved.exitCode(), moved + cluster.logs());
    assertTrue(moved.out().contains("memory on host-2 at resume == memory on host-1 at pause"), moved.toString());
    assertTrue(moved.out().contains("exactly the steps they paused at"), moved.toString());
    cluster.assertRunsOnlyOn("web-1", "host-2");
    VmRecord vm = cluster.vm("web-1");
    assertEquals(2, vm.getEpoch(), "the commit moved the epoch on");
    // The target takes the lease with its guest already running, but the migration completes
    // only once it holds it.
    dev.ferry.storage.LeaseStatus lease = dev.ferry.storage.Datastore.open(dir.resolve("datastore")).vm("web-1")
        .lease().read().orElseThrow();
    assertEquals("host-2", lease.host(), "the new host holds the datastore lease when the migration completes");
    assertEquals(2, lease.epoch());

    TestCluster.Cli listed = cluster.cli("migrations");
    assertTrue(listed.out().contains("web-1") && listed.out().contains("completed"), listed.toString());
    // The event log tells it in order: created, started, completed with the pause.
    List<dev.ferry.proto.ClusterEvent> events = awaitEvents("web-1", 3);
    assertEquals(List.of(dev.ferry.proto.EventKind.EVENT_VM_CREATED, dev.ferry.proto.EventKind.EVENT_MIGRATION_STARTED,
        dev.ferry.proto.EventKind.EVENT_MIGRATION_COMPLETED),
        events.stream().map(dev.ferry.proto.ClusterEvent::getKind).toList(), events.toString());
    assertTrue(events.get(1).getMigration().startsWith("m-"), events.toString());
    assertEquals(events.get(1).getMigration(), events.get(2).getMigration(), "the same migration");
    assertTrue(events.get(2).getMessage().matches(
        "migration of web-1 from host-1 to host-2 completed \\(paused [0-9.]+ ms\\).*"), events.get(2).getMessage());
    TestCluster.Cli text = cluster.cli("events", "--limit", "1000");
    assertEquals(0, text.exitCode(), text.toString());
    assertTrue(text.out().contains("host-joined") && text.out().contains("host host-3 joined the cluster")
        && text.out().contains("coordinator-leading") && text.out().contains("migration-completed"), text.toString());

    TestCluster.Cli again = cluster.cli("migrate", "web-1", "--to", "host-2");
    assertEquals(4, again.exitCode(), again.toString());
    assertTrue(again.err().contains("web-1 already runs on host-2"), again.toString());
    TestCluster.Cli noRoom = cluster.cli("vm", "create", "big-1", "--memory", "3GiB", "--host", "host-1");
    assertEquals(4, noRoom.exitCode(), noRoom.toString());
    assertTrue(noRoom.err().matches("(?s).*host-1 has [0-9.]+ GiB free, big-1 needs 3\\.0 GiB.*"), noRoom.toString());
  }

  /** The events about {@code vm}, through {@code ferry events --json}, once there are at least {@code count}. */
  private List<dev.ferry.proto.ClusterEvent> awaitEvents(String vm, int count) throws Exception {
    List<dev.ferry.proto.ClusterEvent> found = TestCluster.awaitValue(() -> {
      TestCluster.Cli listed = cluster.cli("events", "--json", "--limit", "1000");
      assertEquals(0, listed.exitCode(), listed.toString());
      List<dev.ferry.proto.ClusterEvent> about = new java.util.ArrayList<>();
      for (String line : listed.out().lines().toList()) {
        dev.ferry.proto.ClusterEvent.Builder e = dev.ferry.proto.ClusterEvent.newBuilder();
        com.google.protobuf.util.JsonFormat.parser().merge(line, e);
        if (e.getVm().equals(vm)) {
          about.add(e.build());
        }
      }
      return about.size() >= count ? about : null;
    }, Duration.ofSeconds(30));
    assertTrue(found != null, "events about " + vm + ": " + cluster.cli("events", "--limit", "1000").out());
    return found;
  }

  @Test
  void aDuplicatedCutoverIsRecognisedNotReportedFailed() throws Exception {
    assertEquals(0, cluster.cli("vm", "create", "dup-1", "--memory", "64MiB", "--dirty-rate", "4MiB/s",
        "--host", "host-1").exitCode());
    // host-3, the target, replays its commit multi-op, as Curator's retry after a lost connection
    // would: the replay fails with BADVERSION although the first one landed.
    TestCluster.Cli moved = cluster.cli("migrate", "dup-1", "--to", "host-3", "--verify", "--json");
    assertEquals(0, moved.exitCode(), moved + cluster.logs());
    MigrationRecord m = parseJson(moved.out(), MigrationRecord.newBuilder()).build();
    assertEquals(MigrationState.MIGRATION_COMPLETED, m.getState(), m.toString());
    assertTrue(m.getCommitOpId().startsWith("op-"), "the commit is recorded with its operation id: " + m);
    // No record says the replay happened and was read back; only host-3's log does.
    assertTrue(cluster.agents.get("host-3").logText().contains("recognised by its operation id"),
        "the target read the record back and found its own commit");
    cluster.assertRunsOnlyOn("dup-1", "host-3");
    assertEquals(2, cluster.vm("dup-1").getEpoch(), "one commit, one epoch step");
    // The target takes the lease only after its commit stood and it resumed the guest.
    dev.ferry.storage.LeaseStatus lease = dev.ferry.storage.Datastore.open(dir.resolve("datastore")).vm("dup-1")
        .lease().read().orElseThrow();
    assertEquals("host-3", lease.host(), "the target committed and holds the lease");
    assertEquals(2, lease.epoch());

    // And back: host-3 as a source commits nothing itself.
    TestCluster.Cli back = cluster.cli("migrate", "dup-1", "--to", "host-1", "--verify");
    assertEquals(0, back.exitCode(), back + cluster.logs());
    cluster.assertRunsOnlyOn("dup-1", "host-1");
    assertEquals(3, cluster.vm("dup-1").getEpoch());
  }

  private static <T extends com.google.protobuf.Message.Builder> T parseJson(String json, T into) throws Exception {
    com.google.protobuf.util.JsonFormat.parser().ignoringUnknownFields().merge(json, into);
    return into;
  }

  @Test
  void aCommandWithAStaleEpochIsRefused() throws Exception {
    assertEquals(0, cluster.cli("vm", "create", "stale-1", "--memory", "64MiB", "--host", "host-1").exitCode());
    assertEquals(0, cluster.cli("migrate", "stale-1", "--to", "host-2").exitCode());
    assertEquals(2, cluster.vm("stale-1").getEpoch());
    // A migration record carrying the VM's old epoch 1 (what a deposed coordinator or a replayed
    // request would write): its source, the owner, must refuse to act on it.
    String staleId = dev.ferry.common.MigrationIds.random();
    MigrationRecord stale = MigrationRecord.newBuilder().setFormatVersion(Records.FORMAT).setId(staleId)
        .setVm("stale-1").setSourceHost("host-2").setTargetHost("host-1")
        .setPolicy(MigrationPolicy.getDefaultInstance()).setState(MigrationState.MIGRATION_RUNNING)
        .setSecret(ByteString.copyFrom(new byte[32])).setVmEpoch(1).setCreatedMs(System.currentTimeMillis()).build();
    cluster.zk().create().forPath(ZkPaths.migration(staleId), Records.bytes(stale));
    TestCluster.await("host-2 refuses m-stale", Duration.ofSeconds(30),
        () -> {
          try {
            return cluster.migration(staleId).getState() == MigrationState.MIGRATION_ABORTED;
          } catch (Exception e) {
            return false;
          }
        });
    MigrationRecord refused = cluster.migration(staleId);
    assertTrue(refused.getReason().contains("epoch 1, older than epoch 2"), refused.getReason());
    cluster.assertRunsOnlyOn("stale-1", "host-2");
    assertEquals(2, cluster.vm("stale-1").getEpoch(), "nothing moved");
  }

  @Test
  void anUnauthenticatedClientCannotRewriteOwnership() throws Exception {
    assertEquals(0, cluster.cli("vm", "create", "acl-1", "--memory", "64MiB", "--host", "host-1").exitCode());
    VmRecord hijacked = cluster.vm("acl-1").toBuilder().setOwnerHost("host-2").setEpoch(99).build();
    // ZooKeeper serves no request from a client that has not authenticated (enforce.auth).
    ZooKeeper stranger = connectStranger();
    try {
      assertThrows(KeeperException.SessionClosedRequireAuthException.class,
          () -> stranger.create("/planted", new byte[0], org.apache.zookeeper.ZooDefs.Ids.OPEN_ACL_UNSAFE,
              org.apache.zookeeper.CreateMode.PERSISTENT), "nodes cannot be created even at the root");
    } finally {
      stranger.close();
    }
    // Authenticated under another identity, it meets the ACLs.
    ZooKeeper impostor = connectStranger();
    try {
      impostor.addAuthInfo("digest", "ferry:a-wrong-password".getBytes(StandardCharsets.UTF_8));
      assertThrows(KeeperException.NoAuthException.class,
          () -> impostor.setData(ZkPaths.vm("acl-1"), Records.bytes(hijacked), -1));
      assertThrows(KeeperException.NoAuthException.class, () -> impostor.getData(ZkPaths.vm("acl-1"), false, null),
          "records (and the migration secrets in them) are not readable either");
      assertThrows(KeeperException.NoAuthException.class, () -> impostor.delete(ZkPaths.vm("acl-1"), -1));
    } finally {
      impostor.close();
    }
    cluster.assertRunsOnlyOn("acl-1", "host-1");
    assertEquals(1, cluster.vm("acl-1").getEpoch());

    TestCluster.Cli wrongToken = cluster.cli("vms", "--token-file", dir.resolve("zk-credentials").toString());
    assertEquals(6, wrongToken.exitCode(), wrongToken.toString());
  }

  private ZooKeeper connectStranger() throws Exception {
    ZooKeeper zk = new ZooKeeper(cluster.zkConnect, 10_000, event -> { });
    TestCluster.await("a client connects to ZooKeeper", Duration.ofSeconds(30),
        () -> zk.getState() == ZooKeeper.States.CONNECTED);
    return zk;
  }

  @Test
  void aCancelledMigrationLeavesTheVmRunningOnItsSource() throws Exception {
    assertEquals(0, cluster.cli("vm", "create", "cancel-1", "--memory", "128MiB", "--content", "random",
        "--dirty-rate", "4MiB/s", "--host", "host-2").exitCode());
    TestCluster.Cli started = cluster.cli("migrate", "cancel-1", "--to", "host-1", "--bandwidth", "16MiB/s", "--detach");
    assertEquals(0, started.exitCode(), started.toString());
    String id = started.out().trim();
    TestCluster.await(id + " is under way", Duration.ofSeconds(60), () -> {
      try {
        return cluster.migration(id).getProgress().getGuestBytesSent() > (4 << 20);
      } catch (Exception e) {
        return false;
      }
    });
    TestCluster.Cli cancelled = cluster.cli("migration", "cancel", id);
    assertEquals(0, cancelled.exitCode(), cancelled + cluster.logs());
    assertTrue(cancelled.out().contains("cancelled"), cancelled.toString());
    assertEquals(MigrationState.MIGRATION_CANCELLED, cluster.migration(id).getState());
    cluster.assertRunsOnlyOn("cancel-1", "host-2");
    assertEquals(1, cluster.vm("cancel-1").getEpoch(), "nothing moved");
    TestCluster.Cli again = cluster.cli("migration", "cancel", id);
    assertEquals(4, again.exitCode(), again.toString());
    assertTrue(again.err().contains("already ended"), again.toString());
    List<dev.ferry.proto.ClusterEvent> events = awaitEvents("cancel-1", 3);
    assertEquals(dev.ferry.proto.EventKind.EVENT_MIGRATION_CANCELLED, events.get(2).getKind(), events.toString());
    assertEquals(id, events.get(2).getMigration());
  }

  @Test
  void migrationsOverTheHostLimitQueue() throws Exception {
    List<String> ids = new java.util.ArrayList<>();
    for (int i = 1; i <= 3; i++) {
      assertEquals(0, cluster.cli("vm", "create", "q-" + i, "--memory", "32MiB", "--content", "random",
          "--host", "host-1").exitCode());
    }
    for (int i = 1; i <= 3; i++) {
      TestCluster.Cli started = cluster.cli("migrate", "q-" + i, "--to", "host-2", "--bandwidth", "8MiB/s", "--detach");
      assertEquals(0, started.exitCode(), started.toString());
      ids.add(started.out().trim());
    }
    // At most two leave host-1 at once (the default per-host limit): the third waits, and says so.
    TestCluster.await("the first two run", Duration.ofSeconds(30), () -> {
      try {
        return cluster.migration(ids.get(0)).getState() == MigrationState.MIGRATION_RUNNING
            && cluster.migration(ids.get(1)).getState() == MigrationState.MIGRATION_RUNNING;
      } catch (Exception e) {
        return false;
      }
    });
    assertEquals(MigrationState.MIGRATION_QUEUED, cluster.migration(ids.get(2)).getState());
    TestCluster.Cli listed = cluster.cli("migrations");
    assertTrue(listed.out().lines().anyMatch(l -> l.startsWith(ids.get(2)) && l.contains("queued")), listed.toString());
    for (String id : ids) {
      TestCluster.await(id + " completes", Duration.ofSeconds(120), () -> {
        try {
          return cluster.migration(id).getState() == MigrationState.MIGRATION_COMPLETED;
        } catch (Exception e) {
          return false;
        }
      });
    }
    for (int i = 1; i <= 3; i++) {
      cluster.assertRunsOnlyOn("q-" + i, "host-2");
    }
  }

  @Test
  void aVmSuspendedOnOneHostResumesOnAnotherFromTheExactStep() throws Exception {
    assertEquals(0, cluster.cli("vm", "create", "sus-1", "--memory", "128MiB", "--dirty-rate", "16MiB/s",
        "--working-set", "32MiB", "--host", "host-1").exitCode());
    TestCluster.Cli suspended = cluster.cli("vm", "suspend", "sus-1");
    assertEquals(0, suspended.exitCode(), suspended + cluster.logs());
    assertTrue(cluster.whereIs("sus-1").isEmpty(), "no host runs a suspended VM: " + cluster.whereIs("sus-1"));
    dev.ferry.storage.VmDirectory files = dev.ferry.storage.Datastore.open(dir.resolve("datastore")).vm("sus-1");
    dev.ferry.proto.CheckpointState atSuspend;
    try (dev.ferry.storage.CheckpointReader checkpoint = files.openCheckpoint("suspend")) {
      atSuspend = dev.ferry.proto.CheckpointState.parseFrom(checkpoint.verify());
    }
    assertEquals("host-1", atSuspend.getHost());

    TestCluster.Cli resumed = cluster.cli("vm", "resume", "sus-1", "--on", "host-2");
    assertEquals(0, resumed.exitCode(), resumed + cluster.logs());
    cluster.assertRunsOnlyOn("sus-1", "host-2");
    dev.ferry.proto.GuestStatus there = cluster.agentClient("host-2").awaitDigestAtResume("sus-1", Duration.ofSeconds(60));
    assertEquals(atSuspend.getMemoryDigest(), there.getDigestAtResume(), "memory on host-2 equals memory at suspend");
    assertEquals(atSuspend.getVcpuState(), there.getVcpuStateAtResume(), "the vCPUs continue from the exact step");
    long stepsAtSuspend = atSuspend.getVcpuState().getVcpusList().stream().mapToLong(v -> v.getStep()).sum();
    TestCluster.await("sus-1 runs on from where it stopped", Duration.ofSeconds(30), () -> {
      try {
        return cluster.agentClient("host-2").status("sus-1").getSteps() > stepsAtSuspend + 100;
      } catch (Exception e) {
        return false;
      }
    });
    assertEquals(2, cluster.vm("sus-1").getEpoch());
    dev.ferry.storage.LeaseStatus lease = files.lease().read().orElseThrow();
    assertEquals("host-2", lease.host(), "the new host holds the datastore lease");
    assertEquals(2, lease.epoch());

    TestCluster.Cli notSuspended = cluster.cli("vm", "resume", "sus-1");
    assertEquals(4, notSuspended.exitCode(), notSuspended.toString());
    TestCluster.Cli ls = cluster.cli("datastore", "ls", "--datastore", dir.resolve("datastore").toString());
    assertTrue(ls.out().lines().anyMatch(l -> l.startsWith("sus-1") && l.contains("host-2")), ls.toString());
  }

  @Test
  void aCorruptCheckpointIsReportedByNameAndNotLoaded() throws Exception {
    assertEquals(0, cluster.cli("vm", "create", "cor-1", "--memory", "64MiB", "--content", "random",
        "--host", "host-1").exitCode());
    assertEquals(0, cluster.cli("vm", "suspend", "cor-1").exitCode());
    Path file = dir.resolve("datastore").resolve("vms/cor-1/checkpoint/suspend.ckpt");
    try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file,
        java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE)) {
      java.nio.ByteBuffer one = java.nio.ByteBuffer.allocate(1);
      long at = ch.size() / 2;
      ch.read(one, at);
      one.put(0, (byte) (one.get(0) ^ 0x5a)).rewind();
      ch.write(one, at);
    }
    TestCluster.Cli resumed = cluster.cli("vm", "resume", "cor-1", "--on", "host-2");
    assertEquals(1, resumed.exitCode(), resumed.toString());
    assertTrue(resumed.err().contains("vms/cor-1/checkpoint/suspend.ckpt"), "the error names the file: " + resumed);
    assertTrue(cluster.whereIs("cor-1").isEmpty(), "nothing was loaded: " + cluster.whereIs("cor-1"));
    assertTrue(cluster.agents.get("host-2").isAlive(), "the agent keeps running");
    assertEquals(0, cluster.cli("hosts").exitCode());
    assertEquals(dev.ferry.proto.PowerState.POWER_SUSPENDED, cluster.vm("cor-1").getPower());
  }

  /**
   * A VM whose boot failed (its config on the datastore damaged) shows why in its record, in
   * {@code ferry vms} and {@code ferry vm show}; once the file is repaired, {@code vm start} boots it.
   */
  @Test
  void aVmWhoseBootFailedBootsOnStartOnceRepaired() throws Exception {
    assertEquals(0, cluster.cli("vm", "create", "boot-1", "--memory", "64MiB", "--host", "host-2").exitCode());
    assertEquals(0, cluster.cli("vm", "stop", "boot-1").exitCode());
    Path config = dir.resolve("datastore").resolve("vms/boot-1/vm.conf");
    byte[] intact = java.nio.file.Files.readAllBytes(config);
    byte[] damaged = intact.clone();
    damaged[damaged.length / 2] ^= 0x5a;
    java.nio.file.Files.write(config, damaged);

    TestCluster.Cli failed = cluster.cli("vm", "start", "boot-1", "--timeout", "30");
    assertEquals(1, failed.exitCode(), failed.toString());
    assertTrue(failed.err().contains("vms/boot-1/vm.conf"), "the error names the file: " + failed);
    String bootError = cluster.vm("boot-1").getLastBootError();
    assertTrue(bootError.contains("vms/boot-1/vm.conf"), "the record keeps the boot error: " + bootError);
    TestCluster.Cli listed = cluster.cli("vms");
    assertTrue(listed.out().lines().anyMatch(l -> l.startsWith("boot-1") && l.contains("vms/boot-1/vm.conf")),
        listed.toString());
    TestCluster.Cli shown = cluster.cli("vm", "show", "boot-1");
    assertEquals(0, shown.exitCode(), shown.toString());
    assertTrue(shown.out().contains("\"last_boot_error\"") && shown.out().contains("vms/boot-1/vm.conf"), shown.toString());
    // Starting again without a repair fails again, and says why again.
    TestCluster.Cli again = cluster.cli("vm", "start", "boot-1", "--timeout", "30");
    assertEquals(1, again.exitCode(), again.toString());
    assertTrue(again.err().contains("vms/boot-1/vm.conf"), again.toString());

    java.nio.file.Files.write(config, intact);
    TestCluster.Cli started = cluster.cli("vm", "start", "boot-1", "--timeout", "30");
    assertEquals(0, started.exitCode(), started + cluster.logs());
    cluster.assertRunsOnlyOn("boot-1", "host-2");
    assertEquals("", cluster.vm("boot-1").getLastBootError(), "a boot that succeeded clears the error");
  }

  /**
   * A client writes to the guest's key-value service without pause while the VM migrates, then is
   * suspended and resumed on another host; every write that was acknowledged reads back after.
   */
  @Test
  void nothingAcknowledgedIsLostAcrossMigrationSuspendAndResume() throws Exception {
    int port = TestCluster.freePort();
    assertEquals(0, cluster.cli("vm", "create", "kv-1", "--memory", "64MiB", "--dirty-rate", "4MiB/s",
        "--kv-port", Integer.toString(port), "--host", "host-1").exitCode());
    java.util.Set<Integer> acked = java.util.concurrent.ConcurrentHashMap.newKeySet();
    java.util.concurrent.atomic.AtomicBoolean writing = new java.util.concurrent.atomic.AtomicBoolean(true);
    Thread writer = new Thread(() -> {
      KvClient client = new KvClient(port);
      for (int i = 0; writing.get(); i++) {
        while (writing.get()) {
          if ("OK".equals(client.request("PUT k" + i + " v" + i))) {
            acked.add(i);
            break;
          }
        }
      }
      client.close();
    }, "kv-writer");
    writer.start();
    try {
      awaitMore(acked, 20);
      TestCluster.Cli moved = cluster.cli("migrate", "kv-1", "--to", "host-2");
      assertEquals(0, moved.exitCode(), moved + cluster.logs());
      awaitMore(acked, 20);
      assertEquals(0, cluster.cli("vm", "suspend", "kv-1").exitCode());
      TestCluster.Cli resumed = cluster.cli("vm", "resume", "kv-1", "--on", "host-1");
      assertEquals(0, resumed.exitCode(), resumed + cluster.logs());
      awaitMore(acked, 20);
    } finally {
      writing.set(false);
      writer.join(30_000);
    }
    cluster.assertRunsOnlyOn("kv-1", "host-1");
    KvClient reader = new KvClient(port);
    java.util.List<Integer> lost = new java.util.ArrayList<>();
    for (int i : acked) {
      if (!("VALUE v" + i).equals(reader.request("GET k" + i))) {
        lost.add(i);
      }
    }
    reader.close();
    assertTrue(acked.size() >= 60, "writes acknowledged: " + acked.size());
    assertTrue(lost.isEmpty(), lost.size() + " of " + acked.size() + " acknowledged writes are lost: " + lost);
  }

  private static void awaitMore(java.util.Set<Integer> acked, int more) throws Exception {
    int target = acked.size() + more;
    TestCluster.await(target + " writes acknowledged", Duration.ofSeconds(60), () -> acked.size() >= target);
  }

  @Test
  void aVmCreatedAgainUnderItsOldNameContinuesAboveItsOldEpoch() throws Exception {
    assertEquals(0, cluster.cli("vm", "create", "re-1", "--memory", "64MiB", "--host", "host-1").exitCode());
    assertEquals(0, cluster.cli("migrate", "re-1", "--to", "host-2").exitCode());
    assertEquals(0, cluster.cli("vm", "stop", "re-1").exitCode());
    assertEquals(0, cluster.cli("vm", "delete", "re-1").exitCode());
    // host-2 saw epoch 2 and its datastore lease says epoch 2: the new re-1 must start above it.
    TestCluster.Cli again = cluster.cli("vm", "create", "re-1", "--memory", "64MiB", "--host", "host-2");
    assertEquals(0, again.exitCode(), again + cluster.logs());
    assertTrue(again.out().contains("running on host-2 (epoch 3)"), again.toString());
    cluster.assertRunsOnlyOn("re-1", "host-2");
  }

  @Test
  void aRecordThisFerryCannotReadNeverStopsItsGuest() throws Exception {
    assertEquals(0, cluster.cli("vm", "create", "newer-1", "--memory", "64MiB", "--dirty-rate", "4MiB/s",
        "--host", "host-1").exitCode());
    VmRecord readable = cluster.vm("newer-1");
    // As a newer Ferry would write it during a rolling upgrade: refused by this one, by path.
    cluster.zk().setData().forPath(ZkPaths.vm("newer-1"),
        readable.toBuilder().setFormatVersion(Records.FORMAT + 1).build().toByteArray());
    long steps = cluster.agentClient("host-1").status("newer-1").getSteps();
    // host-1 sees record changes in order: once it has booted a VM created after the unreadable
    // write (its record says running, which host-1 writes), it has reconciled with that record.
    TestCluster.Cli later = cluster.cli("vm", "create", "after-newer-1", "--memory", "64MiB", "--host", "host-1");
    assertEquals(0, later.exitCode(), later.toString());
    TestCluster.await("several reconcile rounds pass", Duration.ofSeconds(30), () -> {
      try {
        return cluster.agentClient("host-1").status("newer-1").getSteps() > steps + 500;
      } catch (Exception e) {
        return false;
      }
    });
    assertEquals("running", cluster.whereIs("newer-1").get("host-1"), "the guest kept running");
    cluster.zk().setData().forPath(ZkPaths.vm("newer-1"), Records.bytes(readable));
    assertEquals(0, cluster.cli("vm", "stop", "after-newer-1").exitCode());
    assertEquals(0, cluster.cli("vm", "delete", "after-newer-1").exitCode());
  }
}
