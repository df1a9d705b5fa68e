package dev.ferry.bench;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/** The coordinator's operator API as {@code ferry} uses it: JSON over HTTP with a bearer token. */
final class ClusterApi {
  private static final JsonFormat.Printer PRINTER = JsonFormat.printer().preservingProtoFieldNames()
      .omittingInsignificantWhitespace();
  private static final JsonFormat.Parser PARSER = JsonFormat.parser().ignoringUnknownFields();
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(3)).build();
  private final URI base;
  private final String token;

  ClusterApi(URI base, String token) {
    this.base = base;
    this.token = token;
  }

  <T extends Message.Builder> T get(String path, T into) throws IOException {
    return call("GET", path, null, into);
  }

  <T extends Message.Builder> T post(String path, Message body, T into) throws IOException {
    return call("POST", path, body, into);
  }

  void delete(String path) throws IOException {
    call("DELETE", path, null, null);
  }

  private <T extends Message.Builder> T call(String method, String path, Message body, T into) throws IOException {
    HttpRequest.Builder request = HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(20))
        .header("Authorization", "Bearer " + token).header("Accept", "application/json")
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
            : HttpRequest.BodyPublishers.ofString(PRINTER.print(body)));
    if (body != null) {
      request.header("Content-Type", "application/json");
    }
    HttpResponse<String> response;
    try {
      response = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
    if (response.statusCode() / 100 != 2) {
      throw new IOException(method + " " + path + ": HTTP " + response.statusCode() + ": " + response.body());
    }
    if (into != null && !response.body().isBlank()) {
      try {
        PARSER.merge(response.body(), into);
      } catch (InvalidProtocolBufferException e) {
        throw new IOException(method + " " + path + ": not a " + into.getDescriptorForType().getName(), e);
      }
    }
    return into;
  }
}
