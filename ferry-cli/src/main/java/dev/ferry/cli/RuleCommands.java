package dev.ferry.cli;

import dev.ferry.common.Table;
import dev.ferry.proto.PlacementRule;
import dev.ferry.proto.RuleKind;
import dev.ferry.proto.RuleList;
import java.io.IOException;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code ferry rule add|ls|rm}: the placement rules DRS and placement obey. */
@Command(name = "rule", mixinStandardHelpOptions = true,
    description = {"Placement rules: VMs together or apart, or a VM on a host.",
        "Affinity keeps VMs on one host, anti-affinity on different hosts, vm-host a VM on a host (must or",
        "should). Kept in ZooKeeper by the leading coordinator; they survive a failover."},
    subcommands = {RuleCommands.Add.class, RuleCommands.Ls.class, RuleCommands.Rm.class})
final class RuleCommands implements Runnable {
  @picocli.CommandLine.Spec
  picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  @Command(name = "add", mixinStandardHelpOptions = true,
      description = {"Add a rule. Its VMs (and a vm-host rule's host) must exist; a name is taken once, and a",
          "rule is never changed: remove it and add it again. Affinity and anti-affinity name 2 to 64 VMs."},
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Added.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "4:Refused (name taken, unknown VM or host, bad rule).",
          "6:Wrong API token."})
  static final class Add extends ClusterCommand {
    @Parameters(paramLabel = "NAME", description = "The rule's name (letters, digits, '.', '_', '-').")
    String name;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Kind kind;

    static final class Kind {
      @Option(names = "--affinity", split = ",", paramLabel = "VM", required = true,
          description = "Run these VMs on one host.")
      List<String> affinity;

      @Option(names = "--anti-affinity", split = ",", paramLabel = "VM", required = true,
          description = "Run these VMs on different hosts.")
      List<String> antiAffinity;

      @ArgGroup(exclusive = false)
      VmHost vmHost;
    }

    static final class VmHost {
      @Option(names = "--vm", paramLabel = "VM", required = true, description = "A vm-host rule's VM.")
      String vm;

      @Option(names = "--host", paramLabel = "HOST", required = true, description = "A vm-host rule's host.")
      String host;

      // Checked in rule(): picocli's own message for a nested group says little to an operator.
      @Option(names = "--must", description = "The VM runs on the host, never elsewhere.")
      boolean must;

      @Option(names = "--should", description = "The VM runs on the host when it can.")
      boolean should;
    }

    /** The rule is checked before the client is set up: a contradiction is named, whatever else is missing. */
    @Override
    public Integer call() {
      try {
        rule();
      } catch (dev.ferry.common.InvalidConfigException e) {
        spec.commandLine().getErr().println(spec.qualifiedName() + ": " + e.getMessage());
        return dev.ferry.common.ExitCodes.USAGE;
      }
      return super.call();
    }

    @Override
    int run(ApiClient api) throws IOException {
      PlacementRule rule = api.post("v1/rules", rule(), PlacementRule.newBuilder()).build();
      out().println("rule " + rule.getName() + " added: " + describe(rule));
      return 0;
    }

    /** The request, as parsed. */
    PlacementRule rule() {
      PlacementRule.Builder rule = PlacementRule.newBuilder().setName(name);
      if (kind.affinity != null) {
        rule.setKind(RuleKind.RULE_AFFINITY).addAllVms(atLeastTwo("--affinity", kind.affinity));
      } else if (kind.antiAffinity != null) {
        rule.setKind(RuleKind.RULE_ANTI_AFFINITY).addAllVms(atLeastTwo("--anti-affinity", kind.antiAffinity));
      } else {
        VmHost vmHost = kind.vmHost;
        if (vmHost.must == vmHost.should) {
          throw new dev.ferry.common.InvalidConfigException("--must/--should", vmHost.must
              ? "give one of them, not both" : "give one of them: must (never elsewhere) or should (when it can)");
        }
        rule.setKind(vmHost.must ? RuleKind.RULE_VM_HOST_MUST : RuleKind.RULE_VM_HOST_SHOULD)
            .addVms(vmHost.vm).setHost(vmHost.host);
      }
      return rule.build();
    }

    private static List<String> atLeastTwo(String option, List<String> vms) {
      if (vms.size() < 2) {
        throw new dev.ferry.common.InvalidConfigException(option, "name at least 2 VMs (VM,VM...), got " + vms.size());
      }
      return vms;
    }
  }

  @Command(name = "ls", mixinStandardHelpOptions = true, description = "List the rules.",
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Success.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "4:Refused.", "6:Wrong API token."})
  static final class Ls extends ClusterCommand {
    @Option(names = "--json", description = "Print the API's JSON.")
    boolean json;

    @Override
    int run(ApiClient api) throws IOException {
      RuleList rules = api.get("v1/rules", RuleList.newBuilder()).build();
      if (json) {
        out().println(ApiClient.json(rules));
        return 0;
      }
      if (rules.getRulesCount() == 0) {
        out().println("(no rules)");
        return 0;
      }
      table(rules).print(out());
      return 0;
    }
  }

  @Command(name = "rm", mixinStandardHelpOptions = true, description = "Remove a rule.",
      exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Removed.", "2:Invalid command line.",
          "3:No coordinator could be reached.", "4:Refused (no such rule).", "6:Wrong API token."})
  static final class Rm extends ClusterCommand {
    @Parameters(paramLabel = "NAME")
    String name;

    @Override
    int run(ApiClient api) throws IOException {
      // Encoded: a name with '/' or '?' reaches the coordinator as one (refused) name, not another path.
      api.delete("v1/rules/" + java.net.URLEncoder.encode(name, java.nio.charset.StandardCharsets.UTF_8));
      out().println("rule " + name + " removed");
      return 0;
    }
  }

  static Table table(RuleList rules) {
    Table t = new Table("RULE", "KIND", "VMS", "HOST");
    for (PlacementRule r : rules.getRulesList()) {
      t.row(r.getName(), kind(r), String.join(",", r.getVmsList()), r.getHost());
    }
    return t;
  }

  /** RULE_VM_HOST_MUST -> vm-host-must. */
  static String kind(PlacementRule r) {
    return r.getKind() == RuleKind.UNRECOGNIZED ? "unknown-" + r.getKindValue()
        : r.getKind().name().replaceFirst("^RULE_", "").toLowerCase(Locale.ROOT).replace('_', '-');
  }

  /** "anti-affinity web-1,web-2" or "vm-host-must db-1 on host-a". */
  static String describe(PlacementRule r) {
    return kind(r) + " " + String.join(",", r.getVmsList()) + (r.getHost().isEmpty() ? "" : " on " + r.getHost());
  }
}
