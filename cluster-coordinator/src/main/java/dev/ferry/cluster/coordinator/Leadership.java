package dev.ferry.cluster.coordinator;

import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.proto.CoordinatorEpoch;
import java.util.List;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.data.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Coordinator leadership and fencing. A Curator {@link LeaderLatch} picks the leader among the
 * running coordinators; the new leader increments the coordinator epoch in ZooKeeper, and every
 * write it makes afterwards is a multi-op that first checks the epoch node is still at the
 * version it wrote. A deposed or partitioned leader's writes therefore fail instead of landing;
 * on SUSPENDED it stops acting at once (Curator's advice: assume the lock is gone).
 */
final class Leadership implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Leadership.class);

  /**
   * The leader's fencing token: the epoch and the epoch node's version its writes check; and the
   * coordinator that led before it (empty if none), for the event that says who took over.
   */
  record Fence(long epoch, int version, String previousLeader) {}

  /** A fenced write failed because a newer leader exists. */
  static final class DeposedException extends Refused {
    private static final long serialVersionUID = 1L;

    DeposedException(String message) {
      super(503, message);
    }
  }

  private final CuratorFramework zk;
  private final String id;
  private final String apiUrl;
  private final Runnable onLeading;
  private final LeaderLatch latch;
  private volatile Fence fence;

  Leadership(CuratorFramework zk, String id, String apiUrl, Runnable onLeading) {
    this.zk = zk;
    this.id = id;
    this.apiUrl = apiUrl;
    this.onLeading = onLeading;
    this.latch = new LeaderLatch(zk, ZkPaths.COORDINATOR_LEADER, id);
  }

  void start() throws Exception {
    latch.addListener(new LeaderLatchListener() {
      @Override
      public void isLeader() {
        takeOver();
      }

      @Override
      public void notLeader() {
        stepDown("another coordinator leads");
      }
    });
    zk.getConnectionStateListenable().addListener((client, state) -> {
      if (state == ConnectionState.SUSPENDED || state == ConnectionState.LOST) {
        stepDown("ZooKeeper connection " + state.name().toLowerCase());
      } else if (state == ConnectionState.RECONNECTED && latch.hasLeadership()) {
        takeOver();
      }
    });
    latch.start();
  }

  /** Becomes the acting leader: a new epoch, recorded with where this leader serves its API. */
  private synchronized void takeOver() {
    try {
      for (int attempt = 0; attempt < 10; attempt++) {
        Stat stat = new Stat();
        CoordinatorEpoch current;
        try {
          current = Records.epoch(ZkPaths.COORDINATOR_EPOCH,
              zk.getData().storingStatIn(stat).forPath(ZkPaths.COORDINATOR_EPOCH));
        } catch (KeeperException.NoNodeException e) {
          try {
            zk.create().creatingParentsIfNeeded().forPath(ZkPaths.COORDINATOR_EPOCH, Records.bytes(
                CoordinatorEpoch.newBuilder().setFormatVersion(Records.FORMAT).setEpoch(0).build()));
          } catch (KeeperException.NodeExistsException ignored) {
            // another coordinator created it first
          }
          continue;
        }
        CoordinatorEpoch next = CoordinatorEpoch.newBuilder().setFormatVersion(Records.FORMAT)
            .setEpoch(current.getEpoch() + 1).setLeaderId(id).setApiUrl(apiUrl).setSinceMs(System.currentTimeMillis())
            .build();
        try {
          Stat written = zk.setData().withVersion(stat.getVersion()).forPath(ZkPaths.COORDINATOR_EPOCH,
              Records.bytes(next));
          fence = new Fence(next.getEpoch(), written.getVersion(), current.getLeaderId());
          LOG.info("coordinator {} leads the cluster (epoch {})", id, next.getEpoch());
          onLeading.run();
          return;
        } catch (KeeperException.BadVersionException e) {
          // someone else bumped it: read again
        }
      }
      LOG.warn("coordinator {} could not take the epoch", id);
    } catch (Exception e) {
      LOG.warn("coordinator {} could not take over: {}", id, e.toString());
    }
  }

  private void stepDown(String why) {
    if (fence != null) {
      LOG.warn("coordinator {} stops acting as leader: {}", id, why);
    }
    fence = null;
  }

  /** The current fence, or null if this coordinator must not write. */
  Fence fence() {
    return latch.hasLeadership() ? fence : null;
  }

  boolean leading() {
    return fence() != null;
  }

  /** Runs {@code ops} as one multi-op guarded by the fence; throws {@link DeposedException} if fenced out. */
  List<org.apache.curator.framework.api.transaction.CuratorTransactionResult> write(List<CuratorOp> ops)
      throws Exception {
    Fence f = fence();
    if (f == null) {
      throw new DeposedException("coordinator " + id + " is not the leader");
    }
    CuratorOp check = zk.transactionOp().check().withVersion(f.version()).forPath(ZkPaths.COORDINATOR_EPOCH);
    List<CuratorOp> all = new java.util.ArrayList<>(ops.size() + 1);
    all.add(check);
    all.addAll(ops);
    try {
      return zk.transaction().forOperations(all);
    } catch (KeeperException e) {
      List<OpResult> results = e.getResults();
      if (results != null && !results.isEmpty() && results.get(0) instanceof OpResult.ErrorResult error
          && error.getErr() != KeeperException.Code.OK.intValue()
          && error.getErr() != KeeperException.Code.RUNTIMEINCONSISTENCY.intValue()) {
        stepDown("a newer coordinator epoch exists");
        throw new DeposedException("coordinator " + id + " was fenced out: a newer leader exists");
      }
      throw e;
    }
  }

  long epoch() {
    Fence f = fence;
    return f == null ? 0 : f.epoch();
  }

  @Override
  public void close() {
    fence = null;
    try {
      latch.close();
    } catch (Exception e) {
      LOG.debug("closing the leader latch: {}", e.toString());
    }
  }
}
