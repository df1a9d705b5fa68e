package dev.ferry.agent.cluster;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.ACLProvider;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.data.ACL;

/**
 * The one way Ferry's daemons connect to ZooKeeper: digest-authenticated, every node they create
 * readable and writable only by that identity (an unauthenticated client cannot read a secret or
 * rewrite ownership), retries with exponential back-off.
 */
public final class ZkClients {
  private static final int RETRY_BASE_MILLIS = 100;
  private static final int RETRIES_MAX = 5;
  private static final int CONNECT_TIMEOUT_MILLIS = 5_000;

  private ZkClients() {}

  /** A started client. */
  public static CuratorFramework start(ZkSettings settings) {
    CuratorFramework client = CuratorFrameworkFactory.builder()
        .connectString(settings.connect())
        .sessionTimeoutMs(settings.sessionTimeoutMillis())
        .connectionTimeoutMs(CONNECT_TIMEOUT_MILLIS)
        .retryPolicy(new ExponentialBackoffRetry(RETRY_BASE_MILLIS, RETRIES_MAX))
        .authorization("digest", settings.credentials().getBytes(StandardCharsets.UTF_8))
        .aclProvider(new ACLProvider() {
          @Override
          public List<ACL> getDefaultAcl() {
            return ZooDefs.Ids.CREATOR_ALL_ACL;
          }

          @Override
          public List<ACL> getAclForPath(String path) {
            return ZooDefs.Ids.CREATOR_ALL_ACL;
          }
        })
        .build();
    client.start();
    return client;
  }
}
