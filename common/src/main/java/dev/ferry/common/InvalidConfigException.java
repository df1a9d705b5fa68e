package dev.ferry.common;

/** A value from outside (CLI, config file, peer, record) that is out of bounds; names the field. */
public final class InvalidConfigException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;
  private final String field;

  public InvalidConfigException(String field, String problem) {
    super(field + ": " + problem);
    this.field = field;
  }

  public String field() {
    return field;
  }

  /** Checks {@code min <= value <= max}; the message names the field and the bounds. */
  public static long requireRange(String field, long value, long min, long max) {
    if (value < min || value > max) {
      throw new InvalidConfigException(field, "must be between " + min + " and " + max + ", got " + value);
    }
    return value;
  }

  /** Checks that {@code value} is a finite number with {@code min <= value <= max}; the message names the field. */
  public static double requireRange(String field, double value, double min, double max) {
    if (!Double.isFinite(value) || value < min || value > max) {
      throw new InvalidConfigException(field, "must be a number between " + min + " and " + max + ", got " + value);
    }
    return value;
  }
}
