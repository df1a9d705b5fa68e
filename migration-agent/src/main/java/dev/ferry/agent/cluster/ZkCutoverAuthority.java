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
 * The cutover as one ZooKeeper multi-op, sent by the target agent once the last pages check out:
 * check the migration record's and the VM record's versions, move the VM to this host with its
 * epoch + 1, and mark the migration committed with this attempt's operation id, all or nothing.
 * The multi's answer is the target's proof: it resumes the guest on it, with no read after.
 *
 * <p>Curator retries a multi after a connection loss, so a commit that landed can come back as
 * BADVERSION: every failure is therefore read back, and the operation id in the migration record
 * tells a landed commit from a refused one. A multi that failed on a version can never land later
 * (its versions are gone); one whose outcome cannot be read back is UNKNOWN and the target keeps
 * the guest paused until the records decide.
 *
 * <p>The source's side is {@link #settle}: when it cannot hear the target, it looks at the record
 * and either finds the commit or marks the migration aborted with a version-checked write (its
 * own field, the phase), after which no multi read before that write can land, and one read after
 * it sees the refusal. Both sides write to one node under a version check, so exactly one wins.
 */
public final class ZkCutoverAuthority implements CutoverAuthority {
  private static final Logger LOG = LoggerFactory.getLogger(ZkCutoverAuthority.class);
  /** Benign concurrent updates (progress, power reports) make a version check fail; retry this often. */
  private static final int ATTEMPTS_MAX = 8;
  private static final long READ_BACK_MILLIS_DEFAULT = 20_000;

  private final CuratorFramework zk;
  /** The agent this authority works for: the target that commits, or the source that settles. */
  private final String hostId;
  /** Test fault injection (-Dferry.failpoint=commit-duplicate replays a landed commit); none in production. */
  private final MigrationFailpoints failpoints = MigrationFailpoints.fromSystemProperty();

  private final long expectedCostMillis;
  /** How long a read-back keeps trying before the outcome is UNKNOWN. */
  private final long readBackMillisMax;

  public ZkCutoverAuthority(CuratorFramework zk, String hostId) {
    this(zk, hostId, 0);
  }

  /** @param expectedCostMillis (source) what the target's commit is expected to add to the pause */
  public ZkCutoverAuthority(CuratorFramework zk, String hostId, long expectedCostMillis) {
    this(zk, hostId, expectedCostMillis, READ_BACK_MILLIS_DEFAULT);
  }

  /** @param readBackMillisMax how long to keep reading back an unclear outcome (tests shorten it) */
  ZkCutoverAuthority(CuratorFramework zk, String hostId, long expectedCostMillis, long readBackMillisMax) {
    this.zk = zk;
    this.hostId = hostId;
    this.expectedCostMillis = expectedCostMillis;
    this.readBackMillisMax = readBackMillisMax;
  }

  @Override
  public long expectedCostMillis() {
    return expectedCostMillis;
  }

  /**
   * Where the first commit attempt takes the records and their versions from without a round
   * trip: the agent's caches (what ZooKeeper applied and pushed to its watches). A stale entry only
   * costs a failed multi, a read-back and a second attempt with fresh reads.
   */
  @FunctionalInterface
  public interface Cached {
    /** The node's data and stat as last seen, or null. */
    org.apache.curator.framework.recipes.cache.ChildData get(String path);

    Cached NONE = path -> null;
  }

  private Cached cached = Cached.NONE;
  /** This commit's operation id, made before the pause (a secure random number may take its time). */
  private final String opId = "op-" + UUID.randomUUID();

  /** Target: take the first attempt's records from {@code cache}. */
  public ZkCutoverAuthority withCache(Cached cache) {
    this.cached = cache;
    return this;
  }

  /** The records of the first attempt from the cache, or null (then the commit reads them). */
  private record Seen(MigrationRecord migration, Stat migrationStat, VmRecord vm, Stat vmStat) {
    static Seen from(Cached cache, String migrationId) {
      var m = cache.get(ZkPaths.migration(migrationId));
      if (m == null || m.getStat() == null || m.getData() == null) {
        return null;
      }
      MigrationRecord migration = Records.migration(m.getPath(), m.getData());
      var vm = cache.get(ZkPaths.vm(migration.getVm()));
      if (vm == null || vm.getStat() == null || vm.getData() == null) {
        return null;
      }
      return new Seen(migration, m.getStat(), Records.vm(vm.getPath(), vm.getData()), vm.getStat());
    }
  }

