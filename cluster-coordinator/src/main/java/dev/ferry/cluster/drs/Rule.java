package dev.ferry.cluster.drs;

import java.util.HashSet;
import java.util.List;

/**
 * A placement rule. Affinity and anti-affinity are hard: DRS never makes a move that breaks one,
 * and repairs a broken one with mandatory moves. A VM-host rule is hard when {@code must}, a
 * weight otherwise. A rule may name a VM or host that does not exist (yet).
 */
public sealed interface Rule permits Rule.Affinity, Rule.AntiAffinity, Rule.VmHost {
  int MAX_GROUP = 1000;

  String name();

  /** These VMs run on one host. */
  record Affinity(String name, List<String> vms) implements Rule {
    public Affinity {
      vms = group(name, vms);
    }
  }

  /** No two of these VMs run on one host. */
  record AntiAffinity(String name, List<String> vms) implements Rule {
    public AntiAffinity {
      vms = group(name, vms);
    }
  }

  /** {@code vm} runs on {@code host}: always ({@code must}), or preferably. */
  record VmHost(String name, String vm, String host, boolean must) implements Rule {
    public VmHost {
      Checks.name("rule name", name);
      Checks.name("rule " + name + " vm", vm);
      Checks.name("rule " + name + " host", host);
    }
  }

  private static List<String> group(String name, List<String> vms) {
    Checks.name("rule name", name);
    if (vms == null || vms.size() < 2 || vms.size() > MAX_GROUP) {
      throw new IllegalArgumentException("rule " + name + " vms: needs 2 to " + MAX_GROUP + " VMs");
    }
    if (new HashSet<>(vms).size() != vms.size()) {
      throw new IllegalArgumentException("rule " + name + " vms: a VM is named twice");
    }
    vms.forEach(vm -> Checks.name("rule " + name + " vm", vm));
    return List.copyOf(vms);
  }
}
