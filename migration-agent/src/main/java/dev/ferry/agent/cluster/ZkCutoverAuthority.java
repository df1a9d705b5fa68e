package dev.ferry.agent.cluster;

import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.cluster.model.MigrationStates;
import dev.ferry.cluster.model.Records;

import dev.ferry.engine.precopy.CutoverAuthority;
import dev.ferry.engine.precopy.MigrationFailpoints;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.VmRecord;
import java.util.UUID;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cutover as one ZooKeeper multi-op: check the migration record's and the VM record's
 * versions, move the VM to the target with its epoch + 1, and mark the migration committed with
 * this attempt's operation id, all or nothing.
 *
 * <p>Curator retries a multi after a connection loss, so a commit that landed can come back as
 * BADVERSION: every failure is therefore read back, and the operation id in the migration record
 * tells a landed commit from a refused one. A refusal is made permanent (the migration is marked
 * aborted, version-checked) before it is reported, so no late retry can commit after the source
 * resumed the guest. If nothing can be read back in time, the outcome is UNKNOWN and the guest
 * stays paused.
 */
public final class ZkCutoverAuthority implements CutoverAuthority {
  private static final Logger LOG = LoggerFactory.getLogger(ZkCutoverAuthority.class);
  /** Benign concurrent updates (progress, power reports) make a version check fail; retry this often. */
  private static final int ATTEMPTS_MAX = 8;
  private static final long READ_BACK_MILLIS_DEFAULT = 20_000;

  private final CuratorFramework zk;
  private final String sourceHost;
  /** Test fault injection (-Dferry.failpoint=commit-duplicate replays a landed commit); none in production. */
  private final MigrationFailpoints failpoints = MigrationFailpoints.fromSystemProperty();

  private final long expectedCostMillis;
  /** How long a read-back keeps trying before the outcome is UNKNOWN. */
  private final long readBackMillisMax;

  public ZkCutoverAuthority(CuratorFramework zk, String sourceHost) {
    this(zk, sourceHost, 0);
  }

  /** @param expectedCostMillis what the commit and the target's read-back are expected to take */
  public ZkCutoverAuthority(CuratorFramework zk, String sourceHost, long expectedCostMillis) {
    this(zk, sourceHost, expectedCostMillis, READ_BACK_MILLIS_DEFAULT);
  }

  /** @param readBackMillisMax how long to keep reading back an unclear outcome (tests shorten it) */
  ZkCutoverAuthority(CuratorFramework zk, String sourceHost, long expectedCostMillis, long readBackMillisMax) {
    this.zk = zk;
    this.sourceHost = sourceHost;
    this.expectedCostMillis = expectedCostMillis;
    this.readBackMillisMax = readBackMillisMax;
  }

  @Override
  public long expectedCostMillis() {
    return expectedCostMillis;
  }

  @Override
  public boolean authoritative() {
    return true;
  }

  /** The records as {@link #prepare} read them (with their versions), for the first commit attempt. */
  private record Prepared(String migrationId, MigrationRecord migration, Stat migrationStat, VmRecord vm, Stat vmStat) {}

  private volatile Prepared prepared;

  @Override
  public void prepare(String migrationId) throws InterruptedException {
    try {
      ZkSync.sync(zk, ZkPaths.migration(migrationId));
      Stat migrationStat = new Stat();
      Stat vmStat = new Stat();
      MigrationRecord m = Records.migration(ZkPaths.migration(migrationId),
          zk.getData().storingStatIn(migrationStat).forPath(ZkPaths.migration(migrationId)));
      VmRecord vm = Records.vm(ZkPaths.vm(m.getVm()), zk.getData().storingStatIn(vmStat).forPath(ZkPaths.vm(m.getVm())));
      prepared = new Prepared(migrationId, m, migrationStat, vm, vmStat);
    } catch (InterruptedException e) {
      throw e;
    } catch (Exception e) {
      prepared = null; // the commit reads for itself
    }
  }

