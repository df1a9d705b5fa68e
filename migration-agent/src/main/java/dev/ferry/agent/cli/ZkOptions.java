package dev.ferry.agent.cli;

import dev.ferry.agent.cluster.ZkSettings;
import picocli.CommandLine.Option;

/** How a daemon reaches the cluster's ZooKeeper: the ensemble, the ACL credentials, the session timeout. */
public final class ZkOptions {
  @Option(names = "--zk", paramLabel = "HOST:PORT[,...]", description = "The cluster's ZooKeeper ensemble.")
  String zk;

  @Option(names = "--zk-credentials-file", paramLabel = "FILE",
      description = "user:password of the cluster's ZooKeeper ACL (required with --zk).")
  String zkCredentialsFile;

  @Option(names = "--zk-session-timeout-ms", paramLabel = "MS",
      description = "ZooKeeper session timeout (default: ${DEFAULT-VALUE}).", defaultValue = "10000")
  String zkSessionTimeout;

  /** The settings, or null without {@code --zk}. */
  public ZkSettings settings() {
    return zk == null ? null : ZkSettings.fromOptions(zk, zkCredentialsFile,
        AgentCommand.parseInt("zk-session-timeout-ms", zkSessionTimeout));
  }

  public String connect() {
    return zk;
  }
}
