package dev.ferry.agent.cli;

import dev.ferry.common.ExitCodes;

import dev.ferry.agent.Agent;
import dev.ferry.agent.AgentConfig;
import dev.ferry.engine.clock.Clock;
import dev.ferry.common.Addresses;
import dev.ferry.common.InvalidConfigException;
import dev.ferry.common.Sizes;
import dev.ferry.agent.transport.NettyTransport;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code ferry agent}: runs one host agent until SIGTERM or Ctrl-C. */
@Command(name = "agent",
    mixinStandardHelpOptions = true,
    description = {
        "Run the host agent of this host.",
        "",
        "The agent runs built-in guests and sends them to, or receives them from,",
        "other agents over its listen address. Runs until SIGTERM or Ctrl-C, then stops cleanly:",
        "outgoing migrations are cancelled (their guests keep running here until the agent exits).",
        "",
        "With --tls-dir (or --tls-cert, --tls-key and --tls-ca) its links to other agents are TLS 1.3,",
        "both sides authenticated by certificates of the cluster CA ('ferry ca'), each certificate",
        "naming its host; see --migration-encryption.",
        "",
        "With --zk it joins a cluster: it registers the host in ZooKeeper, runs the VMs the cluster",
        "assigns it and the migrations the coordinator admits; 'ferry guest' may then only list.",
        "Without --zk it stands alone and takes 'ferry guest' commands directly.",
        "",
        "Every option can also come from --config FILE as 'name = value' lines using the option",
        "names without dashes (host-id = h1); the command line wins."},
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {"0:Stopped cleanly.", "2:Invalid option or config file.", "1:Could not start (port in use...)."})
public final class AgentCommand implements Callable<Integer> {
  @Spec
  CommandSpec spec;

  @Option(names = "--config", paramLabel = "FILE", description = "Read settings from FILE.")
  Path config;

  @Option(names = "--host-id", paramLabel = "ID", description = "This host's name in the cluster (required), e.g. h1.")
  String hostId;

  @Option(names = "--listen", paramLabel = "HOST:PORT",
      description = "Address for agents and tools (default: ${DEFAULT-VALUE}).", defaultValue = "127.0.0.1:7700")
  String listen;

  @Option(names = "--datastore", paramLabel = "DIR", description = "Shared datastore directory (required; created if missing).")
  String datastore;

  @Option(names = "--transport", paramLabel = "KIND",
      description = "auto, io_uring, epoll or nio (default: ${DEFAULT-VALUE}: the best available).", defaultValue = "auto")
  String transport;

  @Option(names = "--memory-capacity", paramLabel = "SIZE",
      description = "Guest memory this host accepts in total (default: 80%% of physical memory).")
  String memoryCapacity;

  @Option(names = "--memory-pool", paramLabel = "SIZE",
      description = "Memory of departed guests kept, zeroed in the background, for the next ones "
          + "(default: a quarter of the capacity, at most 8 GiB; 0 disables).")
  String memoryPool;

  @Option(names = "--netty-allocator", paramLabel = "KIND",
      description = "pooled or adaptive (default: ${DEFAULT-VALUE}).", defaultValue = "pooled")
  String nettyAllocator;

  @picocli.CommandLine.Mixin
  ZkOptions zkOptions;

  @picocli.CommandLine.Mixin
  TlsOptions tlsOptions;

  @Option(names = "--cpu-model", paramLabel = "TEXT", description = "CPU model to report (default: from /proc/cpuinfo).")
  String cpuModel;

  @Option(names = {"--cpu-capacity", "--cores"}, paramLabel = "N",
      description = "This host's CPU capacity in cores, 1-4096 (default: the cores the OS shows). "
          + "One machine can stand in for bigger hosts: DRS reads a host's load against this.")
  String cores;

  @Option(names = "--load-interval", paramLabel = "SECONDS", defaultValue = "2",
      description = "How often the agent measures the host's and each VM's CPU use (vCPU threads' CPU time, "
          + "/proc/stat) and the VMs' dirty rates and reports them in the host record, 0.5-5 (default: ${DEFAULT-VALUE}).")
  String loadInterval;

