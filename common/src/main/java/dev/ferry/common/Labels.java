package dev.ferry.common;

import java.util.Locale;

/** How enum values of the records read for people: {@code PHASE_STOP_AND_COPY} is "stop-and-copy". */
public final class Labels {
  private Labels() {
  }

  public static String phase(dev.ferry.proto.MigrationPhase phase) {
    return of(phase.name(), "PHASE_");
  }

  /** {@code name} without {@code prefix}, lower case, with dashes. */
  public static String of(String name, String prefix) {
    String bare = name.startsWith(prefix) ? name.substring(prefix.length()) : name;
    return bare.toLowerCase(Locale.ROOT).replace('_', '-');
  }
}
