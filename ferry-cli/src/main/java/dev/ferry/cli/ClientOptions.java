package dev.ferry.cli;

import dev.ferry.common.InvalidConfigException;
import java.io.IOException;
import java.io.Reader;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import picocli.CommandLine.Option;

/**
 * Where the CLI finds the coordinator and its token, each from (first match wins) the option,
 * the environment ({@code FERRY_COORDINATOR}, {@code FERRY_TOKEN}), the CLI's config file
 * ({@code --config}, {@code $FERRY_CONFIG}, or {@code ~/.config/ferry/cli.conf}, with keys
 * {@code coordinator}, {@code token-file}, {@code token}), then the default address.
 */
final class ClientOptions {
  static final String DEFAULT_COORDINATOR = "http://127.0.0.1:7600";
  private static final Set<String> CONFIG_KEYS = Set.of("coordinator", "token", "token-file");

  @Option(names = "--coordinator", paramLabel = "URL[,URL...]",
      description = "The coordinators' API (default: $FERRY_COORDINATOR, the config file, or " + DEFAULT_COORDINATOR + ").")
  String coordinator;

  @Option(names = "--token-file", paramLabel = "FILE",
      description = "File holding the API token (default: $FERRY_TOKEN, or token/token-file in the config file).")
  Path tokenFile;

  @Option(names = "--config", paramLabel = "FILE",
      description = "CLI config file (default: $FERRY_CONFIG or ~/.config/ferry/cli.conf if present).")
  Path config;

  ApiClient client() {
    Properties file = readConfig();
    String urls = first(coordinator, System.getenv("FERRY_COORDINATOR"), file.getProperty("coordinator"),
        DEFAULT_COORDINATOR);
    List<URI> coordinators = new ArrayList<>();
    for (String url : urls.split(",")) {
      coordinators.add(parseUrl(url.trim()));
    }
    String token;
    if (tokenFile != null) {
      token = dev.ferry.common.Tokens.read(tokenFile);
    } else if (System.getenv("FERRY_TOKEN") != null && !System.getenv("FERRY_TOKEN").isBlank()) {
      token = System.getenv("FERRY_TOKEN").trim();
    } else if (file.getProperty("token-file") != null) {
      token = dev.ferry.common.Tokens.read(Path.of(file.getProperty("token-file").trim()));
    } else if (file.getProperty("token") != null) {
      token = file.getProperty("token").trim();
    } else {
      throw new InvalidConfigException("token", "no API token: set FERRY_TOKEN, --token-file, or token-file in "
          + "the CLI config file");
    }
    return new ApiClient(coordinators, token);
  }

  static URI parseUrl(String url) {
    try {
      URI uri = new URI(url.endsWith("/") ? url : url + "/");
      if (!"http".equals(uri.getScheme()) || uri.getHost() == null || uri.getPort() < 1) {
        throw new InvalidConfigException("coordinator", "'" + url + "' is not http://HOST:PORT");
      }
      return uri;
    } catch (java.net.URISyntaxException e) {
      throw new InvalidConfigException("coordinator", "'" + url + "' is not a URL: " + e.getMessage());
    }
  }

  private static String first(String... values) {
    for (String v : values) {
      if (v != null && !v.isBlank()) {
        return v.trim();
      }
    }
    return null;
  }

  private Properties readConfig() {
    Path path = config;
    if (path == null && System.getenv("FERRY_CONFIG") != null) {
      path = Path.of(System.getenv("FERRY_CONFIG"));
    }
    boolean explicit = path != null;
    if (path == null) {
      path = Path.of(System.getProperty("user.home"), ".config", "ferry", "cli.conf");
    }
    Properties p = new Properties();
    if (!Files.exists(path)) {
      if (explicit) {
        throw new InvalidConfigException("config", path + " does not exist");
      }
      return p;
    }
    try {
      if (Files.size(path) > 64 * 1024) {
        throw new InvalidConfigException("config", path + " is larger than 64 KiB");
      }
      try (Reader r = Files.newBufferedReader(path)) {
        p.load(r);
      }
    } catch (IOException e) {
      throw new InvalidConfigException("config", "cannot read " + path + ": " + e.getMessage());
    }
    for (String key : p.stringPropertyNames()) {
      if (!CONFIG_KEYS.contains(key)) {
        throw new InvalidConfigException(path + ": " + key, "unknown setting (known: coordinator, token, token-file)");
      }
    }
    return p;
  }
}
