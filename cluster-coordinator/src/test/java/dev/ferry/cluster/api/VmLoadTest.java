package dev.ferry.cluster.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.util.JsonFormat;
import dev.ferry.agent.Agent;
import dev.ferry.agent.AgentConfig;
import dev.ferry.agent.cluster.EmbeddedZooKeeper;
import dev.ferry.agent.cluster.ZkClients;
import dev.ferry.agent.cluster.ZkSettings;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.cluster.coordinator.Coordinator;
import dev.ferry.cluster.coordinator.Planner;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.engine.clock.Clock;
import dev.ferry.proto.ApiError;
import dev.ferry.proto.HostList;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.VmList;
import dev.ferry.proto.VmRecord;
import dev.ferry.proto.VmUsage;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import org.apache.curator.framework.CuratorFramework;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Load, measured: a coordinator and two agents on a real (embedded) ZooKeeper. A VM's CPU load and
 * dirty rate change at run time through the API ('ferry vm set'); its host measures them from the
 * guest's vCPU threads and reports them in its host record; the coordinator's windowed figures
 * show them; and after a live migration the target runs the VM with the same demand.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class VmLoadTest {
  private static final String TOKEN = "test-token-0123456789abcdef";
  private static final String CREDENTIALS = "ferry:load-test-secret";
  private static final long LOAD_INTERVAL_MILLIS = 500;

  @TempDir
  Path dir;

  private EmbeddedZooKeeper zkServer;
  private Coordinator coordinator;
  private ApiServer api;
  private Agent hostA;
  private Agent hostB;
  private CuratorFramework admin;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  @AfterEach
  void stop() {
    for (AutoCloseable c : new AutoCloseable[] {admin, hostA, hostB, api, coordinator, zkServer}) {
      try {
        if (c != null) {
          c.close();
        }
      } catch (Exception ignored) {
        // best effort
      }
    }
  }

  private Agent agent(String host, ZkSettings settings) throws Exception {
    return new Agent(AgentConfig.of(host, new InetSocketAddress("127.0.0.1", 0), dir.resolve("datastore"),
        NettyTransport.Kind.AUTO, 1L << 30, 2, 2).withZk(settings).withCpu(4, LOAD_INTERVAL_MILLIS), Clock.SYSTEM)
        .start();
  }

  @Test
  void vmSetChangesARunningGuestsLoadTheHostsMeasureItAndAMigrationKeepsIt() throws Exception {
    zkServer = EmbeddedZooKeeper.standalone(freePort(), dir.resolve("zk"));
    ZkSettings settings = new ZkSettings(zkServer.connectString(), CREDENTIALS, 10_000);
    admin = ZkClients.start(settings);
    coordinator = new Coordinator("c1", settings, Coordinator.Options.DEFAULT.withLoadWindow(3));
    api = new ApiServer(coordinator, TOKEN).bind(new InetSocketAddress("127.0.0.1", 0));
    coordinator.start(url());
    await("the coordinator leads", coordinator::leading);
    hostA = agent("host-a", settings);
    hostB = agent("host-b", settings);
    await("both hosts up", () -> coordinator.view().isUp("host-a") && coordinator.view().isUp("host-b"));

    HttpResponse<String> badCreate = send("POST", "/v1/vms", create(1.5));
    assertEquals(400, badCreate.statusCode(), badCreate.body());
    assertTrue(error(badCreate).startsWith("workload.cpu_load: "), badCreate.body());
    HttpResponse<String> created = send("POST", "/v1/vms", create(0.05));
    assertEquals(201, created.statusCode(), created.body());
    await("web-1 runs on host-a", () -> vm().getPower() == PowerState.POWER_RUNNING);

    // Light load: reported, and well under what it will be.
    await("host-a reports web-1", () -> reported("host-a").isPresent());
    await("the coordinator's window shows web-1", () -> windowed().isPresent());
    double light = windowed().orElseThrow().getCpuCores();
    assertTrue(light < 0.3, "load 0.05 uses little CPU: " + light);
    assertEquals(4, hosts().getHosts(0).getRecord().getCpuCores(), "the capacity given with --cpu-capacity");

    // Bad settings are refused naming the field; nothing changes.
    for (String[] bad : new String[][] {{"{\"cpu_load\":1.5}", "workload.cpu_load: "},
        {"{\"cpu_load\":-0.1}", "workload.cpu_load: "}, {"{}", "cpu_load, dirty_rate_bytes_per_s: "},
        {"{\"cpu_load\":\"lots\"}", "cpu_load: "}, {"{\"dirty_rate_bytes_per_s\":\"-1\"}", "dirty_rate_bytes_per_s: "}}) {
      HttpResponse<String> refused = send("POST", "/v1/vms/web-1/settings", bad[0]);
      assertEquals(400, refused.statusCode(), bad[0] + " -> " + refused.body());
      assertTrue(error(refused).startsWith(bad[1]), bad[0] + " -> " + refused.body());
    }
    assertEquals(404, send("POST", "/v1/vms/web-9/settings", "{\"cpu_load\":0.5}").statusCode());
    assertEquals(0.05, vm().getSpec().getWorkload().getCpuLoad());

    // vm set: heavy load and a dirty rate, applied to the running guest without a restart.
    long epoch = vm().getEpoch();
    HttpResponse<String> set = send("POST", "/v1/vms/web-1/settings",
        "{\"cpu_load\":0.9,\"dirty_rate_bytes_per_s\":\"4194304\"}");
    assertEquals(200, set.statusCode(), set.body());
    await("host-a measures the new load and dirty rate", () -> reported("host-a")
        .filter(u -> u.getCpuCores() > Math.max(0.3, 3 * light) && u.getDirtyRateBytesPerS() > (1 << 20)).isPresent());
    await("the coordinator's window follows", () -> windowed().filter(u -> u.getCpuCores() > 0.3).isPresent());
    assertEquals(epoch, vm().getEpoch(), "no restart, no move");
    assertTrue(hosts().getHostsList().stream().anyMatch(h -> h.getRecord().getHostId().equals("host-a")
        && h.getCpuUsedCores() > 0.3), "the host's windowed CPU counts the busy guest: " + hosts());

    // A live migration: the target runs the VM with the demand from its record.
    HttpResponse<String> migrate = send("POST", "/v1/migrations", "{\"vm\":\"web-1\",\"target_host\":\"host-b\"}");
    assertEquals(201, migrate.statusCode(), migrate.body());
    await("web-1 runs on host-b", () -> {
      VmRecord v = vm();
      return v.getOwnerHost().equals("host-b") && v.getCurrentMigration().isEmpty()
          && v.getPower() == PowerState.POWER_RUNNING;
    });
    await("host-b measures web-1 with the same demand", () -> reported("host-b")
        .filter(u -> u.getCpuCores() > 0.3 && u.getDirtyRateBytesPerS() > (1 << 20)).isPresent());
    await("host-a no longer reports it", () -> reported("host-a").isEmpty());

    // Placement without --host is DRS's: by measured CPU against capacity, memory a second signal.
    // host-a now holds more memory (an idle 256 MiB VM) but no busy guest; host-b runs web-1 at
    // 0.9 cores. A placement by free memory (or by the hosts' OS figures, one machine's here) would
    // pick host-b.
    assertEquals(201, send("POST", "/v1/vms", vmRequest("idle-1", "256MiB", 0, "host-a")).statusCode());
    await("the window shows web-1's load on host-b", () -> windowed().filter(u -> u.getCpuCores() > 0.3).isPresent()
        && unchecked(this::hosts).getHostsList().stream().anyMatch(h -> h.getRecord().getHostId().equals("host-b")
            && h.getVmsList().contains("web-1")));
    HttpResponse<String> placed = send("POST", "/v1/vms", vmRequest("new-1", "64MiB", 0.1, ""));
    assertEquals(201, placed.statusCode(), placed.body());
    VmRecord.Builder newVm = VmRecord.newBuilder();
    JsonFormat.parser().ignoringUnknownFields().merge(placed.body(), newVm);
    assertEquals("host-a", newVm.getOwnerHost(), "placed away from the busy host: " + placed.body());
  }

  private static String vmRequest(String name, String memory, double cpuLoad, String host) throws Exception {
    var spec = dev.ferry.common.Specs.guest(name, memory, 1, "0", null, 20, 80, "mixed", 1);
    spec = spec.toBuilder().setWorkload(spec.getWorkload().toBuilder().setCpuLoad(cpuLoad)).build();
    return JsonFormat.printer().preservingProtoFieldNames().print(dev.ferry.proto.CreateVmRequest.newBuilder()
        .setSpec(spec).setHost(host).build());
  }

  private static String create(double cpuLoad) throws Exception {
    var spec = dev.ferry.common.Specs.guest("web-1", "64MiB", 1, "0", null, 20, 80, "mixed", 1);
    spec = spec.toBuilder().setWorkload(spec.getWorkload().toBuilder().setCpuLoad(cpuLoad)).build();
    return JsonFormat.printer().preservingProtoFieldNames().print(dev.ferry.proto.CreateVmRequest.newBuilder()
        .setSpec(spec).setHost("host-a").build());
  }

  private VmRecord vm() {
    return Records.vm(ZkPaths.vm("web-1"), unchecked(() -> admin.getData().forPath(ZkPaths.vm("web-1"))));
  }

  /** web-1's usage in the host's record, as the agent last wrote it. */
  private Optional<VmUsage> reported(String host) {
    HostRecord record = Records.host(ZkPaths.host(host), unchecked(() -> admin.getData().forPath(ZkPaths.host(host))));
    return record.getVmUsageList().stream().filter(u -> u.getVm().equals("web-1")).findFirst();
  }

  /** web-1's windowed usage as 'ferry vms' shows it. */
  private Optional<VmUsage> windowed() {
    VmList.Builder list = VmList.newBuilder();
    unchecked(() -> {
      JsonFormat.parser().merge(send("GET", "/v1/vms", null).body(), list);
      return null;
    });
    return list.getUsageList().stream().filter(u -> u.getVm().equals("web-1")).findFirst();
  }

  private HostList hosts() throws Exception {
    HostList.Builder list = HostList.newBuilder();
    JsonFormat.parser().merge(send("GET", "/v1/hosts", null).body(), list);
    return list.build();
  }

  private interface Call<T> {
    T call() throws Exception;
  }

  private static <T> T unchecked(Call<T> call) {
    try {
      return call.call();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private HttpResponse<String> send(String method, String path, String body) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create(url() + path)).timeout(Duration.ofSeconds(10))
        .header("Authorization", "Bearer " + TOKEN)
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
        .build(), HttpResponse.BodyHandlers.ofString());
  }

  private static String error(HttpResponse<String> response) throws Exception {
    ApiError.Builder error = ApiError.newBuilder();
    JsonFormat.parser().merge(response.body(), error);
    return error.getError();
  }

  private String url() {
    return "http://127.0.0.1:" + api.boundAddress().getPort();
  }

  private static int freePort() throws Exception {
    try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private static void await(String what, BooleanSupplier condition) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting until " + what);
      }
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
    }
  }
}
