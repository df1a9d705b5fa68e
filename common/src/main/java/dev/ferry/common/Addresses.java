package dev.ferry.common;

import java.net.InetSocketAddress;

/** Parses {@code host:port} from the CLI, config files and peers; errors name the field. */
public final class Addresses {
  private Addresses() {}

  public static InetSocketAddress parse(String field, String text) {
    if (text == null || text.isBlank()) {
      throw new InvalidConfigException(field, "missing (expected host:port, e.g. 127.0.0.1:7701)");
    }
    String t = text.trim();
    int colon = t.lastIndexOf(':');
    if (colon <= 0 || colon == t.length() - 1) {
      throw new InvalidConfigException(field, "'" + text + "' is not host:port (e.g. 127.0.0.1:7701)");
    }
    String host = t.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    int port;
    try {
      port = Integer.parseInt(t.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new InvalidConfigException(field, "'" + text + "' has a port that is not a number");
    }
    InvalidConfigException.requireRange(field + " port", port, 0, 65535);
    return new InetSocketAddress(host, port);
  }

  public static String format(InetSocketAddress address) {
    return address.getHostString() + ":" + address.getPort();
  }
}