  @Option(names = "--migrations-out-per-host", paramLabel = "N",
      description = "Concurrent migrations out of this host (the coordinator plans with its own option of this name; default: ${DEFAULT-VALUE}).", defaultValue = "2")
  String migrationsOutMax;

  @Option(names = "--migrations-in-per-host", paramLabel = "N",
      description = "Concurrent migrations into this host (the coordinator plans with its own option of this name; default: ${DEFAULT-VALUE}).", defaultValue = "2")
  String migrationsInMax;

  @Option(names = "--ha-timeout", paramLabel = "SECONDS",
      description = "The cluster's HA timeout; give every agent and coordinator the same (default: ${DEFAULT-VALUE}). "
          + "A host whose ZooKeeper session is gone and whose datastore heartbeat has stopped this long is dead and "
          + "its VMs restart elsewhere; so this agent powers its guests off by itself after half of it without "
          + "reaching ZooKeeper or the datastore.", defaultValue = "15")
  String haTimeout;

  @Override
  public Integer call() throws Exception {
    AgentConfig agentConfig;
    long haTimeoutMillis;
    try {
      if (config != null) {
        ConfigFile.apply(config, spec, spec.commandLine().getParseResult(), Set.of("config", "help", "version"));
      }
      agentConfig = toConfig();
      haTimeoutMillis = dev.ferry.agent.cluster.HaTimeout.parseMillis("ha-timeout", haTimeout);
    } catch (InvalidConfigException e) {
      spec.commandLine().getErr().println("ferry agent: " + e.getMessage());
      return ExitCodes.USAGE;
    }
    dev.ferry.agent.BlockingCheck.installIfAsked();
    Agent agent = new Agent(agentConfig, Clock.SYSTEM, haTimeoutMillis);
    try {
      agent.start();
    } catch (RuntimeException e) {
      spec.commandLine().getErr().println("ferry agent: " + e.getMessage());
      agent.close();
      return ExitCodes.FAILED;
    }
    Daemon.runUntilStopped(agent, "agent", spec.commandLine().getOut(), String.format("ferry agent %s ready on %s (transport %s)",
        agentConfig.hostId(), Addresses.format(agent.address()), agent.transportName()));
    return ExitCodes.OK;
  }

  private AgentConfig toConfig() {
    if (hostId == null) {
      throw new InvalidConfigException("host-id", "required (--host-id or host-id in the config file)");
    }
    if (datastore == null) {
      throw new InvalidConfigException("datastore", "required (--datastore or datastore in the config file)");
    }
    long capacity = memoryCapacity == null ? AgentConfig.defaultMemoryCapacityBytes()
        : Sizes.parseBytes("memory-capacity", memoryCapacity);
    long pool = memoryPool == null ? AgentConfig.defaultMemoryPoolBytes(capacity)
        : Sizes.parseBytes("memory-pool", memoryPool);
    dev.ferry.agent.cluster.ZkSettings zkSettings = zkOptions.settings();
    return new AgentConfig(hostId, Addresses.parse("listen", listen), Path.of(datastore),
        NettyTransport.Kind.parse(transport), capacity, parseInt("migrations-out-per-host", migrationsOutMax),
        parseInt("migrations-in-per-host", migrationsInMax), pool, NettyTransport.Allocator.parse(nettyAllocator),
        zkSettings, cpuModel != null ? cpuModel : AgentConfig.defaultCpuModel(),
        cores != null ? parseInt("cpu-capacity", cores) : Runtime.getRuntime().availableProcessors(), tlsOptions.load(),
        parseSeconds("load-interval", loadInterval));
  }

  /** Seconds, fractions allowed (0.5), as whole milliseconds. */
  public static long parseSeconds(String field, String text) {
    try {
      double seconds = Double.parseDouble(text.trim());
      if (!Double.isFinite(seconds)) {
        throw new NumberFormatException();
      }
      return Math.round(seconds * 1000);
    } catch (NumberFormatException e) {
      throw new InvalidConfigException(field, "'" + text + "' is not a number of seconds");
    }
  }

  public static int parseInt(String field, String text) {
    try {
      return Integer.parseInt(text.trim());
    } catch (NumberFormatException e) {
      throw new InvalidConfigException(field, "'" + text + "' is not a whole number");
    }
  }
}
