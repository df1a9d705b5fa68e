package dev.ferry.daemons;

import dev.ferry.agent.cli.AgentCommand;
import dev.ferry.agent.cli.ConfigFile;
import dev.ferry.agent.cli.Daemon;
import dev.ferry.agent.cli.ZkOptions;
import dev.ferry.common.ExitCodes;
import dev.ferry.agent.cluster.EmbeddedZooKeeper;
import dev.ferry.agent.cluster.ZkSettings;
import dev.ferry.common.Addresses;
import dev.ferry.common.InvalidConfigException;
import dev.ferry.cluster.api.ApiServer;
import dev.ferry.cluster.coordinator.Coordinator;
import dev.ferry.cluster.coordinator.Planner;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code ferry coordinator}: runs one coordinator (leader or standby) until SIGTERM or Ctrl-C. */
@Command(name = "coordinator",
    mixinStandardHelpOptions = true,
    description = {
        "Run a cluster coordinator (one leads, others stand by).",
        "",
        "Several may run; one leads (ZooKeeper leader election), the others stand by and answer",
        "the API with 503 and the leader's URL. The leader admits migrations under the",
        "concurrency limits, tracks hosts, and serves the operator API (HTTP/JSON, bearer token)",
        "on --listen.",
        "",
        "With --datastore it runs HA: a host silent for --ha-timeout (ZooKeeper session gone and",
        "datastore heartbeat unchanged) is dead, and its running VMs restart on other hosts from",
        "their disks, high priority first ('ferry vm create --ha-priority'); 'ferry ha config'",
        "sets how many host failures admission control keeps memory for.",
        "",
        "Every option can also come from --config FILE as 'name = value' lines using the option",
        "names without dashes (zk = 127.0.0.1:2181); the command line wins."},
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {"0:Stopped cleanly.", "1:Could not start (ZooKeeper unreachable, port in use...).",
        "2:Invalid option or config file."})
public final class CoordinatorCommand implements Callable<Integer> {

  @Spec
  CommandSpec spec;

  @Option(names = "--config", paramLabel = "FILE", description = "Read settings from FILE.")
  Path config;

  @picocli.CommandLine.Mixin
  ZkOptions zkOptions;

  /** The coordinator asks agents for a guest's status (--verify): over TLS when the agents require it. */
  @picocli.CommandLine.Mixin
  dev.ferry.agent.cli.TlsOptions tlsOptions;

  @Option(names = "--embedded-zk-data", paramLabel = "DIR",
      description = "Also run a single ZooKeeper server inside this process, on the --zk address (which must be "
          + "127.0.0.1:PORT), keeping its data in DIR: a one-machine cluster without a separate ZooKeeper.")
  String embeddedZkData;

  @Option(names = "--listen", paramLabel = "HOST:PORT",
      description = "Address of the operator API (default: ${DEFAULT-VALUE}).", defaultValue = "127.0.0.1:7600")
  String listen;

  @Option(names = "--token-file", paramLabel = "FILE",
      description = "The API's bearer token, first line of FILE, at least 16 characters (required).")
  String tokenFile;

  @Option(names = "--id", paramLabel = "ID", description = "This coordinator's name (default: coordinator-PID).")
  String id;

  @Option(names = "--migrations-out-per-host", paramLabel = "N",
      description = "Concurrent migrations out of one host (default: ${DEFAULT-VALUE}).", defaultValue = "2")
  String outPerHost;

  @Option(names = "--migrations-in-per-host", paramLabel = "N",
      description = "Concurrent migrations into one host (default: ${DEFAULT-VALUE}).", defaultValue = "2")
  String inPerHost;

  @Option(names = "--migrations-cluster", paramLabel = "N",
      description = "Concurrent migrations in the cluster (default: ${DEFAULT-VALUE}).", defaultValue = "8")
  String cluster;

  @Option(names = "--events-kept", paramLabel = "N",
      description = "Events the cluster's event log keeps in ZooKeeper, the latest; older ones are deleted "
          + "(10 to 10000, default: ${DEFAULT-VALUE}). 'ferry events' reads them.", defaultValue = "1000")
  String eventsKept;

  @Option(names = "--load-window", paramLabel = "N", defaultValue = "5",
      description = "Agent load reports (host CPU, each VM's CPU and dirty rate) the coordinator keeps per host "
          + "and VM; it uses their median, so one spike moves nothing. 1-60; reports older than 30 s never count "
          + "(default: ${DEFAULT-VALUE}, ~10 s at the agents' default --load-interval).")
  String loadWindow;

  @Option(names = "--ha-timeout", paramLabel = "SECONDS",
      description = "HA: a host whose ZooKeeper session is gone and whose datastore heartbeat has not changed for "
          + "this long is dead, and its VMs restart on other hosts by priority (default: ${DEFAULT-VALUE}; give the "
          + "agents the same).", defaultValue = "15")
  String haTimeout;