  @Override
  public Result commit(String migrationId) throws InterruptedException {
    String opId = "op-" + UUID.randomUUID();
    long started = System.nanoTime();
    for (int attempt = 1; attempt <= ATTEMPTS_MAX; attempt++) {
      Stat migrationStat = new Stat();
      Stat vmStat = new Stat();
      MigrationRecord m;
      VmRecord vm;
      Prepared early = attempt == 1 ? prepared : null;
      try {
        if (early != null && early.migrationId().equals(migrationId)) {
          // Read just before the pause: the multi's version checks catch any change since, and
          // the read-back then decides. Inside the pause this leaves one round trip: the multi.
          m = early.migration();
          vm = early.vm();
          migrationStat = early.migrationStat();
          vmStat = early.vmStat();
        } else {
          ZkSync.sync(zk, ZkPaths.migration(migrationId));
          m = Records.migration(ZkPaths.migration(migrationId),
              zk.getData().storingStatIn(migrationStat).forPath(ZkPaths.migration(migrationId)));
          vm = Records.vm(ZkPaths.vm(m.getVm()), zk.getData().storingStatIn(vmStat).forPath(ZkPaths.vm(m.getVm())));
        }
      } catch (Exception e) {
        return permanent(migrationId, readBack(migrationId, opId, "reading the records before the commit failed: " + e),
            "reading the records before the commit failed: " + e);
      }
      Result precondition = checkPreconditions(m, vm);
      if (precondition != null) {
        return refuse(migrationId, precondition.reason());
      }
      long epoch = vm.getEpoch() + 1;
      VmRecord moved = vm.toBuilder().setOwnerHost(m.getTargetHost()).setEpoch(epoch).build();
      MigrationRecord committed = m.toBuilder().setCommitOpId(opId).setPhase(MigrationPhase.PHASE_CUTOVER).build();
      try {
        CuratorOp checkMigration = zk.transactionOp().check().withVersion(migrationStat.getVersion())
            .forPath(ZkPaths.migration(migrationId));
        CuratorOp checkVm = zk.transactionOp().check().withVersion(vmStat.getVersion()).forPath(ZkPaths.vm(m.getVm()));
        CuratorOp moveVm = zk.transactionOp().setData().withVersion(vmStat.getVersion())
            .forPath(ZkPaths.vm(m.getVm()), Records.bytes(moved));
        CuratorOp markMigration = zk.transactionOp().setData().withVersion(migrationStat.getVersion())
            .forPath(ZkPaths.migration(migrationId), Records.bytes(committed));
        zk.transaction().forOperations(checkMigration, checkVm, moveVm, markMigration);
        if (failpoints.isSet(MigrationFailpoints.Point.COMMIT_DUPLICATE)) {
          // What a retry after a lost connection does: the same multi again, now with stale versions.
          LOG.warn("fail point commit-duplicate: replaying the commit of {}", migrationId);
          zk.transaction().forOperations(checkMigration, checkVm, moveVm, markMigration);
        }
        LOG.info("migration {}: committed in ZooKeeper in {} us: {} now owned by {} at epoch {}", migrationId,
            (System.nanoTime() - started) / 1000, m.getVm(), m.getTargetHost(), epoch);
        return Result.committed(epoch);
      } catch (KeeperException.BadVersionException | KeeperException.NoNodeException e) {
        Result back = readBack(migrationId, opId, "the records changed during the commit");
        if (back.outcome() != Outcome.REFUSED || !back.reason().isEmpty()) {
          return back;
        }
        LOG.debug("migration {}: records changed under the commit (attempt {}), retrying", migrationId, attempt);
      } catch (InterruptedException e) {
        throw e;
      } catch (Exception e) {
        return permanent(migrationId, readBack(migrationId, opId, "the commit failed: " + e), "the commit failed: " + e);
      }
    }
    return refuse(migrationId, "the records kept changing during the commit (" + ATTEMPTS_MAX + " attempts)");
  }

  /**
   * A read-back that says "not landed, still open" after a failed multi is made final before the
   * source may resume: the record is marked aborted (version-checked), so the multi, should a
   * retry of it still be in flight, can no longer land.
   */
  private Result permanent(String migrationId, Result back, String why) throws InterruptedException {
    return back.outcome() == Outcome.REFUSED && back.reason().isEmpty() ? refuse(migrationId, why) : back;
  }

