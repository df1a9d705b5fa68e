package dev.ferry.cluster.coordinator;

import dev.ferry.agent.cluster.ZkClients;
import dev.ferry.agent.cluster.ZkSettings;
import dev.ferry.cluster.model.ZkPaths;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.zookeeper.KeeperException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cluster's coordinator: one leads (a Curator leader latch), the others stand by. The leader
 * keeps the records true — admits queued migrations under the concurrency limits, aborts those
 * whose source went away, clears finished ones, marks hosts up and down — and serves the
 * operator API; every write it makes is fenced by its epoch ({@link Leadership}). Agents do the
 * moving; the coordinator never touches a guest.
 *
 * <p>This class only puts the pieces together: the record caches ({@link ClusterCaches}), the
 * leadership, the leader's round ({@link LeaderLoop}) and the operator's requests
 * ({@link OperatorRequests}).
 */
public final class Coordinator implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(Coordinator.class);

  private final String id;
  private final ZkSettings zkSettings;
  private final Planner.Limits limits;
  private final int eventsKept;
  private final LoadWindows loads;
  private final HaRestarts.Config ha;
  private CuratorFramework zk;
  private ClusterCaches caches;
  private Leadership leadership;
  private LeaderLoop loop;
  private volatile EventLog events;
  private volatile OperatorRequests requests;
  private volatile DrsRound drs;

  public Coordinator(String id, ZkSettings zkSettings, Planner.Limits limits) {
    this(id, zkSettings, Options.DEFAULT.withLimits(limits));
  }

  /**
   * What a coordinator is started with.
   *
   * @param eventsKept how many of the latest events the log keeps ({@link EventLog#checkKept})
   * @param loadWindow the agent reports each host's and VM's load window keeps (median over them)
   * @param haTimeoutMillis HA: hosts silent this long (no ZooKeeper session, no heartbeat on the
   *     datastore) are dead and their VMs restart elsewhere
   * @param datastore where the hosts' heartbeats are read; null: HA is off, as nothing could tell a
   *     host cut off from ZooKeeper from a dead one
   */
  public record Options(Planner.Limits limits, int eventsKept, int loadWindow, long haTimeoutMillis,
      java.nio.file.Path datastore) {
    public static final Options DEFAULT = new Options(Planner.Limits.DEFAULT, EventLog.KEPT_DEFAULT,
        LoadWindows.SIZE_DEFAULT, dev.ferry.agent.cluster.HaTimeout.SECONDS_DEFAULT * 1000L, null);

    public Options withLimits(Planner.Limits l) {
      return new Options(l, eventsKept, loadWindow, haTimeoutMillis, datastore);
    }

    public Options withEventsKept(int n) {
      return new Options(limits, n, loadWindow, haTimeoutMillis, datastore);
    }

    public Options withLoadWindow(int n) {
      return new Options(limits, eventsKept, n, haTimeoutMillis, datastore);
    }

    public Options withHa(long timeoutMillis, java.nio.file.Path dir) {
      return new Options(limits, eventsKept, loadWindow, timeoutMillis, dir);
    }
  }

  public Coordinator(String id, ZkSettings zkSettings, Options options) {
    Planner.Limits limits = options.limits();
    int eventsKept = options.eventsKept();
    int loadWindow = options.loadWindow();
    this.ha = options.datastore() == null ? null : new HaRestarts.Config(options.haTimeoutMillis(), options.datastore());
    this.id = id;
    this.zkSettings = zkSettings;
    this.limits = limits;
    this.eventsKept = EventLog.checkKept(eventsKept);
    this.loads = new LoadWindows(loadWindow);
  }

  /** Connects, joins the leader election and, while leading, serves; {@code apiUrl} is where its API listens. */
  public Coordinator start(String apiUrl) throws Exception {
    zk = ZkClients.start(zkSettings);
    if (!zk.blockUntilConnected(30, TimeUnit.SECONDS)) {
      zk.close();
      throw new IllegalStateException("cannot reach ZooKeeper at " + zkSettings.connect() + " within 30 s");
    }
    createParents();
    // Everything is wired before anything starts: the caches' first events and the leadership's
    // take-over wake a loop that exists.
    caches = new ClusterCaches(zk, id, this::wake, loads);
    leadership = new Leadership(zk, id, apiUrl, this::wake);
    FencedUpdates updates = new FencedUpdates(zk, leadership);
    EventLog log = new EventLog(zk, leadership, eventsKept);
    // One placement for vm create without --host and HA restarts: DRS's (rules, measured load, capacity).
    VmPlacement placement = new DrsPlacement(zk, caches, limits);
    HaRestarts haRestarts = ha == null ? null : new HaRestarts(zk, leadership, ha, placement, limits);
    if (haRestarts == null) {
      LOG.warn("coordinator {}: HA is off: without --datastore it cannot read the hosts' heartbeats", id);
    }
    DrsRound drsRound = new DrsRound(zk, caches, limits, updates, log, request -> requests().startMigration(request));
    loop = new LeaderLoop(id, limits, zk, caches, leadership, updates, log, haRestarts, drsRound);
    // An operator's request (settings, rules, maintenance, a new VM) also makes DRS plan again soon.
    requests = new OperatorRequests(id, apiUrl, zk, caches, leadership, updates, () -> {
      drsRound.soon();
      wake();
    }, log, haRestarts, placement);
    drs = drsRound;
    events = log;
    caches.start();
    leadership.start();
    loop.start();
    LOG.info("coordinator {} started (ZooKeeper {}, limits {}/{}/{}, API {})", id, zkSettings.connect(),
        limits.outPerHost(), limits.inPerHost(), limits.cluster(), apiUrl);
    return this;
  }

  private void createParents() throws Exception {
    for (String path : List.of(ZkPaths.HOSTS, ZkPaths.INVENTORY, ZkPaths.VMS, ZkPaths.MIGRATIONS, ZkPaths.COORDINATOR,
        ZkPaths.RETIRED, ZkPaths.EVENTS, ZkPaths.SETTINGS, ZkPaths.DRS, ZkPaths.RULES)) {
      try {
        zk.create().creatingParentsIfNeeded().forPath(path);
      } catch (KeeperException.NodeExistsException ignored) {
        // already there
      }
    }
  }

  private void wake() {
    LeaderLoop l = loop;
    if (l != null) {
      l.wake();
    }
  }

  public String id() {
    return id;
  }

  public boolean leading() {
    return leadership != null && leadership.leading();
  }

  /** Where the current leader serves the API (from the epoch record), or empty. */
  public String leaderUrl() {
    return caches == null ? "" : caches.leaderUrl();
  }

  public long epoch() {
    return leadership.epoch();
  }

  /** The records as the caches hold them now. */
  public ClusterView view() {
    return caches.view();
  }

  /** The event log: the leader appends to it, any coordinator reads it. */
  public EventLog events() throws Refused {
    EventLog e = events;
    if (e == null) {
      throw new Refused(503, "coordinator " + id + " is starting");
    }
    return e;
  }

  /** Up to {@code limit} events after {@code after} (negative: the last {@code limit}); leader or standby. */
  public dev.ferry.proto.EventList readEvents(long after, int limit) throws Exception {
    return events().read(after, limit);
  }

  /** The windowed load of hosts and VMs (median of the recent agent reports). */
  public LoadWindows.Snapshot loads() {
    return caches == null ? LoadWindows.Snapshot.EMPTY : caches.loads();
  }

  /** DRS's last run (the leader's; a standby has none). */
  public dev.ferry.proto.DrsStatus drsStatus() throws Refused {
    requests(); // a standby refuses, as for the other requests
    DrsRound d = drs;
    return d == null ? dev.ferry.proto.DrsStatus.getDefaultInstance() : d.status();
  }

  /** {@code ferry drs apply [ID...]}: the given recommendations of the last run (none: all of them). */
  public dev.ferry.proto.DrsApplyResult drsApply(java.util.List<String> ids) throws Refused {
    requests();
    DrsRound d = drs;
    if (d == null) {
      throw new Refused(503, "coordinator " + id + " is starting");
    }
    return d.apply(ids);
  }

  /** The operator's requests; until started, this coordinator refuses them as a standby does. */
  public OperatorRequests requests() throws Refused {
    OperatorRequests r = requests;
    if (r == null) {
      throw new Refused(503, "coordinator " + id + " is a standby");
    }
    return r;
  }

  @Override
  public void close() {
    if (loop != null) {
      loop.close();
    }
    if (leadership != null) {
      leadership.close();
    }
    if (caches != null) {
      caches.close();
    }
    if (zk != null) {
      zk.close();
    }
    LOG.info("coordinator {} stopped", id);
  }
}
