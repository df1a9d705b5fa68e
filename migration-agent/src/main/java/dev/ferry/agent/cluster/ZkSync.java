package dev.ferry.agent.cluster;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.curator.framework.CuratorFramework;

/** A blocking ZooKeeper sync: reads after it see every write the ensemble has committed. */
final class ZkSync {
  private static final long TIMEOUT_MILLIS = 10_000;

  private ZkSync() {}

  static void sync(CuratorFramework zk, String path) throws Exception {
    CountDownLatch done = new CountDownLatch(1);
    zk.sync().inBackground((client, event) -> done.countDown()).forPath(path);
    if (!done.await(TIMEOUT_MILLIS, TimeUnit.MILLISECONDS)) {
      throw new TimeoutException("ZooKeeper sync of " + path + " took more than " + TIMEOUT_MILLIS + " ms");
    }
  }
}
