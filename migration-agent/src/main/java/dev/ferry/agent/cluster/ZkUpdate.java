package dev.ferry.agent.cluster;

import java.util.Arrays;
import java.util.function.UnaryOperator;
import org.apache.curator.framework.CuratorFramework;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

/**
 * Versioned read-modify-write of one ZooKeeper node, read again and retried when someone else
 * wrote in between: the one loop the agents and the coordinator (whose writes go through its
 * fenced multi-op) use for their record updates.
 */
public final class ZkUpdate {
  /** Attempts before giving up on a node that keeps changing. */
  public static final int ATTEMPTS_MAX = 8;

  public enum Outcome { WRITTEN, UNCHANGED, GONE, KEPT_CHANGING }

  /** Writes {@code data} to {@code path} only if the node is still at {@code version}. */
  @FunctionalInterface
  public interface VersionedWrite {
    void write(String path, int version, byte[] data) throws Exception;
  }

  private ZkUpdate() {}

  /** The plain versioned write. */
  public static VersionedWrite setData(CuratorFramework zk) {
    return (path, version, data) -> zk.setData().withVersion(version).forPath(path, data);
  }

  /**
   * Reads {@code path}, applies {@code change} and writes the result with the version read;
   * KeeperException.BadVersionException means someone wrote in between, and it starts again.
   * Other failures propagate.
   */
  public static Outcome apply(CuratorFramework zk, String path, UnaryOperator<byte[]> change, VersionedWrite write)
      throws Exception {
    for (int attempt = 0; attempt < ATTEMPTS_MAX; attempt++) {
      Stat stat = new Stat();
      byte[] before;
      try {
        before = zk.getData().storingStatIn(stat).forPath(path);
      } catch (KeeperException.NoNodeException e) {
        return Outcome.GONE;
      }
      byte[] after = change.apply(before);
      if (Arrays.equals(before, after)) {
        return Outcome.UNCHANGED;
      }
      try {
        write.write(path, stat.getVersion(), after);
        return Outcome.WRITTEN;
      } catch (KeeperException.BadVersionException e) {
        // written meanwhile: read again
      } catch (KeeperException.NoNodeException e) {
        return Outcome.GONE;
      }
    }
    return Outcome.KEPT_CHANGING;
  }
}
