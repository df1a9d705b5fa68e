package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.common.ExitCodes;
import dev.ferry.proto.DrsConfig;
import dev.ferry.proto.DrsMode;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.HostView;
import dev.ferry.proto.MaintenanceBlock;
import dev.ferry.proto.MaintenanceState;
import dev.ferry.proto.PlacementRule;
import dev.ferry.proto.RuleKind;
import dev.ferry.proto.RuleList;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * 'ferry drs config', 'ferry rule add|ls' and 'ferry host maintenance': what they parse into the
 * API's requests, what they refuse before any request (exit code 2, naming the option), and how
 * they print.
 */
class DrsRuleHostCommandsTest {
  @TempDir
  Path dir;

  /** The parsed subcommand of {@code args}. */
  private static Object parse(String... args) {
    CommandLine.ParseResult result = Ferry.commandLine().parseArgs(args);
    while (result.hasSubcommand()) {
      result = result.subcommand();
    }
    return result.commandSpec().userObject();
  }

  @Test
  void ruleAddParsesEachKindIntoTheRequest() {
    RuleCommands.Add anti = (RuleCommands.Add) parse("rule", "add", "apart", "--anti-affinity", "web-1,web-2,web-3");
    assertEquals(PlacementRule.newBuilder().setName("apart").setKind(RuleKind.RULE_ANTI_AFFINITY)
        .addAllVms(List.of("web-1", "web-2", "web-3")).build(), anti.rule());
    RuleCommands.Add together = (RuleCommands.Add) parse("rule", "add", "pair", "--affinity", "a,b");
    assertEquals(RuleKind.RULE_AFFINITY, together.rule().getKind());
    RuleCommands.Add must = (RuleCommands.Add) parse("rule", "add", "pin", "--vm", "db-1", "--host", "host-a", "--must");
    assertEquals(PlacementRule.newBuilder().setName("pin").setKind(RuleKind.RULE_VM_HOST_MUST).addVms("db-1")
        .setHost("host-a").build(), must.rule());
    RuleCommands.Add should = (RuleCommands.Add) parse("rule", "add", "pin", "--should", "--host", "h", "--vm", "v");
    assertEquals(RuleKind.RULE_VM_HOST_SHOULD, should.rule().getKind());
  }

  @Test
  void contradictoryOrIncompleteRulesAndSettingsAreRefusedBeforeAnyRequest() throws Exception {
    String[][] refused = {
        {"rule", "add", "pin", "--vm", "db-1", "--host", "host-a", "--must", "--should"},
        {"rule", "add", "pin", "--vm", "db-1", "--host", "host-a"},
        {"rule", "add", "pin", "--vm", "db-1", "--must"},
        {"rule", "add", "mixed", "--affinity", "a,b", "--anti-affinity", "c,d"},
        {"rule", "add", "one", "--affinity", "a"},
        {"rule", "add", "pin", "--vm", "db-1", "--must", "--host", "h", "--affinity", "a,b"},
        {"rule", "add", "none"},
        {"drs", "config", "--mode", "fast"},
        {"drs", "config", "--threshold", "0"},
        {"drs", "config", "--threshold", "6"},
        {"drs", "config", "--interval", "4"},
        {"host", "maintenance", "enter"}};
    Path token = Files.writeString(dir.resolve("token"), "cli-test-token-0123456789\n");
    for (String[] args : refused) {
      StringWriter err = new StringWriter();
      CommandLine cli = Ferry.commandLine();
      cli.setErr(new PrintWriter(err, true));
      cli.setOut(new PrintWriter(new StringWriter(), true));
      String[] withClient = java.util.stream.Stream.concat(java.util.Arrays.stream(args),
          java.util.stream.Stream.of("--coordinator", "http://127.0.0.1:1", "--token-file", token.toString()))
          .toArray(String[]::new);
      // Nothing listens on port 1: a request would exit 3, not 2.
      assertEquals(ExitCodes.USAGE, cli.execute(withClient), String.join(" ", args) + ": " + err);
    }
    assertTrue(errorOf(token, "drs", "config", "--threshold", "6").contains("--threshold: must be 1 to 5, got 6"));
    assertTrue(errorOf(token, "rule", "add", "pin", "--vm", "db-1", "--host", "host-a", "--must", "--should")
        .contains("--must/--should: give one of them, not both"));
    assertTrue(errorOf(token, "rule", "add", "one", "--affinity", "web-1")
        .contains("--affinity: name at least 2 VMs (VM,VM...), got 1"));
  }

