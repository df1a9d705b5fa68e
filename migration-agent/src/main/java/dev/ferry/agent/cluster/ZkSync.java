package dev.ferry.agent.cluster;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.curator.framework.CuratorFramework;

/** A blocking ZooKeeper sync: reads after it see every write the ensemble has committed. */
public final class ZkSync {
  private static final long TIMEOUT_MILLIS = 10_000;

  private ZkSync() {}

  public static void sync(CuratorFramework zk, String path) throws Exception {
    CountDownLatch done = new CountDownLatch(1);
    int[] result = {Integer.MIN_VALUE};
    zk.sync().inBackground((client, event) -> {
      result[0] = event.getResultCode();
      done.countDown();
    }).forPath(path);
    if (!done.await(TIMEOUT_MILLIS, TimeUnit.MILLISECONDS)) {
      throw new TimeoutException("ZooKeeper sync of " + path + " took more than " + TIMEOUT_MILLIS + " ms");
    }
    if (result[0] != org.apache.zookeeper.KeeperException.Code.OK.intValue()) {
      // A failed sync promises nothing: the next read could be stale.
      throw org.apache.zookeeper.KeeperException.create(org.apache.zookeeper.KeeperException.Code.get(result[0]), path);
    }
  }
}
