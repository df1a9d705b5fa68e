package dev.ferry.engine.precopy;

/** The link to the peer is gone (closed, reset, failed); the message says why. */
public final class LinkException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public LinkException(String message) {
    super(message);
  }

  public LinkException(String message, Throwable cause) {
    super(message, cause);
  }
}