  @Option(names = "--datastore", paramLabel = "DIR",
      description = "The datastore the agents share, read for their heartbeats; HA is off without it.")
  String datastore;

  @Override
  public Integer call() throws Exception {
    var err = spec.commandLine().getErr();
    ZkSettings zkSettings;
    InetSocketAddress listenAddress;
    String token;
    Planner.Limits limits;
    int events;
    int window;
    long haTimeoutMillis;
    dev.ferry.agent.transport.MigrationTls tls;
    try {
      if (config != null) {
        ConfigFile.apply(config, spec, spec.commandLine().getParseResult(), Set.of("config", "help", "version"));
      }
      if (zkOptions.connect() == null) {
        throw new InvalidConfigException("zk", "required (--zk or zk in the config file)");
      }
      if (tokenFile == null) {
        throw new InvalidConfigException("token-file", "required: the API refuses requests without its token");
      }
      zkSettings = zkOptions.settings();
      tls = tlsOptions.load();
      listenAddress = Addresses.parse("listen", listen);
      haTimeoutMillis = dev.ferry.agent.cluster.HaTimeout.parseMillis("ha-timeout", haTimeout);
      if (datastore != null && !Files.isDirectory(Path.of(datastore))) {
        throw new InvalidConfigException("datastore", datastore + " is not a directory");
      }
      token = dev.ferry.common.Tokens.read(Path.of(tokenFile));
      try {
        limits = new Planner.Limits(AgentCommand.parseInt("migrations-out-per-host", outPerHost),
            AgentCommand.parseInt("migrations-in-per-host", inPerHost),
            AgentCommand.parseInt("migrations-cluster", cluster));
      } catch (IllegalArgumentException e) {
        throw new InvalidConfigException("migrations-*", e.getMessage());
      }
      events = AgentCommand.parseInt("events-kept", eventsKept);
      InvalidConfigException.requireRange("events-kept", events, dev.ferry.cluster.coordinator.EventLog.KEPT_MIN,
          dev.ferry.cluster.coordinator.EventLog.KEPT_MAX);
      window = (int) InvalidConfigException.requireRange("load-window", AgentCommand.parseInt("load-window", loadWindow),
          1, dev.ferry.cluster.coordinator.LoadWindows.SIZE_MAX);
    } catch (InvalidConfigException e) {
      err.println("ferry coordinator: " + e.getMessage());
      return ExitCodes.USAGE;
    }
    dev.ferry.agent.BlockingCheck.installIfAsked();
    String name = id != null ? id : "coordinator-" + ProcessHandle.current().pid();
    EmbeddedZooKeeper embedded = null;
    Coordinator coordinator = new Coordinator(name, zkSettings, Coordinator.Options.DEFAULT.withLimits(limits)
        .withEventsKept(events).withLoadWindow(window).withHa(haTimeoutMillis,
            datastore == null ? null : Path.of(datastore)));
    ApiServer api = new ApiServer(coordinator, token, tls.logged("coordinator " + name));
    try {
      if (embeddedZkData != null) {
        InetSocketAddress zkAddress = Addresses.parse("zk", zkOptions.connect());
        if (!zkAddress.getAddress().isLoopbackAddress()) {
          throw new InvalidConfigException("zk", "an embedded ZooKeeper listens on 127.0.0.1 only");
        }
        embedded = EmbeddedZooKeeper.standalone(zkAddress.getPort(), Path.of(embeddedZkData));
      }
      api.bind(listenAddress);
      coordinator.start("http://" + Addresses.format(api.boundAddress()));
    } catch (InvalidConfigException e) {
      err.println("ferry coordinator: " + e.getMessage());
      closeAll(api, coordinator, embedded);
      return ExitCodes.USAGE;
    } catch (Exception e) {
      err.println("ferry coordinator: cannot start: " + e);
      closeAll(api, coordinator, embedded);
      return ExitCodes.FAILED;
    }
    EmbeddedZooKeeper zkServer = embedded;
    Daemon.runUntilStopped(() -> closeAll(api, coordinator, zkServer), "coordinator", spec.commandLine().getOut(),
        String.format("ferry coordinator %s ready: API on http://%s, ZooKeeper %s%s", name,
            Addresses.format(api.boundAddress()), zkOptions.connect(), embedded == null ? "" : " (embedded)"));
    return ExitCodes.OK;
  }

  private static void closeAll(ApiServer api, Coordinator coordinator, EmbeddedZooKeeper embedded) {
    api.close();
    coordinator.close();
    if (embedded != null) {
      embedded.close();
    }
  }
}