  @Override
  public Result commit(String migrationId) throws InterruptedException {
    String opId = this.opId;
    long started = System.nanoTime();
    for (int attempt = 1; attempt <= ATTEMPTS_MAX; attempt++) {
      Stat migrationStat = new Stat();
      Stat vmStat = new Stat();
      MigrationRecord m;
      VmRecord vm;
      try {
        Seen early = attempt == 1 ? Seen.from(cached, migrationId) : null;
        if (early != null) {
          // As the watches last showed them: the multi's version checks catch any change since,
          // and the read-back then decides. Inside the pause this leaves one round trip: the multi.
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
      } catch (InterruptedException e) {
        throw e;
      } catch (Exception e) {
        // Nothing was sent: no commit of ours can land.
        return Result.refused("reading the records before the commit failed: " + e);
      }
      Result precondition = checkPreconditions(m, vm);
      if (precondition != null) {
        return precondition;
      }
      long epoch = vm.getEpoch() + 1;
      VmRecord moved = vm.toBuilder().setOwnerHost(hostId).setEpoch(epoch).build();
      // Only the committer's field: the phase stays the source's.
      MigrationRecord committed = m.toBuilder().setCommitOpId(opId).build();
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
        // Debug only: this runs inside the pause (the target logs the commit's time after the resume).
        LOG.debug("migration {}: committed in ZooKeeper in {} us: {} now owned by {} at epoch {}", migrationId,
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
        // A connection lost with the multi in flight: it may have landed, or land in a retry still
        // queued. Only the records can tell; until they do the guest stays paused.
        Result back = readBack(migrationId, opId, "the commit failed: " + e);
        return back.outcome() == Outcome.REFUSED && back.reason().isEmpty()
            ? Result.unknown("the commit failed (" + e + ") and the records do not show it yet") : back;
      }
    }
    return Result.refused("the records kept changing during the commit (" + ATTEMPTS_MAX + " attempts)");
  }

  /**
   * Source: the target's answer did not come. Finds the commit in the migration record, or makes
   * sure none can land any more (the phase marked aborted under a version check), or says unknown.
   */
  @Override
  public Result settle(String migrationId, String why) throws InterruptedException {
    long deadline = System.nanoTime() + readBackMillisMax * 1_000_000L;
    Exception last = null;
    while (System.nanoTime() < deadline) {
      try {
        ZkSync.sync(zk, ZkPaths.migration(migrationId));
        Stat stat = new Stat();
        MigrationRecord m = Records.migration(ZkPaths.migration(migrationId),
            zk.getData().storingStatIn(stat).forPath(ZkPaths.migration(migrationId)));
        if (!m.getCommitOpId().isEmpty()) {
          LOG.info("migration {}: {}; the commit is recorded ({})", migrationId, why, m.getCommitOpId());
          return Result.committed(m.getVmEpoch() + 1);
        }
        if (!MigrationStates.sourceMayProceed(m)) {
          // Closed or refused already: a commit's precondition fails, and its versions are stale.
          return Result.refused(why + "; the migration is " + m.getState()
              + (m.getPhase() == MigrationPhase.PHASE_ABORTED ? " and refused" : "") + " without a commit");
        }
        zk.setData().withVersion(stat.getVersion()).forPath(ZkPaths.migration(migrationId), Records.bytes(
            m.toBuilder().setPhase(MigrationPhase.PHASE_ABORTED).build()));
        return Result.refused(why + "; no commit is recorded and none can land now");
      } catch (KeeperException.BadVersionException e) {
        // changed meanwhile (perhaps by the commit): look again
      } catch (KeeperException.NoNodeException e) {
        return Result.refused(why + "; the migration record is gone, so no commit can land");
      } catch (InterruptedException e) {
        throw e;
      } catch (Exception e) {
        last = e;
        Thread.sleep(100);
      }
    }
    return Result.unknown(why + "; and the migration record could not be settled: " + last);
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
    if (!m.getTargetHost().equals(hostId)) {
      return Result.refused("the migration moves " + m.getVm() + " to " + m.getTargetHost() + ", not to " + hostId);
    }
    if (!vm.getOwnerHost().equals(m.getSourceHost()) || vm.getEpoch() != m.getVmEpoch()) {
      return Result.refused("the VM " + vm.getSpec().getName() + " is owned by " + vm.getOwnerHost() + " at epoch "
          + vm.getEpoch() + ", not by " + m.getSourceHost() + " at epoch " + m.getVmEpoch());
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
          return Result.refused(m.getCancelRequested() ? "cancelled by the operator before the commit"
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
}
