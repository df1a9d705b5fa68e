package dev.ferry.cluster.drs;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Everything DRS decides from, at {@code nowMillis} (the coordinator's clock: DRS has none).
 * Hosts and VMs are unique by id and name; a VM's host and an in-flight migration's hosts are
 * hosts of the snapshot.
 */
public record Snapshot(List<Host> hosts, List<Vm> vms, List<Rule> rules, DrsConfig config, List<InFlight> inFlight,
    long nowMillis) {
  public static final int MAX_HOSTS = 100_000;
  public static final int MAX_VMS = 2_000_000;
  public static final int MAX_RULES = 1_000_000;

  public Snapshot {
    hosts = List.copyOf(hosts);
    vms = List.copyOf(vms);
    rules = List.copyOf(rules);
    inFlight = List.copyOf(inFlight);
    if (config == null) {
      throw new IllegalArgumentException("snapshot config: missing");
    }
    Checks.range("snapshot hosts (count)", hosts.size(), 0, MAX_HOSTS);
    Checks.range("snapshot vms (count)", vms.size(), 0, MAX_VMS);
    Checks.range("snapshot rules (count)", rules.size(), 0, MAX_RULES);
    Set<String> hostIds = new HashSet<>();
    for (Host h : hosts) {
      if (!hostIds.add(h.id())) {
        throw new IllegalArgumentException("snapshot hosts: " + h.id() + " appears twice");
      }
    }
    Set<String> vmNames = new HashSet<>();
    for (Vm vm : vms) {
      if (!vmNames.add(vm.name())) {
        throw new IllegalArgumentException("snapshot vms: " + vm.name() + " appears twice");
      }
      if (vm.host() != null && !hostIds.contains(vm.host())) {
        throw new IllegalArgumentException("vm " + vm.name() + " host: " + vm.host() + " is not a host of the snapshot");
      }
    }
    Set<String> ruleNames = new HashSet<>();
    for (Rule r : rules) {
      if (!ruleNames.add(r.name())) {
        throw new IllegalArgumentException("snapshot rules: " + r.name() + " appears twice");
      }
    }
    Set<String> moving = new HashSet<>();
    for (InFlight m : inFlight) {
      if (!vmNames.contains(m.vm()) || !moving.add(m.vm())) {
        throw new IllegalArgumentException("in-flight migration of " + m.vm() + ": no such VM, or named twice");
      }
      if (!hostIds.contains(m.from()) || !hostIds.contains(m.to())) {
        throw new IllegalArgumentException("in-flight migration of " + m.vm() + ": " + m.from() + " -> " + m.to()
            + " names a host not in the snapshot");
      }
    }
  }
}
