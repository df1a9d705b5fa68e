package dev.ferry.agent.transport;

import dev.ferry.engine.wire.ProtocolException;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.timeout.ReadTimeoutException;

/** Turns a pipeline exception into a sentence for the migration's abort reason. */
final class Failures {
  private Failures() {}

  static String describe(Throwable cause) {
    Throwable c = cause;
    if (c instanceof DecoderException && c.getCause() != null) {
      c = c.getCause();
    }
    if (c instanceof TooLongFrameException) {
      return "protocol error: oversize frame (" + c.getMessage() + ")";
    }
    if (c instanceof ProtocolException) {
      return "protocol error: " + c.getMessage();
    }
    if (c instanceof ReadTimeoutException) {
      return "peer sent nothing in time";
    }
    if (c instanceof java.nio.channels.ClosedChannelException) { // Netty's has no message
      return "the connection is closed (" + c.getClass().getSimpleName() + ")";
    }
    String message = firstMessage(c);
    return c.getClass().getSimpleName() + (message == null ? "" : ": " + message);
  }

  /** The exception's message, or else its causes' first: "write failed: null" helps no operator. */
  private static String firstMessage(Throwable cause) {
    for (Throwable c = cause; c != null; c = c.getCause() == c ? null : c.getCause()) {
      if (c.getMessage() != null) {
        return c.getMessage();
      }
    }
    return null;
  }

  static boolean isProtocolError(Throwable cause) {
    Throwable c = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
    return c instanceof ProtocolException || c instanceof TooLongFrameException || cause instanceof DecoderException;
  }
}
