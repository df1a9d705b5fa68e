package dev.ferry.cluster.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import dev.ferry.agent.cluster.EmbeddedZooKeeper;
import dev.ferry.agent.cluster.ZkClients;
import dev.ferry.agent.cluster.ZkSettings;
import dev.ferry.cluster.coordinator.Coordinator;
import dev.ferry.cluster.coordinator.Planner;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.proto.ApiError;
import dev.ferry.proto.ClusterEvent;
import dev.ferry.proto.DrsConfig;
import dev.ferry.proto.DrsMode;
import dev.ferry.proto.EventKind;
import dev.ferry.proto.EventList;
import dev.ferry.proto.HostInventory;
import dev.ferry.proto.HostList;
import dev.ferry.proto.HostView;
import dev.ferry.proto.MaintenanceState;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.RuleKind;
import dev.ferry.proto.RuleList;
import dev.ferry.proto.VmRecord;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.apache.curator.framework.CuratorFramework;
import org.apache.zookeeper.CreateMode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * DRS's settings, placement rules and maintenance mode through the API of two coordinators on a
 * real (embedded) ZooKeeper, hosts registered as their agents register them: every field is
 * checked and a bad one named, what is set survives a failover to the standby, and a host in
 * maintenance takes no new VM (create, migrate) until it exits.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class DrsRulesMaintenanceApiTest extends TwoCoordinatorsTestBase {

  @Override
  String credentials() {
    return "ferry:drs-api-test-secret";
  }

  @Test
  void drsSettingsRoundTripAndSurviveAFailoverToTheStandby() throws Exception {
    DrsConfig defaults = read(send(apiA, "GET", "/v1/drs/config", null), 200, DrsConfig.getDefaultInstance());
    assertEquals(DrsMode.DRS_FULL, defaults.getMode(), "fully automated until set, as vSphere");
    assertEquals(3, defaults.getThreshold());
    assertEquals(60, defaults.getIntervalSeconds());

    DrsConfig set = read(send(apiA, "PUT", "/v1/drs/config", "{\"mode\":\"DRS_MANUAL\",\"threshold\":4}"), 200,
        DrsConfig.getDefaultInstance());
    assertEquals(List.of(DrsMode.DRS_MANUAL, 4, 60), List.of(set.getMode(), set.getThreshold(), set.getIntervalSeconds()),
        "the fields given change, the interval keeps its value");
    assertEquals(a.epoch(), set.getCoordinatorEpoch());
    DrsConfig interval = read(send(apiA, "PUT", "/v1/drs/config", "{\"interval_seconds\":3600}"), 200,
        DrsConfig.getDefaultInstance());
    assertEquals(List.of(DrsMode.DRS_MANUAL, 4, 3600),
        List.of(interval.getMode(), interval.getThreshold(), interval.getIntervalSeconds()));
    assertEquals(503, send(apiB, "PUT", "/v1/drs/config", "{\"threshold\":1}").statusCode(), "a standby does not write");

    failover();
    DrsConfig afterFailover = read(send(apiB, "GET", "/v1/drs/config", null), 200, DrsConfig.getDefaultInstance());
    assertEquals(List.of(DrsMode.DRS_MANUAL, 4, 3600),
        List.of(afterFailover.getMode(), afterFailover.getThreshold(), afterFailover.getIntervalSeconds()));
    DrsConfig byB = read(send(apiB, "PUT", "/v1/drs/config", "{\"mode\":\"DRS_PARTIAL\"}"), 200, DrsConfig.getDefaultInstance());
    assertEquals(b.epoch(), byB.getCoordinatorEpoch(), "written under the new leader's epoch");
    List<String> changes = events(apiB).stream().filter(e -> e.getKind() == EventKind.EVENT_DRS_CONFIG_CHANGED)
        .map(ClusterEvent::getMessage).toList();
    assertEquals(3, changes.size(), changes.toString());
    assertEquals("DRS settings changed: DRS manual, threshold 4, every 60 s (was full, threshold 3, every 60 s)",
        changes.get(0));
  }

  @Test
  void badDrsSettingsAreRefusedNamingTheFieldAndNothingIsWritten() throws Exception {
    String[][] refused = {{"{\"threshold\":0}", "threshold: "}, {"{\"threshold\":6}", "threshold: "},
        {"{\"threshold\":-1}", "threshold: "}, {"{\"threshold\":4294967295}", "threshold: "},
        {"{\"mode\":\"DRS_FAST\"}", "mode: "}, {"{\"mode\":\"DRS_MODE_UNSPECIFIED\"}", "mode: "}, {"{\"mode\":7}", "mode: "},
        {"{\"interval_seconds\":4}", "interval_seconds: "}, {"{\"interval_seconds\":3601}", "interval_seconds: "},
        {"{\"threshold\":3,\"colour\":1}", "colour: "}};
    for (String[] body : refused) {
      HttpResponse<String> answer = send(apiA, "PUT", "/v1/drs/config", body[0]);
      assertEquals(400, answer.statusCode(), body[0] + ": " + answer.body());
      assertTrue(error(answer).startsWith(body[1]), body[0] + ": " + answer.body());
    }
    assertNull(admin.checkExists().forPath(ZkPaths.DRS_CONFIG), "nothing was written");
    assertEquals("threshold: must be 1 to 5, not 6",
        error(send(apiA, "PUT", "/v1/drs/config", "{\"threshold\":6}")));
  }

  @Test
  void rulesAreAddedListedAndRemovedAndBadOnesRefusedNamingTheField() throws Exception {
    registerHost("h1");
    createVm("web-1", "");
    createVm("web-2", "");
    HttpResponse<String> added = send(apiA, "POST", "/v1/rules",
        "{\"name\":\"apart\",\"kind\":\"RULE_ANTI_AFFINITY\",\"vms\":[\"web-1\",\"web-2\"]}");
    assertEquals(201, added.statusCode(), added.body());
    assertEquals(201, send(apiA, "POST", "/v1/rules",
        "{\"name\":\"pinned\",\"kind\":\"RULE_VM_HOST_MUST\",\"vms\":[\"web-1\"],\"host\":\"h1\"}").statusCode());
    assertEquals(409, send(apiA, "POST", "/v1/rules",
        "{\"name\":\"apart\",\"kind\":\"RULE_AFFINITY\",\"vms\":[\"web-1\",\"web-2\"]}").statusCode(), "a name is taken once");

    String[][] refused = {
        {"{\"name\":\"one\",\"kind\":\"RULE_AFFINITY\",\"vms\":[\"web-1\"]}", "vms: "},
        {"{\"name\":\"twice\",\"kind\":\"RULE_AFFINITY\",\"vms\":[\"web-1\",\"web-1\"]}", "vms: "},
        {"{\"name\":\"near\",\"kind\":\"RULE_NEAR\",\"vms\":[\"web-1\",\"web-2\"]}", "kind: "},
        {"{\"name\":\"nokind\",\"vms\":[\"web-1\",\"web-2\"]}", "kind: "},
        {"{\"name\":\"two\",\"kind\":\"RULE_VM_HOST_SHOULD\",\"vms\":[\"web-1\",\"web-2\"],\"host\":\"h1\"}", "vms: "},
        {"{\"name\":\"nohost\",\"kind\":\"RULE_VM_HOST_MUST\",\"vms\":[\"web-1\"]}", "host: "},
        {"{\"name\":\"hosted\",\"kind\":\"RULE_AFFINITY\",\"vms\":[\"web-1\",\"web-2\"],\"host\":\"h1\"}", "host: "},
        {"{\"name\":\"../x\",\"kind\":\"RULE_AFFINITY\",\"vms\":[\"web-1\",\"web-2\"]}", "name: "},
        {"{\"name\":\"bad-vm\",\"kind\":\"RULE_AFFINITY\",\"vms\":[\"web-1\",\"a b\"]}", "vms: "}};
    for (String[] body : refused) {
      HttpResponse<String> answer = send(apiA, "POST", "/v1/rules", body[0]);
      assertEquals(400, answer.statusCode(), body[0] + ": " + answer.body());
      assertTrue(error(answer).startsWith(body[1]), body[0] + ": " + answer.body());
    }
    HttpResponse<String> unknownVm = send(apiA, "POST", "/v1/rules",
        "{\"name\":\"ghost\",\"kind\":\"RULE_AFFINITY\",\"vms\":[\"web-1\",\"web-9\"]}");
    assertEquals(409, unknownVm.statusCode());
    assertEquals("vms: there is no VM named web-9", error(unknownVm));
    assertEquals("host: there is no host named h9", error(send(apiA, "POST", "/v1/rules",
        "{\"name\":\"ghost\",\"kind\":\"RULE_VM_HOST_SHOULD\",\"vms\":[\"web-1\"],\"host\":\"h9\"}")));

    RuleList rules = read(send(apiA, "GET", "/v1/rules", null), 200, RuleList.getDefaultInstance());
    assertEquals(List.of("apart", "pinned"), rules.getRulesList().stream().map(r -> r.getName()).toList());
    assertEquals(RuleKind.RULE_ANTI_AFFINITY, rules.getRules(0).getKind());
    assertEquals(List.of("web-1", "web-2"), rules.getRules(0).getVmsList());
    assertEquals("h1", rules.getRules(1).getHost());

    failover();
    assertEquals(2, read(send(apiB, "GET", "/v1/rules", null), 200, RuleList.getDefaultInstance()).getRulesCount(),
        "the rules survive a failover");
    assertEquals(204, send(apiB, "DELETE", "/v1/rules/apart", null).statusCode());
    assertEquals(404, send(apiB, "DELETE", "/v1/rules/apart", null).statusCode());
    assertEquals(400, send(apiB, "DELETE", "/v1/rules/a%20b", null).statusCode());
    assertEquals(List.of("pinned"), read(send(apiB, "GET", "/v1/rules", null), 200, RuleList.getDefaultInstance())
        .getRulesList().stream().map(r -> r.getName()).toList());
    List<String> ruleEvents = events(apiB).stream().filter(e -> e.getKind() == EventKind.EVENT_RULE_ADDED
        || e.getKind() == EventKind.EVENT_RULE_REMOVED).map(ClusterEvent::getMessage).toList();
    assertEquals(List.of("rule apart added: anti-affinity: web-1, web-2", "rule pinned added: vm-host (must): web-1 on h1",
        "rule apart removed (anti-affinity: web-1, web-2)"), ruleEvents);
  }

  @Test
  void aHostInMaintenanceTakesNoNewVmsAndItSurvivesAFailoverAndTheAgentsRestart() throws Exception {
    // Two small hosts: HA's admission control (room for one host failure) would refuse the VMs
    // this test places; it is not what this test is about.
    assertEquals(200, send(apiA, "POST", "/v1/ha", "{\"failover_hosts\":0}").statusCode());
    registerHost("h1");
    registerHost("h2");
    createVm("web-1", "h1");
    await("both hosts are in the inventory", () -> a.view().inventory().size() == 2);

    HostView entering = read(send(apiA, "POST", "/v1/hosts/h2/maintenance", "{\"action\":\"enter\"}"), 200,
        HostView.getDefaultInstance());
    assertTrue(entering.getMaintenance() != MaintenanceState.MAINTENANCE_NONE, entering.toString());
    // Nothing runs on h2: the leader's round finds it empty and it is in maintenance.
    await("h2 is in maintenance", () -> inventory("h2").getMaintenance() == MaintenanceState.MAINTENANCE_IN);
    assertTrue(inventory("h2").getMaintenanceSinceMs() > 0);

    HttpResponse<String> createThere = send(apiA, "POST", "/v1/vms", createRequest("web-2", "h2"));
    assertEquals(409, createThere.statusCode(), createThere.body());
    assertEquals("h2 is in maintenance: it takes no new VMs", error(createThere));
    // Placement without a host skips it (h1 has room).
    VmRecord placed = read(send(apiA, "POST", "/v1/vms", createRequest("web-3", "")), 201, VmRecord.getDefaultInstance());
    assertEquals("h1", placed.getOwnerHost());
    // web-1 runs on h1 (as its agent would report), so only the maintenance can refuse the move.
    reportRunning("web-1");
    HttpResponse<String> migrate = send(apiA, "POST", "/v1/migrations", "{\"vm\":\"web-1\",\"target_host\":\"h2\"}");
    assertEquals(409, migrate.statusCode(), migrate.body());
    assertEquals("h2 is in maintenance: it takes no new VMs", error(migrate));

    // h1 runs VMs: it is entering maintenance and stays so (the drain has nowhere to take them:
    // h2 is in maintenance too, and no agent runs here to migrate them).
    HostView h1 = read(send(apiA, "POST", "/v1/hosts/h1/maintenance", "{\"action\":\"enter\"}"), 200,
        HostView.getDefaultInstance());
    assertEquals(MaintenanceState.MAINTENANCE_ENTERING, h1.getMaintenance());
    assertEquals("h1 is entering maintenance: it takes no new VMs",
        error(send(apiA, "POST", "/v1/vms", createRequest("web-4", "h1"))));
    assertEquals("no host is active (each is in or entering maintenance, or down)",
        error(send(apiA, "POST", "/v1/vms", createRequest("web-4", ""))), "placement finds no host out of maintenance");

    // The agent of h2 restarts: its node goes (host lost) and comes back; the maintenance stays.
    admin.delete().forPath(ZkPaths.host("h2"));
    await("h2 is marked down", () -> !inventory("h2").getUp());
    registerHost("h2");
    await("h2 is marked up", () -> inventory("h2").getUp());
    assertEquals(MaintenanceState.MAINTENANCE_IN, inventory("h2").getMaintenance());

    failover();
    HostList hosts = read(send(apiB, "GET", "/v1/hosts", null), 200, HostList.getDefaultInstance());
    assertEquals(List.of(MaintenanceState.MAINTENANCE_ENTERING, MaintenanceState.MAINTENANCE_IN),
        hosts.getHostsList().stream().map(HostView::getMaintenance).toList(), "the new leader's view");
    assertEquals("h2 is in maintenance: it takes no new VMs",
        error(send(apiB, "POST", "/v1/vms", createRequest("web-5", "h2"))));

    HostView back = read(send(apiB, "POST", "/v1/hosts/h2/maintenance", "{\"action\":\"exit\"}"), 200,
        HostView.getDefaultInstance());
    assertEquals(MaintenanceState.MAINTENANCE_NONE, back.getMaintenance());
    await("the leader sees h2 back in service", () -> b.view().maintenance("h2").isEmpty());
    assertEquals("h2", read(send(apiB, "POST", "/v1/vms", createRequest("web-5", "h2")), 201, VmRecord.getDefaultInstance())
        .getOwnerHost(), "back in service, it takes new VMs");

    assertEquals("action: must be enter or exit, not 'pause'",
        error(send(apiB, "POST", "/v1/hosts/h2/maintenance", "{\"action\":\"pause\"}")));
    assertEquals(404, send(apiB, "POST", "/v1/hosts/h9/maintenance", "{\"action\":\"enter\"}").statusCode());
    assertTrue(error(send(apiB, "POST", "/v1/hosts/a%20b/maintenance", "{\"action\":\"enter\"}")).startsWith("host: "));
    List<String> maintenance = events(apiB).stream().filter(e -> e.getKind() == EventKind.EVENT_MAINTENANCE_ENTERED
        || e.getKind() == EventKind.EVENT_MAINTENANCE_EXITED).map(ClusterEvent::getMessage).toList();
    assertEquals(List.of("host h2 is entering maintenance: it takes no new VMs",
        "host h2 is in maintenance (no VM runs on it)",
        "host h1 is entering maintenance: it takes no new VMs (2 VMs run on it)",
        "host h2 is back in service"), maintenance);
  }

  /** a stops; b takes the lead and has loaded the records. */
  private void failover() throws Exception {
    apiA.close();
    a.close();
    await("b leads and serves", () -> {
      try {
        return b.leading() && send(apiB, "GET", "/v1/vms", null).statusCode() == 200;
      } catch (Exception e) {
        throw new AssertionError(e);
      }
    });
  }

  /** The host's registration, as its agent writes it. */
  private void registerHost(String id) throws Exception {
    admin.create().creatingParentsIfNeeded().withMode(CreateMode.EPHEMERAL)
        .forPath(ZkPaths.host(id), Records.bytes(dev.ferry.proto.HostRecord.newBuilder()
            .setFormatVersion(Records.FORMAT).setHostId(id).setAddress("127.0.0.1:1").setCpuCores(2)
            .setMemoryBytes(160L << 20).setCpuModel("test").setState(dev.ferry.proto.HostState.HOST_ACTIVE)
            .setUpdatedMs(System.currentTimeMillis()).build()));
    await("the leader sees " + id, () -> a.view().isUp(id) || b.leading() && b.view().isUp(id));
  }

  /** What the owner's agent writes once the guest runs. */
  private void reportRunning(String vm) throws Exception {
    VmRecord record = Records.vm(ZkPaths.vm(vm), admin.getData().forPath(ZkPaths.vm(vm)));
    admin.setData().forPath(ZkPaths.vm(vm), Records.bytes(record.toBuilder().setPower(PowerState.POWER_RUNNING).build()));
    await("the leader sees " + vm + " running", () -> a.view().vms().get(vm).getPower() == PowerState.POWER_RUNNING);
  }

  private HostInventory inventory(String host) throws Exception {
    return Records.inventory(ZkPaths.inventory(host), admin.getData().forPath(ZkPaths.inventory(host)));
  }

  private void createVm(String name, String host) throws Exception {
    read(send(apiA, "POST", "/v1/vms", createRequest(name, host)), 201, VmRecord.getDefaultInstance());
  }

  private static String createRequest(String name, String host) throws Exception {
    return JsonFormat.printer().preservingProtoFieldNames().print(dev.ferry.proto.CreateVmRequest.newBuilder()
        .setSpec(dev.ferry.common.Specs.guest(name, "64MiB", 1, "0", null, 20, 80, "mixed", 1)).setHost(host).build());
  }

  private List<ClusterEvent> events(ApiServer api) throws Exception {
    return read(send(api, "GET", "/v1/events?limit=1000", null), 200, EventList.getDefaultInstance()).getEventsList();
  }

  @SuppressWarnings("unchecked")
  private static <T extends Message> T read(HttpResponse<String> answer, int status, T type) throws Exception {
    assertEquals(status, answer.statusCode(), answer.body());
    Message.Builder into = type.newBuilderForType();
    JsonFormat.parser().merge(answer.body(), into);
    return (T) into.build();
  }

  private static String error(HttpResponse<String> response) throws Exception {
    ApiError.Builder error = ApiError.newBuilder();
    JsonFormat.parser().merge(response.body(), error);
    return error.getError();
  }

  private HttpResponse<String> send(ApiServer api, String method, String path, String body) throws Exception {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url(api) + path)).timeout(Duration.ofSeconds(10))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
        .header("Authorization", "Bearer " + TOKEN);
    return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static void await(String what, Callable<Boolean> condition) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!condition.call()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting until " + what);
      }
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(50));
    }
  }
}
