package dev.ferry.agent.cluster;

import dev.ferry.common.InvalidConfigException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * How a daemon reaches ZooKeeper: the ensemble, the digest credentials its nodes are protected
 * with, and the session timeout.
 *
 * @param connect {@code host:port[,host:port...]}
 * @param credentials {@code user:password} of the cluster's digest ACL
 * @param sessionTimeoutMillis how long ZooKeeper keeps a silent session
 */
public record ZkSettings(String connect, String credentials, int sessionTimeoutMillis) {
  private static final Pattern CONNECT = Pattern.compile("[A-Za-z0-9.\\-\\[\\]:]+:\\d{1,5}(,[A-Za-z0-9.\\-\\[\\]:]+:\\d{1,5})*");
  private static final Pattern CREDENTIALS = Pattern.compile("[A-Za-z0-9_.\\-]{1,64}:[^\\s:]{8,256}");
  public static final int SESSION_TIMEOUT_MILLIS_DEFAULT = 10_000;

  public ZkSettings {
    if (connect == null || !CONNECT.matcher(connect).matches()) {
      throw new InvalidConfigException("zk", "'" + connect + "' is not host:port[,host:port...]");
    }
    if (credentials == null || !CREDENTIALS.matcher(credentials).matches()) {
      throw new InvalidConfigException("zk-credentials",
          "must be user:password (password at least 8 characters, no spaces)");
    }
    InvalidConfigException.requireRange("zk-session-timeout-ms", sessionTimeoutMillis, 2_000, 120_000);
  }

  /** From a daemon's options: {@code --zk}, {@code --zk-credentials-file} (required with it), the timeout. */
  public static ZkSettings fromOptions(String zk, String credentialsFile, int sessionTimeoutMillis) {
    if (credentialsFile == null) {
      throw new InvalidConfigException("zk-credentials-file", "required with --zk: the cluster's nodes are protected "
          + "by digest credentials (user:password)");
    }
    return new ZkSettings(zk, readCredentials(Path.of(credentialsFile)), sessionTimeoutMillis);
  }

  /** Reads {@code user:password} from the first line of {@code file}. */
  public static String readCredentials(Path file) {
    try {
      if (Files.size(file) > 4096) {
        throw new InvalidConfigException("zk-credentials-file", file + " is larger than 4 KiB");
      }
      String line = Files.readAllLines(file, StandardCharsets.UTF_8).stream().findFirst().orElse("").trim();
      if (line.isEmpty()) {
        throw new InvalidConfigException("zk-credentials-file", file + " is empty (expected user:password)");
      }
      return line;
    } catch (IOException e) {
      throw new InvalidConfigException("zk-credentials-file", "cannot read " + file + ": " + e.getMessage());
    }
  }
}
