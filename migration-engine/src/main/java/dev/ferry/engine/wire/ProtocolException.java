package dev.ferry.engine.wire;

/**
 * A peer sent something the agent-to-agent protocol does not allow: a bad frame, a checksum
 * mismatch, an out-of-order message. The migration it belongs to aborts with this message; the
 * source guest keeps running.
 */
public final class ProtocolException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public ProtocolException(String message) {
    super(message);
  }

  public ProtocolException(String message, Throwable cause) {
    super(message, cause);
  }
}
