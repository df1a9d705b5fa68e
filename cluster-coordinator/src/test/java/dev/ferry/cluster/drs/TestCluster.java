package dev.ferry.cluster.drs;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Builds snapshots by hand: a host's CPU and memory in use are the sums of its VMs'. */
final class TestCluster {
  static final long MIB = 1L << 20;
  static final long GIB = 1L << 30;
  static final long NOW = 1_800_000_000_000L;

  private final Map<String, Host> hosts = new LinkedHashMap<>();
  private final Map<String, Vm> vms = new LinkedHashMap<>();
  private final List<Rule> rules = new ArrayList<>();
  private final List<InFlight> inFlight = new ArrayList<>();
  private DrsConfig config = DrsConfig.DEFAULT;

  TestCluster host(String id, double cores, long memoryBytes) {
    return host(id, cores, memoryBytes, HostState.ACTIVE);
  }

  TestCluster host(String id, double cores, long memoryBytes, HostState state) {
    hosts.put(id, new Host(id, cores, 0, memoryBytes, 0, state));
    return this;
  }

  TestCluster vm(String name, String host, double cores, long memoryBytes) {
    return vm(Vm.of(name, host, cores, memoryBytes));
  }

  TestCluster vm(Vm vm) {
    vms.put(vm.name(), vm);
    return this;
  }

  TestCluster rule(Rule rule) {
    rules.add(rule);
    return this;
  }

  TestCluster inFlight(String vm, String from, String to) {
    inFlight.add(new InFlight(vm, from, to));
    vms.put(vm, vms.get(vm).withMigrating(true));
    return this;
  }

  TestCluster config(DrsConfig newConfig) {
    config = newConfig;
    return this;
  }

  TestCluster threshold(int threshold) {
    config = config.withThreshold(threshold);
    return this;
  }

  TestCluster limits(int out, int in, int cluster) {
    config = config.withLimits(new DrsConfig.Limits(out, in, cluster));
    return this;
  }

  Snapshot snapshot() {
    return snapshot(NOW);
  }

  Snapshot snapshot(long now) {
    List<Host> built = new ArrayList<>();
    for (Host h : hosts.values()) {
      double cpu = 0;
      long memory = 0;
      for (Vm vm : vms.values()) {
        if (h.id().equals(vm.host())) {
          cpu += vm.cpuDemandCores();
          memory += vm.memoryBytes();
        }
      }
      built.add(h.withUse(cpu, memory));
    }
    return new Snapshot(built, List.copyOf(vms.values()), rules, config, inFlight, now);
  }

  Plan plan() {
    return Balancer.plan(snapshot());
  }
}
