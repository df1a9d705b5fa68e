package dev.ferry.cluster.model;

/** A record in ZooKeeper that this Ferry cannot use: unreadable, too large, or from a newer format. */
public final class RecordException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public RecordException(String message) {
    super(message);
  }

  public RecordException(String message, Throwable cause) {
    super(message, cause);
  }
}
