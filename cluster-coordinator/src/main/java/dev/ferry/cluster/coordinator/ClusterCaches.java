package dev.ferry.cluster.coordinator;

import dev.ferry.cluster.model.RecordException;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.proto.CoordinatorEpoch;
import dev.ferry.proto.HostInventory;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.MigrationRecord;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.function.BiFunction;
import java.util.function.Function;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The coordinator's copy of the cluster's records: one Curator cache per record kind, each change
 * reported to {@code onChange} (the leader's loop wakes up), read as a {@link ClusterView}.
 */
final class ClusterCaches implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(ClusterCaches.class);

  private final CuratorFramework zk;
  private final String id;
  private final Runnable onChange;
  /** Every host record seen feeds the load windows (each is one agent report). */
  private final LoadWindows loads;
  private CuratorCache hosts;
  private CuratorCache inventory;
  private CuratorCache vms;
  private CuratorCache migrations;
  private CuratorCache coordinatorNodes;
  /** One count per cache until it has loaded (hosts, inventory, VMs, migrations, coordinator). */
  private final CountDownLatch cachesLoading = new CountDownLatch(5);

  ClusterCaches(CuratorFramework zk, String id, Runnable onChange, LoadWindows loads) {
    this.zk = zk;
    this.id = id;
    this.onChange = onChange;
    this.loads = loads;
  }

  void start() {
    hosts = cache(ZkPaths.HOSTS);
    hosts.listenable().addListener(CuratorCacheListener.builder().forCreatesAndChanges((before, after) -> {
      if (after.getData() != null && after.getData().length > 0 && !after.getPath().equals(ZkPaths.HOSTS)) {
        try {
          loads.record(Records.host(after.getPath(), after.getData()));
        } catch (RecordException e) {
          LOG.warn("coordinator {}: ignoring the load report in {}", id, e.getMessage());
        }
      }
    }).build());
    inventory = cache(ZkPaths.INVENTORY);
    vms = cache(ZkPaths.VMS);
    migrations = cache(ZkPaths.MIGRATIONS);
    coordinatorNodes = cache(ZkPaths.COORDINATOR);
  }

  private CuratorCache cache(String path) {
    CuratorCache cache = CuratorCache.build(zk, path);
    cache.listenable().addListener(CuratorCacheListener.builder()
        .forAll((type, before, after) -> onChange.run())
        .forInitialized(() -> {
          cachesLoading.countDown();
          onChange.run();
        }).build());
    cache.start();
    return cache;
  }

  /** True once every cache holds ZooKeeper's records: before that a view would be partial. */
  boolean loaded() {
    return cachesLoading.getCount() == 0;
  }

  /** Where the current leader serves the API (from the epoch record), or empty. */
  /**
   * Where the leader serves the API: from the cache, or, when the cache does not show a leader
   * yet (a standby that has just started, or a leader elected a moment ago), read from ZooKeeper
   * after a sync, so a standby's 503 always names the leader if there is one. Callers are API
   * workers and the leader loop, never an event loop.
   */
  String leaderUrl() {
    String cached = cachedLeaderUrl();
    if (!cached.isEmpty()) {
      return cached;
    }
    try {
      dev.ferry.agent.cluster.ZkSync.sync(zk, ZkPaths.COORDINATOR_EPOCH);
      byte[] data = zk.getData().forPath(ZkPaths.COORDINATOR_EPOCH);
      return data == null || data.length == 0 ? "" : Records.epoch(ZkPaths.COORDINATOR_EPOCH, data).getApiUrl();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "";
    } catch (Exception e) {
      return ""; // no leader known (no epoch node yet, or ZooKeeper unreachable)
    }
  }

  private String cachedLeaderUrl() {
    if (coordinatorNodes == null) {
      return "";
    }
    return coordinatorNodes.get(ZkPaths.COORDINATOR_EPOCH)
        .map(d -> {
          try {
            CoordinatorEpoch e = Records.epoch(d.getPath(), d.getData());
            return e.getApiUrl();
          } catch (RecordException ex) {
            return "";
          }
        }).orElse("");
  }

  /** The load windows (median of the recent reports per host and VM) as they are now. */
  LoadWindows.Snapshot loads() {
    return loads.snapshot(System.currentTimeMillis());
  }

  /** The records as the caches hold them now. */
  ClusterView view() {
    return new ClusterView(read(hosts, ZkPaths.HOSTS, Records::host, HostRecord::getHostId),
        read(inventory, ZkPaths.INVENTORY, Records::inventory, HostInventory::getHostId),
        read(vms, ZkPaths.VMS, Records::vm, v -> v.getSpec().getName()),
        read(migrations, ZkPaths.MIGRATIONS, Records::migration, MigrationRecord::getId),
        System.currentTimeMillis());
  }

  private <T> Map<String, T> read(CuratorCache cache, String parent, BiFunction<String, byte[], T> parse,
      Function<T, String> key) {
    Map<String, T> out = new HashMap<>();
    cache.stream().filter(d -> !d.getPath().equals(parent) && d.getData() != null && d.getData().length > 0)
        .forEach(d -> {
          try {
            T record = parse.apply(d.getPath(), d.getData());
            out.put(key.apply(record), record);
          } catch (RecordException e) {
            LOG.warn("coordinator {}: ignoring {}", id, e.getMessage());
          }
        });
    return out;
  }

  @Override
  public void close() {
    for (CuratorCache c : new CuratorCache[] {hosts, inventory, vms, migrations, coordinatorNodes}) {
      if (c != null) {
        c.close();
      }
    }
  }
}
