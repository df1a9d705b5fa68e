package dev.ferry.cluster.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.util.JsonFormat;
import dev.ferry.agent.cluster.EmbeddedZooKeeper;
import dev.ferry.cluster.model.Records;
import dev.ferry.agent.cluster.ZkClients;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.agent.cluster.ZkSettings;
import dev.ferry.cluster.coordinator.Coordinator;
import dev.ferry.cluster.coordinator.Planner;
import dev.ferry.proto.ApiError;
import dev.ferry.proto.CoordinatorEpoch;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import org.apache.curator.framework.CuratorFramework;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two coordinators with their APIs on a real (embedded) ZooKeeper: one leads, the standby points
 * at it; requests without the token are refused; bad bodies get errors naming what is wrong; a
 * leader whose epoch was superseded cannot write any more.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class CoordinatorApiTest extends TwoCoordinatorsTestBase {

  @Override
  String credentials() {
    return "ferry:api-test-secret";
  }

  @Test
  void theStandbyAnswers503WithTheLeadersAddress() throws Exception {
    HttpResponse<String> fromLeader = send(apiA, "GET", "/v1/vms", null, TOKEN);
    assertEquals(200, fromLeader.statusCode(), fromLeader.body());
    HttpResponse<String> fromStandby = send(apiB, "GET", "/v1/vms", null, TOKEN);
    assertEquals(503, fromStandby.statusCode(), fromStandby.body());
    assertEquals(url(apiA), error(fromStandby).getLeaderUrl());
  }

  @Test
  void requestsWithoutTheTokenAreRefused() throws Exception {
    assertEquals(401, send(apiA, "GET", "/v1/hosts", null, null).statusCode());
    assertEquals(401, send(apiA, "GET", "/v1/hosts", null, "not-the-token-at-all").statusCode());
    HttpResponse<String> create = send(apiA, "POST", "/v1/vms", createWeb1(), null);
    assertEquals(401, create.statusCode());
    assertNull(admin.checkExists().forPath(ZkPaths.vm("web-1")), "nothing was written");
  }

  @Test
  void badRequestsGetErrorsNamingWhatIsWrong() throws Exception {
    HttpResponse<String> notJson = send(apiA, "POST", "/v1/vms", "{\"spec\": [", TOKEN);
    assertEquals(400, notJson.statusCode());
    assertTrue(error(notJson).getError().startsWith("request body"), notJson.body());
    HttpResponse<String> badName = send(apiA, "POST", "/v1/migrations", "{\"vm\":\"../etc\",\"target_host\":\"h\"}", TOKEN);
    assertEquals(400, badName.statusCode());
    assertTrue(error(badName).getError().startsWith("vm: "), badName.body());
    assertOversizeRequestRefused();
    assertEquals(200, send(apiA, "GET", "/v1/vms", null, TOKEN).statusCode(), "the API keeps serving");
    HttpResponse<String> tooBig = send(apiA, "POST", "/v1/vms",
        "{\"spec\":{\"name\":\"web-1\",\"memory_bytes\":\"1099511627776000\",\"vcpus\":1}}", TOKEN);
    assertEquals(400, tooBig.statusCode(), tooBig.body());
    assertEquals(404, send(apiA, "GET", "/v1/nothing", null, TOKEN).statusCode());
    assertEquals(404, send(apiA, "GET", "/v1/vms/web-9", null, TOKEN).statusCode());
  }

  @Test
  void typeErrorsNameTheField() throws Exception {
    HttpResponse<String> negative = send(apiA, "POST", "/v1/vms", "{\"spec\":{\"name\":\"web-1\",\"memory_bytes\":\"-1\"}}",
        TOKEN);
    assertEquals(400, negative.statusCode());
    assertEquals("spec.memory_bytes: Out of range uint64 value: \"-1\"", error(negative).getError());
    HttpResponse<String> wrongType = send(apiA, "POST", "/v1/migrations",
        "{\"vm\":\"web-1\",\"target_host\":\"h\",\"policy\":{\"max_downtime_ms\":\"soon\"}}", TOKEN);
    assertEquals(400, wrongType.statusCode());
    assertTrue(error(wrongType).getError().startsWith("policy.max_downtime_ms: "), wrongType.body());
    HttpResponse<String> unknown = send(apiA, "POST", "/v1/vms", "{\"spec\":{\"name\":\"web-1\"},\"colour\":1}", TOKEN);
    assertEquals(400, unknown.statusCode());
    assertTrue(error(unknown).getError().startsWith("colour: "), unknown.body());
  }

  @Test
  void macAndIpAreValidatedNamingTheField() throws Exception {
    String[][] refused = {
        {"mac", "../../zz"}, {"mac", "a".repeat(5_000)}, {"mac", "02:00:00:00:00"}, {"mac", "02:00:00:00:00:0g"},
        {"ip", "999.1.1.1"}, {"ip", "1".repeat(5_000)}, {"ip", "host.example"}, {"ip", "fd00::1::2"}};
    for (String[] field : refused) {
      HttpResponse<String> answer = send(apiA, "POST", "/v1/vms", withField(field[0], field[1]), TOKEN);
      assertEquals(400, answer.statusCode(), field[0] + "=" + field[1]);
      String message = error(answer).getError();
      assertTrue(message.startsWith(field[0] + ": "), message);
      assertTrue(message.length() < 200, "the error does not echo a long value: " + message.length() + " chars");
    }
    assertNull(admin.checkExists().forPath(ZkPaths.vm("web-1")), "nothing was written");
    // Valid ones pass validation (and then find no host to run on: 409).
    for (String[] field : new String[][] {{"mac", "02:AB:cd:00:00:01"}, {"ip", "10.0.0.7"}, {"ip", "fd00::7"}}) {
      HttpResponse<String> answer = send(apiA, "POST", "/v1/vms", withField(field[0], field[1]), TOKEN);
      assertEquals(409, answer.statusCode(), answer.body());
    }
  }

  @Test
  void aPooledClientGetsAnAnswerAfterAnErrorAnswer() throws Exception {
    for (int i = 0; i < 20; i++) {
      HttpResponse<String> refused = send(apiA, "GET", "/v1/hosts", null, null);
      assertEquals(401, refused.statusCode());
      assertEquals(java.util.Optional.of("close"), refused.headers().firstValue("connection"),
          "an answer after which the server closes says so");
      assertEquals(200, send(apiA, "GET", "/v1/vms", null, TOKEN).statusCode(), "the next request on the same client");
    }
    HttpResponse<String> served = send(apiA, "GET", "/v1/vms", null, TOKEN);
    assertEquals(java.util.Optional.of("keep-alive"), served.headers().firstValue("connection"));
  }

  /**
   * Over 64 KiB (by its Content-Length): answered 413 with an empty body, the body is skipped, and
   * the connection serves the next request (sent over a raw socket to see exactly what happens).
   */
  private void assertOversizeRequestRefused() throws Exception {
    try (java.net.Socket socket = new java.net.Socket("127.0.0.1", apiA.boundAddress().getPort())) {
      socket.setSoTimeout(10_000);
      String body = "{\"spec\":{\"name\":\"" + "x".repeat(70_000) + "\"}}";
      java.io.OutputStream out = socket.getOutputStream();
      out.write(("POST /v1/vms HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN
          + "\r\nContent-Type: application/json\r\nContent-Length: " + body.length() + "\r\n\r\n" + body)
          .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
      out.flush();
      java.io.DataInputStream in = new java.io.DataInputStream(socket.getInputStream());
      java.util.List<String> head = readHead(in);
      assertEquals("HTTP/1.1 413 Request Entity Too Large", head.get(0), head.toString());
      assertTrue(head.contains("content-length: 0"), head.toString());
      out.write(("GET /v1/vms HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN
          + "\r\nConnection: close\r\n\r\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII));
      out.flush();
      java.util.List<String> next = readHead(in);
      assertEquals("HTTP/1.1 200 OK", next.get(0), "the same connection serves the next request: " + next);
      assertTrue(next.contains("connection: close"), next.toString());
      in.readAllBytes(); // and then closes, as asked
    }
  }

  /** The status line and headers (lower-cased) of one answer. */
  private static java.util.List<String> readHead(java.io.DataInputStream in) throws Exception {
    java.util.List<String> lines = new java.util.ArrayList<>();
    StringBuilder line = new StringBuilder();
    while (true) {
      int c = in.read();
      if (c < 0) {
        throw new AssertionError("connection closed inside an answer's head: " + lines);
      }
      if (c != '\n') {
        line.append((char) c);
        continue;
      }
      String text = line.toString().strip();
      line.setLength(0);
      if (text.isEmpty()) {
        return lines;
      }
      lines.add(lines.isEmpty() ? text : text.toLowerCase(java.util.Locale.ROOT));
    }
  }

  /** A request to create web-1 with one extra top-level field. */
  private static String withField(String field, String value) throws Exception {
    String create = createWeb1();
    return create.substring(0, create.length() - 1) + ",\"" + field + "\":\"" + value + "\"}";
  }

  @Test
  void aLeaderWhoseEpochWasSupersededCannotWrite() throws Exception {
    // A host with room (its registration, as an agent writes it), so only the fence can refuse.
    admin.create().creatingParentsIfNeeded().withMode(org.apache.zookeeper.CreateMode.EPHEMERAL)
        .forPath(ZkPaths.host("h1"), Records.bytes(dev.ferry.proto.HostRecord.newBuilder()
            .setFormatVersion(Records.FORMAT).setHostId("h1").setAddress("127.0.0.1:1").setCpuCores(2)
            .setMemoryBytes(1L << 30).setCpuModel("test").setState(dev.ferry.proto.HostState.HOST_ACTIVE).build()));
    await("the leader sees h1", () -> a.view().isUp("h1"));
    // What a newer leader does when it takes over: bump the coordinator epoch.
    CoordinatorEpoch current = Records.epoch(ZkPaths.COORDINATOR_EPOCH, admin.getData().forPath(ZkPaths.COORDINATOR_EPOCH));
    admin.setData().forPath(ZkPaths.COORDINATOR_EPOCH, Records.bytes(current.toBuilder()
        .setEpoch(current.getEpoch() + 1).setLeaderId("newer").build()));

    HttpResponse<String> create = send(apiA, "POST", "/v1/vms", createWeb1(), TOKEN);
    assertEquals(503, create.statusCode(), create.body());
    assertNull(admin.checkExists().forPath(ZkPaths.vm("web-1")), "the deposed leader's write did not land");
    assertEquals(503, send(apiA, "GET", "/v1/vms", null, TOKEN).statusCode(), "and it stopped acting as leader");
  }

  @Test
  void eventQueryParametersAreValidatedNamingTheField() throws Exception {
    String[][] refused = {{"after=-1", "after: "}, {"after=abc", "after: "}, {"after=99999999999999999999", "after: "},
        {"limit=0", "limit: "}, {"limit=1001", "limit: "}, {"limit=", "limit: "}, {"limit=1&limit=2", "limit: "},
        {"colour=blue", "'colour': "}};
    for (String[] query : refused) {
      HttpResponse<String> answer = send(apiB, "GET", "/v1/events?" + query[0], null, TOKEN);
      assertEquals(400, answer.statusCode(), query[0] + ": " + answer.body());
      assertTrue(error(answer).getError().startsWith(query[1]), query[0] + ": " + answer.body());
    }
    assertEquals(200, send(apiA, "GET", "/v1/events?after=0&limit=1000", null, TOKEN).statusCode());
    assertEquals(401, send(apiA, "GET", "/v1/events", null, null).statusCode());
  }

  @Test
  void aHostJoiningAndAVmCreatedAreLoggedInOrderAndTheStandbyServesThem() throws Exception {
    admin.create().creatingParentsIfNeeded().withMode(org.apache.zookeeper.CreateMode.EPHEMERAL)
        .forPath(ZkPaths.host("h1"), Records.bytes(dev.ferry.proto.HostRecord.newBuilder()
            .setFormatVersion(Records.FORMAT).setHostId("h1").setAddress("127.0.0.1:1").setCpuCores(2)
            .setMemoryBytes(1L << 30).setCpuModel("test").setState(dev.ferry.proto.HostState.HOST_ACTIVE).build()));
    await("the leader sees h1", () -> a.view().isUp("h1"));
    await("h1's joining is in the log", () -> {
      try {
        return events(apiB).getEventsList().stream()
            .anyMatch(e -> e.getKind() == dev.ferry.proto.EventKind.EVENT_HOST_JOINED);
      } catch (Exception e) {
        throw new AssertionError(e);
      }
    });
    HttpResponse<String> create = send(apiA, "POST", "/v1/vms", createWeb1(), TOKEN);
    assertEquals(201, create.statusCode(), create.body());

    dev.ferry.proto.EventList list = events(apiB); // the standby answers reads of the log
    assertEquals(java.util.List.of(dev.ferry.proto.EventKind.EVENT_COORDINATOR_LEADING,
        dev.ferry.proto.EventKind.EVENT_HOST_JOINED, dev.ferry.proto.EventKind.EVENT_VM_CREATED),
        list.getEventsList().stream().map(dev.ferry.proto.ClusterEvent::getKind).toList(), list.toString());
    dev.ferry.proto.ClusterEvent created = list.getEvents(2);
    assertEquals("web-1", created.getVm());
    assertEquals("h1", created.getHost());
    assertEquals("VM web-1 created on h1 (64.0 MiB, 1 vCPU)", created.getMessage());
    assertEquals(a.epoch(), created.getCoordinatorEpoch());
    assertEquals("host h1 joined the cluster", list.getEvents(1).getMessage());
  }

  private dev.ferry.proto.EventList events(ApiServer api) throws Exception {
    HttpResponse<String> answer = send(api, "GET", "/v1/events", null, TOKEN);
    assertEquals(200, answer.statusCode(), answer.body());
    dev.ferry.proto.EventList.Builder list = dev.ferry.proto.EventList.newBuilder();
    JsonFormat.parser().merge(answer.body(), list);
    return list.build();
  }

  /** A valid request to create web-1, as the CLI sends it. */
  private static String createWeb1() throws Exception {
    return JsonFormat.printer().preservingProtoFieldNames().print(dev.ferry.proto.CreateVmRequest.newBuilder()
        .setSpec(dev.ferry.common.Specs.guest("web-1", "64MiB", 1, "0", null, 20, 80, "mixed", 1)).build());
  }

  private HttpResponse<String> send(ApiServer api, String method, String path, String body, String token)
      throws Exception {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url(api) + path)).timeout(Duration.ofSeconds(10))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    if (token != null) {
      request.header("Authorization", "Bearer " + token);
    }
    return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static ApiError error(HttpResponse<String> response) throws Exception {
    ApiError.Builder error = ApiError.newBuilder();
    JsonFormat.parser().merge(response.body(), error);
    assertNotNull(error.getError());
    return error.build();
  }

  private static void await(String what, BooleanSupplier condition) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting until " + what);
      }
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(50));
    }
  }
}