  private static String errorOf(Path token, String... args) {
    StringWriter err = new StringWriter();
    CommandLine cli = Ferry.commandLine();
    cli.setErr(new PrintWriter(err, true));
    cli.setOut(new PrintWriter(new StringWriter(), true));
    String[] withClient = java.util.stream.Stream.concat(java.util.Arrays.stream(args),
        java.util.stream.Stream.of("--coordinator", "http://127.0.0.1:1", "--token-file", token.toString()))
        .toArray(String[]::new);
    assertEquals(ExitCodes.USAGE, cli.execute(withClient), err.toString());
    return err.toString();
  }

  @Test
  void drsConfigSendsOnlyTheFieldsGiven() {
    DrsCommands.Config config = (DrsCommands.Config) parse("drs", "config", "--threshold", "2");
    assertEquals(dev.ferry.proto.DrsConfigRequest.newBuilder().setThreshold(2).build(), config.request());
    assertTrue(!config.request().hasMode() && !config.request().hasIntervalSeconds());
    DrsCommands.Config all = (DrsCommands.Config) parse("drs", "config", "--mode", "partial", "--threshold", "5",
        "--interval", "3600");
    assertEquals(DrsMode.DRS_PARTIAL, all.request().getMode());
    assertEquals(3600, all.request().getIntervalSeconds());
  }

  @Test
  void settingsRulesAndMaintenanceArePrintedAsTheOperatorReadsThem() {
    assertEquals("DRS: full, threshold 3, every 60 s (the defaults: never set)", DrsCommands.describe(DrsConfig
        .newBuilder().setMode(DrsMode.DRS_FULL).setThreshold(3).setIntervalSeconds(60).build()));
    assertEquals("DRS: manual, threshold 1, every 5 s", DrsCommands.describe(DrsConfig.newBuilder()
        .setMode(DrsMode.DRS_MANUAL).setThreshold(1).setIntervalSeconds(5).setUpdatedMs(1).build()));

    RuleList rules = RuleList.newBuilder()
        .addRules(PlacementRule.newBuilder().setName("apart").setKind(RuleKind.RULE_ANTI_AFFINITY).addVms("web-1")
            .addVms("web-2"))
        .addRules(PlacementRule.newBuilder().setName("pin").setKind(RuleKind.RULE_VM_HOST_SHOULD).addVms("db-1")
            .setHost("host-a")).build();
    StringWriter table = new StringWriter();
    RuleCommands.table(rules).print(new PrintWriter(table, true));
    List<String> lines = table.toString().lines().map(String::strip).toList();
    assertTrue(lines.get(0).matches("RULE\\s+KIND\\s+VMS\\s+HOST"), lines.toString());
    assertTrue(lines.get(1).matches("apart\\s+anti-affinity\\s+web-1,web-2\\s+-"), lines.toString());
    assertTrue(lines.get(2).matches("pin\\s+vm-host-should\\s+db-1\\s+host-a"), lines.toString());

    HostView host = HostView.newBuilder().setUp(true).setRecord(HostRecord.newBuilder().setHostId("host-b")).build();
    assertEquals("active", ListCommands.Hosts.state(host.toBuilder().setRecord(host.getRecord().toBuilder()
        .setState(dev.ferry.proto.HostState.HOST_ACTIVE)).build()));
    assertEquals("in-maintenance", ListCommands.Hosts.state(host.toBuilder()
        .setMaintenance(MaintenanceState.MAINTENANCE_IN).build()));
    assertEquals("entering-maintenance (1 VM blocked: db-1: a must rule keeps it on host-b)",
        ListCommands.Hosts.state(host.toBuilder().setMaintenance(MaintenanceState.MAINTENANCE_ENTERING)
            .addBlocked(MaintenanceBlock.newBuilder().setVm("db-1").setReason("a must rule keeps it on host-b")).build()));
  }
}
