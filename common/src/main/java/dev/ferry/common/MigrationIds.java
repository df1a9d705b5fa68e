package dev.ferry.common;

import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.regex.Pattern;

/**
 * Migration ids: "m-" and 128 random bits in hex. Ids travel in the clear and name ZooKeeper
 * nodes, so every id from outside is checked against this one strict shape before it is used
 * (the 32-bit ids of older records, "m-" and 8 hex digits, still pass).
 */
public final class MigrationIds {
  private static final Pattern VALID = Pattern.compile("m-(?:[0-9a-f]{32}|[0-9a-f]{8})");
  private static final SecureRandom RANDOM = new SecureRandom();
  /** How much of a bad id an error message quotes. */
  private static final int QUOTED_CHARS_MAX = 40;

  private MigrationIds() {}

  /** A fresh id: 128 bits from a cryptographic random source. */
  public static String random() {
    byte[] bits = new byte[16];
    RANDOM.nextBytes(bits);
    return "m-" + HexFormat.of().formatHex(bits);
  }

  public static boolean isValid(String id) {
    return id != null && VALID.matcher(id).matches();
  }

  /** Returns {@code id} if valid; otherwise throws naming {@code field} (the id is quoted escaped). */
  public static String check(String field, String id) {
    if (!isValid(id)) {
      throw new InvalidConfigException(field, "'" + printable(id) + "' is not a migration id (m- and 32 hex digits)");
    }
    return id;
  }

  /** {@code text} safe to log or quote: bounded, control characters escaped. */
  public static String printable(String text) {
    if (text == null) {
      return "null";
    }
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < text.length() && out.length() < QUOTED_CHARS_MAX; i++) {
      char c = text.charAt(i);
      if (c >= 0x20 && c < 0x7f && c != '\'') {
        out.append(c);
      } else {
        out.append(String.format("\\u%04x", (int) c));
      }
    }
    return text.length() > QUOTED_CHARS_MAX ? out + "..." : out.toString();
  }
}
