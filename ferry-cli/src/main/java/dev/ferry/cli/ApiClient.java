package dev.ferry.cli;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import dev.ferry.proto.ApiError;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.HttpURLConnection;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The CLI's side of the operator API: tries each known coordinator in turn, follows a standby's
 * pointer to the leader, and turns answers into exceptions a command maps to its exit codes.
 */
final class ApiClient {
  private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(3);
  private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(20);
  private static final int ANSWER_BYTES_MAX = 16 * 1024 * 1024;
  private static final JsonFormat.Printer PRINTER = JsonFormat.printer().preservingProtoFieldNames()
      .omittingInsignificantWhitespace();
  private static final JsonFormat.Parser PARSER = JsonFormat.parser().ignoringUnknownFields();

  /** No coordinator answered. */
  static final class UnreachableException extends IOException {
    private static final long serialVersionUID = 1L;

    UnreachableException(String message) {
      super(message);
    }
  }

  /** The coordinator answered with a refusal (4xx): the message is for the operator. */
  static final class RefusedException extends IOException {
    private static final long serialVersionUID = 1L;
    final int status;

    RefusedException(int status, String message) {
      super(message);
      this.status = status;
    }
  }

  private final List<URI> coordinators;
  private final String token;
  private URI preferred;

  ApiClient(List<URI> coordinators, String token) {
    this.coordinators = coordinators;
    this.token = token;
  }

  <T extends Message.Builder> T get(String path, T into) throws IOException {
    return call("GET", path, null, into);
  }

  <T extends Message.Builder> T post(String path, Message body, T into) throws IOException {
    return call("POST", path, body, into);
  }

  <T extends Message.Builder> T put(String path, Message body, T into) throws IOException {
    return call("PUT", path, body, into);
  }

  void delete(String path) throws IOException {
    call("DELETE", path, null, null);
  }

  static String json(com.google.protobuf.MessageOrBuilder message) {
    try {
      return PRINTER.print(message);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String read(URI base, InputStream stream) throws IOException {
    try (InputStream in = stream) {
      byte[] bytes = in.readNBytes(ANSWER_BYTES_MAX + 1);
      if (bytes.length > ANSWER_BYTES_MAX) {
        throw new IOException(base + " answered more than 16 MiB");
      }
      return new String(bytes, StandardCharsets.UTF_8);
    }
  }

  private <T extends Message.Builder> T call(String method, String path, Message body, T into) throws IOException {
    Set<URI> order = new LinkedHashSet<>();
    if (preferred != null) {
      order.add(preferred);
    }
    order.addAll(coordinators);
    List<String> failures = new ArrayList<>();
    List<URI> queue = new ArrayList<>(order);
    for (int i = 0; i < queue.size() && i < 8; i++) {
      URI base = queue.get(i);
      // HttpURLConnection, not java.net.http: the CLI makes one or two requests, and the older
      // client starts in a fraction of the time (no selector thread, fewer classes).
      int status;
      String text;
      try {
        HttpURLConnection connection = (HttpURLConnection) base.resolve(path).toURL().openConnection();
        connection.setConnectTimeout((int) CONNECT_TIMEOUT.toMillis());
        connection.setReadTimeout((int) REQUEST_TIMEOUT.toMillis());
        connection.setInstanceFollowRedirects(false);
        connection.setRequestMethod(method);
        connection.setRequestProperty("Authorization", "Bearer " + token);
        connection.setRequestProperty("Accept", "application/json");
        if (body != null) {
          byte[] bytes = json(body).getBytes(StandardCharsets.UTF_8);
          connection.setDoOutput(true);
          connection.setRequestProperty("Content-Type", "application/json");
          connection.setFixedLengthStreamingMode(bytes.length);
          connection.getOutputStream().write(bytes);
        }
        status = connection.getResponseCode();
        InputStream stream = status >= 400 ? connection.getErrorStream() : connection.getInputStream();
        text = stream == null ? "" : read(base, stream);
      } catch (IOException e) {
        failures.add(base + ": " + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage()));
        continue;
      }
      if (status >= 200 && status < 300) {
        preferred = base;
        if (into != null && !text.isBlank()) {
          parse(base, text, into);
        }
        return into;
      }
      ApiError.Builder error = ApiError.newBuilder();
      try {
        PARSER.merge(text, error);
      } catch (InvalidProtocolBufferException e) {
        error.setError("HTTP " + status + " from " + base);
      }
      if (status == 503) {
        failures.add(base + ": " + error.getError());
        if (!error.getLeaderUrl().isEmpty()) {
          URI leader = URI.create(error.getLeaderUrl() + "/");
          if (!queue.contains(leader)) {
            queue.add(i + 1, leader);
          }
        }
        continue;
      }
      throw new RefusedException(status, error.getError());
    }
    throw new UnreachableException("no coordinator answered (" + String.join("; ", failures)
        + "); set --coordinator or FERRY_COORDINATOR");
  }

  private static void parse(URI base, String text, Message.Builder into) throws IOException {
    try {
      PARSER.merge(text, into);
    } catch (InvalidProtocolBufferException e) {
      throw new IOException(base + " answered something that is not a " + into.getDescriptorForType().getName()
          + ": " + e.getMessage());
    }
  }
}
