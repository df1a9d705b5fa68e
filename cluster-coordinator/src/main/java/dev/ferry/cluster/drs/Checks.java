package dev.ferry.cluster.drs;

/** Bounds on a snapshot's fields; every error names the field. */
final class Checks {
  static final int MAX_NAME = 253;

  private Checks() {}

  static void name(String field, String value) {
    if (value == null || value.isBlank() || value.length() > MAX_NAME) {
      throw new IllegalArgumentException(field + ": must be 1 to " + MAX_NAME + " characters, got "
          + (value == null ? "none" : value.length()));
    }
  }

  static void range(String field, double value, double min, double max) {
    if (!(value >= min && value <= max)) { // also refuses NaN
      throw new IllegalArgumentException(field + ": " + value + " is outside " + min + ".." + max);
    }
  }

  static void range(String field, long value, long min, long max) {
    if (value < min || value > max) {
      throw new IllegalArgumentException(field + ": " + value + " is outside " + min + ".." + max);
    }
  }
}
