package dev.ferry.storage;

import java.util.regex.Pattern;

/**
 * The names that become path components on the datastore (VM names, checkpoint names) and the
 * host ids written into leases: 1 to 63 letters, digits, {@code .}, {@code _} or {@code -},
 * starting with a letter or digit. The first character rule keeps out {@code .}, {@code ..},
 * hidden files and Ferry's own temporary files ({@code .vm.conf.….tmp}); the alphabet keeps out
 * separators, so a name can never leave its directory.
 */
public final class Names {
  /** The longest name, in characters (all ASCII, so also in bytes). */
  public static final int NAME_CHARS_MAX = 63;

  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");

  private Names() {}

  /** Returns {@code name} if it is valid; {@code what} ("VM name", "host id") names it in errors. */
  public static String require(String what, String name) {
    if (name == null) {
      throw new StorageException(StorageException.Problem.INVALID_NAME, null, what + " is missing");
    }
    if (!NAME.matcher(name).matches()) {
      throw new StorageException(StorageException.Problem.INVALID_NAME, null,
          what + " '" + printable(name) + "' is not allowed: use 1 to " + NAME_CHARS_MAX
              + " letters, digits, '.', '_' or '-', starting with a letter or digit");
    }
    return name;
  }

  /** Whether {@code name} is valid (for skipping foreign entries when listing). */
  public static boolean isValid(String name) {
    return name != null && NAME.matcher(name).matches();
  }

  /** The name as it may be echoed in a message: bounded, control characters escaped. */
  static String printable(String name) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < name.length() && out.length() < 80; i++) {
      char c = name.charAt(i);
      out.append(c < 0x20 || c == 0x7f ? String.format("\\x%02x", (int) c) : String.valueOf(c));
    }
    return name.length() > 80 ? out + "…" : out.toString();
  }
}