  /** Why the commit must not happen, or null if it may. */
  private Result checkPreconditions(MigrationRecord m, VmRecord vm) {
    if (m.getCancelRequested()) {
      return Result.refused("cancelled by the operator before the commit");
    }
    if (!MigrationStates.sourceMayProceed(m)) {
      return Result.refused("the migration is " + m.getState()
          + (m.getPhase() == MigrationPhase.PHASE_ABORTED ? " and refused" : "") + " in the cluster record");
    }
    if (!vm.getOwnerHost().equals(sourceHost) || vm.getEpoch() != m.getVmEpoch()) {
      return Result.refused("the VM " + vm.getSpec().getName() + " is owned by " + vm.getOwnerHost() + " at epoch "
          + vm.getEpoch() + ", not by " + sourceHost + " at epoch " + m.getVmEpoch());
    }
    return null;
  }

  /**
   * After a failed or unclear multi: the migration record says whether our operation landed.
   * Returns COMMITTED (it did), REFUSED with a reason (it did not and cannot), REFUSED without a
   * reason (it did not; the caller may retry), or UNKNOWN (nothing readable in time).
   */
  private Result readBack(String migrationId, String opId, String why) throws InterruptedException {
    long deadline = System.nanoTime() + readBackMillisMax * 1_000_000L;
    Exception last = null;
    while (System.nanoTime() < deadline) {
      try {
        ZkSync.sync(zk, ZkPaths.migration(migrationId));
        MigrationRecord m = Records.migration(ZkPaths.migration(migrationId),
            zk.getData().forPath(ZkPaths.migration(migrationId)));
        if (opId.equals(m.getCommitOpId())) {
          LOG.info("migration {}: the commit had landed ({}); recognised by its operation id", migrationId, why);
          VmRecord vm = Records.vm(ZkPaths.vm(m.getVm()), zk.getData().forPath(ZkPaths.vm(m.getVm())));
          return Result.committed(vm.getEpoch());
        }
        if (!m.getCommitOpId().isEmpty()) {
          return Result.unknown("another commit " + m.getCommitOpId() + " is recorded");
        }
        if (m.getCancelRequested() || !MigrationStates.sourceMayProceed(m)) {
          return refuse(migrationId, m.getCancelRequested() ? "cancelled by the operator before the commit"
              : "the migration is " + m.getState() + " in the cluster record");
        }
        return Result.refused(""); // not landed, still open: retry
      } catch (InterruptedException e) {
        throw e;
      } catch (Exception e) {
        last = e;
        Thread.sleep(100);
      }
    }
    return Result.unknown(why + "; and the migration record could not be read back: " + last);
  }

  /** Marks the migration aborting (version-checked) so nothing can commit it later, then refuses. */
  private Result refuse(String migrationId, String reason) throws InterruptedException {
    for (int attempt = 0; attempt < ATTEMPTS_MAX; attempt++) {
      try {
        Stat stat = new Stat();
        MigrationRecord m = Records.migration(ZkPaths.migration(migrationId),
            zk.getData().storingStatIn(stat).forPath(ZkPaths.migration(migrationId)));
        if (!m.getCommitOpId().isEmpty()) {
          return Result.unknown("a commit " + m.getCommitOpId() + " is recorded after all");
        }
        if (!MigrationStates.sourceMayProceed(m)) {
          return Result.refused(reason); // already closed or refused: nobody can commit it
        }
        // The source's own field: the version changes, so a commit still being retried cannot
        // land; the coordinator settles the state from the report the source writes next.
        zk.setData().withVersion(stat.getVersion()).forPath(ZkPaths.migration(migrationId), Records.bytes(
            m.toBuilder().setPhase(MigrationPhase.PHASE_ABORTED).build()));
        return Result.refused(reason);
      } catch (KeeperException.BadVersionException e) {
        // changed meanwhile: look again
      } catch (InterruptedException e) {
        throw e;
      } catch (Exception e) {
        return Result.unknown(reason + "; and the refusal could not be recorded: " + e);
      }
    }
    return Result.unknown(reason + "; and the refusal could not be recorded: the record kept changing");
  }
}
