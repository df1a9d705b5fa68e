package dev.ferry.daemons;

import dev.ferry.agent.cli.Daemon;
import dev.ferry.common.ExitCodes;
import dev.ferry.agent.cluster.EmbeddedZooKeeper;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code ferry zk-server}: a standalone ZooKeeper server (from the Maven artifacts) on 127.0.0.1. */
@Command(name = "zk-server",
    mixinStandardHelpOptions = true,
    description = {"Run a ZooKeeper server on 127.0.0.1 (from the Maven artifacts).",
        "",
        "Runs until SIGTERM or Ctrl-C (scripts/zk start|stop runs it in the background); with",
        "--server-id and --ensemble it is one server of an ensemble on this machine. For a",
        "production ensemble run ZooKeeper itself.",
        "",
        "Only clients that authenticate with the digest scheme are served (enforce.auth.enabled,",
        "as Ferry's daemons do with --zk-credentials-file); any other client's session is",
        "closed at its first request."},
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {"0:Stopped cleanly.", "1:Could not start (port in use, data directory unusable).",
        "2:Invalid option."})
public final class ZkServerCommand implements Callable<Integer> {
  @Spec
  picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--port", paramLabel = "N", defaultValue = "2181", description = "Client port (default: ${DEFAULT-VALUE}).")
  int port;

  @Option(names = "--data", paramLabel = "DIR", required = true, description = "Where ZooKeeper keeps its data.")
  Path data;

  @Option(names = "--server-id", paramLabel = "N",
      description = "This server's id (1..255) in --ensemble; without --ensemble the server stands alone.")
  Integer serverId;

  @Option(names = "--ensemble", paramLabel = "HOST:QUORUM_PORT:ELECTION_PORT[,...]",
      description = "Every server of the ensemble, in id order (server 1 first).")
  String ensemble;

  @Override
  public Integer call() throws Exception {
    if (port < 1 || port > 65535) {
      spec.commandLine().getErr().println("ferry zk-server: --port: " + port + " is not a port (1..65535)");
      return ExitCodes.USAGE;
    }
    String[] peers = ensemble == null ? new String[0] : ensemble.split(",");
    if ((ensemble == null) != (serverId == null)) {
      spec.commandLine().getErr().println("ferry zk-server: --server-id and --ensemble go together");
      return ExitCodes.USAGE;
    }
    for (String peer : peers) {
      if (!peer.matches("127\\.0\\.0\\.1:\\d{1,5}:\\d{1,5}")) {
        spec.commandLine().getErr().println("ferry zk-server: --ensemble: '" + peer
            + "' is not 127.0.0.1:QUORUM_PORT:ELECTION_PORT (servers bind to loopback only)");
        return ExitCodes.USAGE;
      }
    }
    if (serverId != null && (serverId < 1 || serverId > peers.length)) {
      spec.commandLine().getErr().println("ferry zk-server: --server-id: " + serverId + " is not in 1.." + peers.length);
      return ExitCodes.USAGE;
    }
    EmbeddedZooKeeper server;
    try {
      server = serverId == null ? EmbeddedZooKeeper.standalone(port, data)
          : EmbeddedZooKeeper.ensembleMember(serverId, port, data, peers);
    } catch (Exception e) {
      spec.commandLine().getErr().println("ferry zk-server: cannot start on 127.0.0.1:" + port + ": " + e.getMessage());
      return ExitCodes.FAILED;
    }
    Daemon.runUntilStopped(server, "zk-server", spec.commandLine().getOut(),
        "ferry zk-server ready on " + server.connectString() + " (data in " + data.toAbsolutePath() + ")");
    return ExitCodes.OK;
  }
}
