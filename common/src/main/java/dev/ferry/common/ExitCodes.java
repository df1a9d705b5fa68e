package dev.ferry.common;

/** The exit codes of every {@code ferry} command, listed in each command's help. */
public final class ExitCodes {
  public static final int OK = 0;
  /** The operation ran and failed: a migration aborted or was cancelled. */
  public static final int FAILED = 1;
  /** Bad command line or config: the message names the option. */
  public static final int USAGE = 2;
  /** The agent (or coordinator) could not be reached. */
  public static final int UNREACHABLE = 3;
  /** The agent refused the request (no such guest, no capacity, limit reached...). */
  public static final int REFUSED = 4;
  /** A migration's outcome is unknown: the guest is paused until it is resolved. */
  public static final int UNKNOWN = 5;
  /** The coordinator refused the API token. */
  public static final int AUTH = 6;

  public static final String[] HELP = {
      "0:Success.",
      "1:The operation failed (a migration aborted or was cancelled).",
      "2:Invalid command line or configuration.",
      "3:The agent could not be reached.",
      "4:The agent refused the request.",
      "5:A migration's outcome is unknown; the guest stays paused."
  };

  private ExitCodes() {}
}
