package dev.ferry.agent;

import dev.ferry.common.InvalidConfigException;
import dev.ferry.agent.transport.NettyTransport;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * One agent's settings, validated. Each comes from a CLI option or the same key in the config
 * file ({@code --config}); see {@code ferry agent --help}.
 *
 * @param hostId this host's name in the cluster
 * @param listen where agents and tools reach this one (127.0.0.1 by default)
 * @param datastore the shared datastore directory (created if missing)
 * @param transport io_uring, epoll, nio, or auto
 * @param memoryCapacityBytes guest memory this host accepts in total
 * @param migrationsOutMax concurrent outgoing migrations
 * @param migrationsInMax concurrent incoming migrations
 * @param memoryPoolBytes memory of departed guests kept, zeroed, for the next ones (0: none)
 * @param allocator Netty's buffer allocator
 * @param zk the cluster's ZooKeeper (null: a stand-alone agent driven by hand)
 * @param cpuModel what this host reports as its CPU model (migrations check compatibility)
 * @param cpuCores its CPU capacity in cores, as reported (--cpu-capacity; default: the cores the OS shows)
 * @param tls encryption of the links to other agents (and from tools)
 * @param loadIntervalMillis how often it reports the measured load in its host record (--load-interval)
 */
public record AgentConfig(
    String hostId,
    InetSocketAddress listen,
    Path datastore,
    NettyTransport.Kind transport,
    long memoryCapacityBytes,
    int migrationsOutMax,
    int migrationsInMax,
    long memoryPoolBytes,
    NettyTransport.Allocator allocator,
    dev.ferry.agent.cluster.ZkSettings zk,
    String cpuModel,
    int cpuCores,
    dev.ferry.agent.transport.MigrationTls tls,
    long loadIntervalMillis) {

  private static final Pattern HOST_ID = Pattern.compile("[a-z0-9][a-z0-9-]{0,62}");
  public static final int MIGRATIONS_PER_DIRECTION_DEFAULT = 2;
  public static final int CPU_CAPACITY_MAX = 4096;
  /**
   * The load report is also the host's heartbeat, which the coordinator calls stale after 6 s:
   * reports come at least every 5 s. At most twice a second keeps ZooKeeper's write load small.
   */
  public static final long LOAD_INTERVAL_MILLIS_MIN = 500;
  public static final long LOAD_INTERVAL_MILLIS_MAX = 5_000;

  public AgentConfig {
    if (hostId == null || !HOST_ID.matcher(hostId).matches()) {
      throw new InvalidConfigException("host-id",
          "'" + hostId + "' must be 1-63 lower-case letters, digits or '-', starting with a letter or digit");
    }
    if (listen == null) {
      throw new InvalidConfigException("listen", "missing");
    }
    if (zk == null && (listen.getAddress() == null || !listen.getAddress().isLoopbackAddress())) {
      // Without a cluster nothing authenticates an admin command or a migration's source.
      throw new InvalidConfigException("listen", "--listen " + listen.getHostString() + ":" + listen.getPort()
          + " is not a loopback address: an agent without --zk is for development and listens on loopback only"
          + " (127.0.0.1 or ::1); join a cluster with --zk to listen elsewhere");
    }
    if (datastore == null) {
      throw new InvalidConfigException("datastore", "missing");
    }
    if (Files.exists(datastore) && !Files.isDirectory(datastore)) {
      throw new InvalidConfigException("datastore", datastore + " exists and is not a directory");
    }
    InvalidConfigException.requireRange("memory-capacity", memoryCapacityBytes, 16L << 20, 1L << 50);
    InvalidConfigException.requireRange("migrations-out-per-host", migrationsOutMax, 1, 64);
    InvalidConfigException.requireRange("migrations-in-per-host", migrationsInMax, 1, 64);
    InvalidConfigException.requireRange("memory-pool", memoryPoolBytes, 0, memoryCapacityBytes);
    if (allocator == null) {
      throw new InvalidConfigException("netty-allocator", "missing");
    }
    if (cpuModel == null || cpuModel.isBlank() || cpuModel.length() > 200) {
      throw new InvalidConfigException("cpu-model", "must be 1-200 characters");
    }
    InvalidConfigException.requireRange("cpu-capacity", cpuCores, 1, CPU_CAPACITY_MAX);
    if (loadIntervalMillis < LOAD_INTERVAL_MILLIS_MIN || loadIntervalMillis > LOAD_INTERVAL_MILLIS_MAX) {
      throw new InvalidConfigException("load-interval", "must be between " + LOAD_INTERVAL_MILLIS_MIN / 1000.0
          + " and " + LOAD_INTERVAL_MILLIS_MAX / 1000 + " seconds, got " + loadIntervalMillis / 1000.0);
    }
    if (tls == null) {
      throw new InvalidConfigException("migration-encryption", "missing");
    }
    if (tls.enabled() && !hostId.equals(tls.localHostId())) {
      throw new InvalidConfigException("tls-cert", "the certificate is for host " + tls.localHostId()
          + ", but this agent is " + hostId);
    }
  }

  /** A config with the defaults for pool and allocator. */
  public static AgentConfig of(String hostId, InetSocketAddress listen, Path datastore, NettyTransport.Kind transport,
      long memoryCapacityBytes, int migrationsOutMax, int migrationsInMax) {
    return new AgentConfig(hostId, listen, datastore, transport, memoryCapacityBytes, migrationsOutMax,
        migrationsInMax, defaultMemoryPoolBytes(memoryCapacityBytes), NettyTransport.Allocator.POOLED, null,
        defaultCpuModel(), Runtime.getRuntime().availableProcessors(), dev.ferry.agent.transport.MigrationTls.OFF,
        dev.ferry.agent.cluster.ClusterMember.LOAD_INTERVAL_MILLIS_DEFAULT);
  }

  /** This config joined to a cluster. */
  public AgentConfig withZk(dev.ferry.agent.cluster.ZkSettings settings) {
    return new AgentConfig(hostId, listen, datastore, transport, memoryCapacityBytes, migrationsOutMax,
        migrationsInMax, memoryPoolBytes, allocator, settings, cpuModel, cpuCores, tls, loadIntervalMillis);
  }

  /** This config with links encrypted as {@code settings} says. */
  public AgentConfig withTls(dev.ferry.agent.transport.MigrationTls settings) {
    return new AgentConfig(hostId, listen, datastore, transport, memoryCapacityBytes, migrationsOutMax,
        migrationsInMax, memoryPoolBytes, allocator, zk, cpuModel, cpuCores, settings, loadIntervalMillis);
  }

  /** This config reporting {@code cores} of CPU capacity every {@code loadIntervalMillis}. */
  public AgentConfig withCpu(int cores, long loadIntervalMillis) {
    return new AgentConfig(hostId, listen, datastore, transport, memoryCapacityBytes, migrationsOutMax,
        migrationsInMax, memoryPoolBytes, allocator, zk, cpuModel, cores, tls, loadIntervalMillis);
  }

  /** The "model name" line of /proc/cpuinfo, or the JVM's architecture. */
  public static String defaultCpuModel() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        if (line.startsWith("model name")) {
          return line.substring(line.indexOf(':') + 1).trim();
        }
      }
    } catch (java.io.IOException | RuntimeException ignored) {
      // not Linux, or not readable: fall back
    }
    return System.getProperty("os.arch", "unknown");
  }

  /** A quarter of the capacity, at most 8 GiB. */
  public static long defaultMemoryPoolBytes(long memoryCapacityBytes) {
    return Math.min(memoryCapacityBytes / 4, 8L << 30);
  }

  /** 80 % of this machine's physical memory. */
  public static long defaultMemoryCapacityBytes() {
    java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
    if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
      return sun.getTotalMemorySize() / 10 * 8;
    }
    return 8L << 30;
  }
}
