package dev.ferry.common;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Parses and prints byte sizes and rates the way operators write them: {@code 256MiB}, {@code 1G},
 * {@code 64MiB/s}, {@code 100MB/s}. Binary units (K, M, G, T, KiB, MiB, GiB, TiB) are powers of
 * 1024; decimal units (KB, MB, GB, TB) powers of 1000; a bare number is bytes.
 */
public final class Sizes {
  private static final Pattern SIZE =
      Pattern.compile("\\s*(\\d+(?:\\.\\d+)?)\\s*([kKmMgGtT](?:i?[bB])?|[bB])?\\s*");
  private static final long TIB = 1L << 40;

  private Sizes() {}

  /** A size in bytes; {@code field} names the input in errors. */
  public static long parseBytes(String field, String text) {
    if (text == null) {
      throw new InvalidConfigException(field, "missing");
    }
    Matcher m = SIZE.matcher(text);
    if (!m.matches()) {
      throw new InvalidConfigException(field,
          "'" + text + "' is not a size (examples: 4096, 256MiB, 1GiB, 100MB)");
    }
    double number = Double.parseDouble(m.group(1));
    double bytes = number * multiplier(m.group(2));
    if (bytes > 64 * (double) TIB) {
      throw new InvalidConfigException(field, "'" + text + "' is larger than 64 TiB");
    }
    return Math.round(bytes);
  }

  /** A rate in bytes per second: a size with an optional {@code /s}. */
  public static long parseRate(String field, String text) {
    if (text == null) {
      throw new InvalidConfigException(field, "missing");
    }
    String trimmed = text.trim();
    if (trimmed.endsWith("/s")) {
      trimmed = trimmed.substring(0, trimmed.length() - 2);
    }
    return parseBytes(field, trimmed);
  }

  private static double multiplier(String unit) {
    if (unit == null || unit.equalsIgnoreCase("b")) {
      return 1;
    }
    char scale = Character.toUpperCase(unit.charAt(0));
    boolean decimal = unit.length() == 2 && (unit.charAt(1) == 'b' || unit.charAt(1) == 'B');
    double base = decimal ? 1000 : 1024;
    int power = "KMGT".indexOf(scale) + 1;
    return Math.pow(base, power);
  }

  /** {@code 1.5 GiB}, {@code 256.0 MiB}, {@code 512 B}. */
  public static String formatBytes(long bytes) {
    if (bytes < 1024 && bytes > -1024) {
      return bytes + " B";
    }
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    double value = bytes;
    int unit = -1;
    while (Math.abs(value) >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    return String.format(Locale.ROOT, "%.1f %s", value, units[unit]);
  }

  public static String formatRate(long bytesPerSecond) {
    return formatBytes(bytesPerSecond) + "/s";
  }
}
