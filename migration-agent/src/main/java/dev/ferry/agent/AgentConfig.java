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
 * @param cpuCores the cores it reports
 * @param tls encryption of the links to other agents (and from tools)
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
    dev.ferry.agent.transport.MigrationTls tls) {

  private static final Pattern HOST_ID = Pattern.compile("[a-z0-9][a-z0-9-]{0,62}");
  public static final int MIGRATIONS_PER_DIRECTION_DEFAULT = 2;

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
    InvalidConfigException.requireRange("cores", cpuCores, 1, 4096);
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
        defaultCpuModel(), Runtime.getRuntime().availableProcessors(), dev.ferry.agent.transport.MigrationTls.OFF);
  }

  /** This config joined to a cluster. */
  public AgentConfig withZk(dev.ferry.agent.cluster.ZkSettings settings) {
    return new AgentConfig(hostId, listen, datastore, transport, memoryCapacityBytes, migrationsOutMax,
        migrationsInMax, memoryPoolBytes, allocator, settings, cpuModel, cpuCores, tls);
  }

  /** This config with links encrypted as {@code settings} says. */
  public AgentConfig withTls(dev.ferry.agent.transport.MigrationTls settings) {
    return new AgentConfig(hostId, listen, datastore, transport, memoryCapacityBytes, migrationsOutMax,
        migrationsInMax, memoryPoolBytes, allocator, zk, cpuModel, cpuCores, settings);
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
