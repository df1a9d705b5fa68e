package dev.ferry.cluster.coordinator;

import dev.ferry.proto.PlacementRule;
import dev.ferry.proto.RuleKind;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

/** What a placement rule an operator asks for must be: every field checked, the error names it. Pure. */
public final class PlacementRules {
  /** Rules on record at most: each is a node the DRS run reads. */
  public static final int RULES_MAX = 1000;
  /** VMs in one affinity or anti-affinity rule at most. */
  public static final int VMS_MAX = 64;
  /** Names of rules, VMs and hosts: as the API checks VM and host names. */
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.\\-]{0,62}");

  private PlacementRules() {}

  /** Refused (400) unless {@code rule} is a complete, well-formed rule. */
  public static void validate(PlacementRule rule) throws Refused {
    name("name", rule.getName());
    RuleKind kind = rule.getKind();
    switch (kind) {
      case RULE_AFFINITY, RULE_ANTI_AFFINITY -> {
        if (rule.getVmsCount() < 2 || rule.getVmsCount() > VMS_MAX) {
          throw new Refused(400, "vms: an " + kind(kind) + " rule names 2 to " + VMS_MAX + " VMs, not "
              + rule.getVmsCount());
        }
        if (!rule.getHost().isEmpty()) {
          throw new Refused(400, "host: only a vm-host rule names a host");
        }
      }
      case RULE_VM_HOST_MUST, RULE_VM_HOST_SHOULD -> {
        if (rule.getVmsCount() != 1) {
          throw new Refused(400, "vms: a vm-host rule names exactly one VM, not " + rule.getVmsCount());
        }
        name("host", rule.getHost());
      }
      default -> throw new Refused(400, "kind: must be RULE_AFFINITY, RULE_ANTI_AFFINITY, RULE_VM_HOST_MUST or "
          + "RULE_VM_HOST_SHOULD, not " + (kind == RuleKind.UNRECOGNIZED ? String.valueOf(rule.getKindValue())
              : kind.name()));
    }
    Set<String> seen = new HashSet<>();
    for (String vm : rule.getVmsList()) {
      name("vms", vm);
      if (!seen.add(vm)) {
        throw new Refused(400, "vms: " + vm + " is named twice");
      }
    }
  }

  /** RULE_ANTI_AFFINITY -> anti-affinity; RULE_VM_HOST_MUST -> vm-host (must). */
  public static String kind(RuleKind kind) {
    return switch (kind) {
      case RULE_AFFINITY -> "affinity";
      case RULE_ANTI_AFFINITY -> "anti-affinity";
      case RULE_VM_HOST_MUST -> "vm-host (must)";
      case RULE_VM_HOST_SHOULD -> "vm-host (should)";
      default -> kind.name().toLowerCase(Locale.ROOT);
    };
  }

  /** One line: "anti-affinity: web-1, web-2" or "vm-host (must): db-1 on host-a". */
  public static String describe(PlacementRule rule) {
    String vms = String.join(", ", rule.getVmsList());
    return kind(rule.getKind()) + ": " + vms + (rule.getHost().isEmpty() ? "" : " on " + rule.getHost());
  }

  private static void name(String field, String value) throws Refused {
    if (!NAME.matcher(value).matches()) {
      String shown = value.length() <= 48 ? value : value.substring(0, 48) + "... (" + value.length() + " characters)";
      throw new Refused(400, field + ": '" + shown + "' is not a name (letters, digits, '.', '_', '-'; at most 63)");
    }
  }
}
