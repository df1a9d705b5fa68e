package dev.ferry.agent.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.cluster.model.MigrationStates;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.engine.precopy.MigrationFailpoints;
import dev.ferry.engine.precopy.CutoverAuthority.Outcome;
import dev.ferry.engine.precopy.CutoverAuthority.Result;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationProgress;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmRecord;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.data.Stat;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cutover against a real ZooKeeper server: the target's commit (what lands together, what is
 * refused, what is reported unknown) and the source's settle when it hears nothing (the commit
 * found, or made impossible). web-1 runs on host-a at epoch 3; migration m-1 moves it to host-b.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ZkCutoverAuthorityTest {
  private static final String CREDENTIALS = "ferry:cutover-test-secret";
  private static final String VM = "web-1";
  private static final String ID = "m-0123456789abcdef0123456789abcdef";
  /** Short, so the unknown case ends quickly; long enough for a healthy local read-back. */
  private static final long READ_BACK_MILLIS = 2_000;

  @TempDir
  Path dir;

  private EmbeddedZooKeeper server;
  private CuratorFramework zk;

  @BeforeEach
  void start() throws Exception {
    server = EmbeddedZooKeeper.standalone(freePort(), dir.resolve("zk"));
    zk = ZkClients.start(new ZkSettings(server.connectString(), CREDENTIALS, 10_000));
    zk.create().creatingParentsIfNeeded().forPath(ZkPaths.vm(VM), Records.bytes(vm("host-a", 3)));
    zk.create().creatingParentsIfNeeded().forPath(ZkPaths.migration(ID), Records.bytes(migration(3)));
  }

  @AfterEach
  void stop() {
    System.clearProperty(MigrationFailpoints.PROPERTY);
    if (zk != null) {
      zk.close();
    }
    if (server != null) {
      server.close();
    }
  }

  @Test
  void aCommitMovesTheVmAndMarksTheMigrationInOneStep() throws Exception {
    Stat vmBefore = stat(ZkPaths.vm(VM));
    Stat migrationBefore = stat(ZkPaths.migration(ID));

    Result result = authority().commit(ID);

    assertEquals(Outcome.COMMITTED, result.outcome(), result.reason());
    assertEquals(4, result.epoch(), "the epoch after the commit");
    VmRecord moved = readVm();
    assertEquals("host-b", moved.getOwnerHost());
    assertEquals(4, moved.getEpoch());
    MigrationRecord committed = readMigration();
    assertTrue(committed.getCommitOpId().startsWith("op-"), committed.toString());
    assertEquals(MigrationPhase.PHASE_STOP_AND_COPY, committed.getPhase(), "the phase is the source's to write");
    assertEquals(MigrationState.MIGRATION_RUNNING, committed.getState(), "the source completes it, not the commit");
    // One transaction: both records written exactly once, in the same ZooKeeper transaction.
    Stat vmAfter = stat(ZkPaths.vm(VM));
    Stat migrationAfter = stat(ZkPaths.migration(ID));
    assertEquals(vmBefore.getVersion() + 1, vmAfter.getVersion());
    assertEquals(migrationBefore.getVersion() + 1, migrationAfter.getVersion());
    assertEquals(vmAfter.getMzxid(), migrationAfter.getMzxid(), "both changes carry the same transaction id");
  }

  @Test
  void aBenignChangeAfterTheCacheLooksIsRetriedAndCommits() throws Exception {
    ZkCutoverAuthority authority = authority().withCache(snapshot());
    // A progress report lands after the records were read: the multi's version check fails once.
    updateMigration(m -> m.toBuilder().setProgress(MigrationProgress.newBuilder().setGuestBytesSent(1 << 20)).build());

    Result result = authority.commit(ID);

    assertEquals(Outcome.COMMITTED, result.outcome(), result.reason());
    assertEquals(4, result.epoch());
    assertEquals("host-b", readVm().getOwnerHost());
    MigrationRecord committed = readMigration();
    assertFalse(committed.getCommitOpId().isEmpty());
    assertEquals(1 << 20, committed.getProgress().getGuestBytesSent(), "the commit kept the newer progress");
  }

  @Test
  void aCancelAfterTheCacheLooksRefusesTheCommitAndChangesNoOwnership() throws Exception {
    ZkCutoverAuthority authority = authority().withCache(snapshot());
    updateMigration(m -> m.toBuilder().setCancelRequested(true).build());
    Stat vmBefore = stat(ZkPaths.vm(VM));

    Result result = authority.commit(ID);

    assertEquals(Outcome.REFUSED, result.outcome(), result.reason());
    assertTrue(result.reason().contains("cancelled"), result.reason());
    assertEquals(vmBefore.getVersion(), stat(ZkPaths.vm(VM)).getVersion(), "the VM record was not written");
    assertEquals("host-a", readVm().getOwnerHost());
    assertEquals(3, readVm().getEpoch());
    MigrationRecord refused = readMigration();
    assertTrue(refused.getCommitOpId().isEmpty(), refused.toString());
    assertEquals(MigrationPhase.PHASE_STOP_AND_COPY, refused.getPhase(), "the target writes nothing when it refuses");
    assertEquals(MigrationState.MIGRATION_RUNNING, refused.getState(), "the state is the coordinator's to write");
  }

  @Test
  void aVmMovedByAnotherWriterAfterTheCacheLooksIsNotMovedAgain() throws Exception {
    ZkCutoverAuthority authority = authority().withCache(snapshot());
    // Someone else moved web-1 (the records the commit read are now stale).
    zk.setData().forPath(ZkPaths.vm(VM), Records.bytes(vm("host-c", 4)));
    Stat vmBefore = stat(ZkPaths.vm(VM));

    Result result = authority.commit(ID);

    assertEquals(Outcome.REFUSED, result.outcome(), result.reason());
    assertEquals(vmBefore.getVersion(), stat(ZkPaths.vm(VM)).getVersion(), "the VM record was not written");
    assertEquals("host-c", readVm().getOwnerHost());
    assertEquals(4, readVm().getEpoch());
    MigrationRecord refused = readMigration();
    assertTrue(refused.getCommitOpId().isEmpty(), refused.toString());
  }

  @Test
  void aMigrationCarryingAnOldVmEpochIsRefused() throws Exception {
    zk.setData().forPath(ZkPaths.migration(ID), Records.bytes(migration(2)));
    Stat vmBefore = stat(ZkPaths.vm(VM));

    Result result = authority().commit(ID);

    assertEquals(Outcome.REFUSED, result.outcome(), result.reason());
    assertTrue(result.reason().contains("epoch 3"), result.reason());
    assertEquals(vmBefore.getVersion(), stat(ZkPaths.vm(VM)).getVersion(), "the VM record was not written");
    assertEquals("host-a", readVm().getOwnerHost());
  }

  @Test
  void aReplayedCommitThatFailsWithBadVersionIsRecognisedByItsOperationId() throws Exception {
    // The failpoint replays the multi right after it landed, as Curator's retry after a lost
    // connection does: the replay fails with BADVERSION although the commit is in.
    System.setProperty(MigrationFailpoints.PROPERTY, MigrationFailpoints.Point.COMMIT_DUPLICATE.label());
    ZkCutoverAuthority authority = authority();
    System.clearProperty(MigrationFailpoints.PROPERTY);
    Stat vmBefore = stat(ZkPaths.vm(VM));

    Result result = authority.commit(ID);

    assertEquals(Outcome.COMMITTED, result.outcome(), result.reason());
    assertEquals(4, result.epoch(), "one commit, one epoch step");
    assertEquals(vmBefore.getVersion() + 1, stat(ZkPaths.vm(VM)).getVersion(), "the VM record was written once");
    assertEquals("host-b", readVm().getOwnerHost());
    MigrationRecord committed = readMigration();
    assertFalse(committed.getCommitOpId().isEmpty());
    assertEquals(MigrationState.MIGRATION_RUNNING, committed.getState(), "not marked aborted by the failed replay");
    assertEquals(MigrationPhase.PHASE_STOP_AND_COPY, committed.getPhase(), "not marked aborted by the failed replay");
  }

  @Test
  void aCommitRecordedByAnotherOperationIsUnknownNeverRefused() throws Exception {
    ZkCutoverAuthority authority = authority().withCache(snapshot());
    // Another commit of this migration landed in between (not ours: another operation id).
    zk.setData().forPath(ZkPaths.vm(VM), Records.bytes(vm("host-b", 4)));
    updateMigration(m -> m.toBuilder().setCommitOpId("op-someone-else").build());

    Result result = authority.commit(ID);

    // Refused would let the source resume a guest the target may already run.
    assertEquals(Outcome.UNKNOWN, result.outcome(), result.reason());
    assertEquals("op-someone-else", readMigration().getCommitOpId());
    assertEquals(MigrationState.MIGRATION_RUNNING, readMigration().getState());
  }

  @Test
  void aCommitWhoseOutcomeCannotBeReadBackIsUnknown() throws Exception {
    CuratorFramework impatient = impatientClient();
    try {
      assertTrue(impatient.blockUntilConnected(10, TimeUnit.SECONDS));
      ZkCutoverAuthority authority = new ZkCutoverAuthority(impatient, "host-b", 0, READ_BACK_MILLIS)
          .withCache(snapshot());
      zk.close();
      zk = null;
      server.close(); // ZooKeeper goes away between the last read and the multi
      server = null;

      Result result = authority.commit(ID);

      assertEquals(Outcome.UNKNOWN, result.outcome(), result.reason());
      assertEquals(0, result.epoch());
    } finally {
      impatient.close();
    }
  }

  @Test
  void aMigrationToAnotherHostIsNotCommittedHere() throws Exception {
    Result result = new ZkCutoverAuthority(zk, "host-c", 0, READ_BACK_MILLIS).commit(ID);

    assertEquals(Outcome.REFUSED, result.outcome(), result.reason());
    assertEquals("host-a", readVm().getOwnerHost());
    assertTrue(readMigration().getCommitOpId().isEmpty());
  }

  @Test
  void aSourceThatHearsNothingFindsTheCommitTheTargetMade() throws Exception {
    assertEquals(Outcome.COMMITTED, authority().commit(ID).outcome());

    Result settled = source().settle(ID, "link lost");

    assertEquals(Outcome.COMMITTED, settled.outcome(), settled.reason());
    assertEquals(4, settled.epoch());
    assertEquals(MigrationPhase.PHASE_STOP_AND_COPY, readMigration().getPhase(), "nothing written");
  }

  @Test
  void aSettleBeforeTheCommitMakesTheCommitImpossible() throws Exception {
    // The target read the records (its cache) before the source gave up on it.
    ZkCutoverAuthority target = authority().withCache(snapshot());

    Result settled = source().settle(ID, "link lost");

    assertEquals(Outcome.REFUSED, settled.outcome(), settled.reason());
    MigrationRecord fenced = readMigration();
    assertEquals(MigrationPhase.PHASE_ABORTED, fenced.getPhase(), "the source's own field, version-checked");
    assertFalse(MigrationStates.sourceMayProceed(fenced));
    // The target's multi, late, with the versions it saw: it cannot land, and it re-reads the refusal.
    Result late = target.commit(ID);
    assertEquals(Outcome.REFUSED, late.outcome(), late.reason());
    assertEquals("host-a", readVm().getOwnerHost(), "the source, which resumes, still owns the VM");
    assertEquals(3, readVm().getEpoch());
    assertTrue(readMigration().getCommitOpId().isEmpty());
  }

  @Test
  void aSettleOfAMigrationTheCoordinatorEndedRefusesWithoutWriting() throws Exception {
    updateMigration(m -> m.toBuilder().setState(MigrationState.MIGRATION_ABORTED).build());
    Stat before = stat(ZkPaths.migration(ID));

    Result settled = source().settle(ID, "link lost");

    assertEquals(Outcome.REFUSED, settled.outcome(), settled.reason());
    assertEquals(before.getVersion(), stat(ZkPaths.migration(ID)).getVersion());
  }

  @Test
  void aSettleWithoutZooKeeperIsUnknown() throws Exception {
    CuratorFramework impatient = impatientClient();
    try {
      assertTrue(impatient.blockUntilConnected(10, TimeUnit.SECONDS));
      zk.close();
      zk = null;
      server.close();
      server = null;

      Result settled = new ZkCutoverAuthority(impatient, "host-a", 0, READ_BACK_MILLIS).settle(ID, "link lost");

      assertEquals(Outcome.UNKNOWN, settled.outcome(), settled.reason());
    } finally {
      impatient.close();
    }
  }

  /** A client that gives up quickly, so the test does not wait through Curator's retries. */
  private CuratorFramework impatientClient() {
    CuratorFramework impatient = CuratorFrameworkFactory.builder().connectString(server.connectString())
        .sessionTimeoutMs(4_000).connectionTimeoutMs(500).retryPolicy(new RetryNTimes(0, 0))
        .authorization("digest", CREDENTIALS.getBytes(java.nio.charset.StandardCharsets.UTF_8)).build();
    impatient.start();
    return impatient;
  }

  /** The target's authority (host-b). */
  private ZkCutoverAuthority authority() {
    return new ZkCutoverAuthority(zk, "host-b", 0, READ_BACK_MILLIS);
  }

  private ZkCutoverAuthority source() {
    return new ZkCutoverAuthority(zk, "host-a", 0, READ_BACK_MILLIS);
  }

  /** What a watch cache would hold now: both records with their stats, stale after the next write. */
  private ZkCutoverAuthority.Cached snapshot() throws Exception {
    java.util.Map<String, org.apache.curator.framework.recipes.cache.ChildData> seen = new java.util.HashMap<>();
    for (String path : java.util.List.of(ZkPaths.vm(VM), ZkPaths.migration(ID))) {
      Stat stat = new Stat();
      byte[] data = zk.getData().storingStatIn(stat).forPath(path);
      seen.put(path, new org.apache.curator.framework.recipes.cache.ChildData(path, stat, data));
    }
    return seen::get;
  }

  private static VmRecord vm(String owner, long epoch) {
    return VmRecord.newBuilder().setFormatVersion(Records.FORMAT)
        .setSpec(GuestSpec.newBuilder().setName(VM).setMemoryBytes(64L << 20).setVcpus(1))
        .setOwnerHost(owner).setEpoch(epoch).setDesiredPower(PowerState.POWER_RUNNING)
        .setPower(PowerState.POWER_RUNNING).setCurrentMigration(ID).build();
  }

  private static MigrationRecord migration(long vmEpoch) {
    return MigrationRecord.newBuilder().setFormatVersion(Records.FORMAT).setId(ID).setVm(VM)
        .setSourceHost("host-a").setTargetHost("host-b").setState(MigrationState.MIGRATION_RUNNING)
        .setPhase(MigrationPhase.PHASE_STOP_AND_COPY).setVmEpoch(vmEpoch).build();
  }

  private void updateMigration(UnaryOperator<MigrationRecord> change) throws Exception {
    zk.setData().forPath(ZkPaths.migration(ID), Records.bytes(change.apply(readMigration())));
  }

  private VmRecord readVm() throws Exception {
    return Records.vm(ZkPaths.vm(VM), zk.getData().forPath(ZkPaths.vm(VM)));
  }

  private MigrationRecord readMigration() throws Exception {
    return Records.migration(ZkPaths.migration(ID), zk.getData().forPath(ZkPaths.migration(ID)));
  }

  private Stat stat(String path) throws Exception {
    return zk.checkExists().forPath(path);
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }
}
