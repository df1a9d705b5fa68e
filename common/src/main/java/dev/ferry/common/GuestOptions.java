package dev.ferry.common;

import dev.ferry.proto.GuestSpec;
import picocli.CommandLine.Option;

/** The built-in guest's size and workload, as every command that creates one takes them. */
public final class GuestOptions {
  @Option(names = "--memory", paramLabel = "SIZE", defaultValue = "256MiB", description = "Memory (default: ${DEFAULT-VALUE}).")
  String memory;

  @Option(names = "--vcpus", defaultValue = "1", description = "vCPUs (default: ${DEFAULT-VALUE}).")
  int vcpus;

  @Option(names = "--dirty-rate", paramLabel = "RATE", defaultValue = "0",
      description = "Bytes the vCPUs dirty per second, e.g. 32MiB/s (default: idle).")
  String dirtyRate;

  @Option(names = "--cpu-load", paramLabel = "F", defaultValue = "0",
      description = "CPU demand per vCPU, 0 to 1: the share of time each vCPU computes (default: ${DEFAULT-VALUE}). "
          + "Change it on a running VM with 'ferry vm set'.")
  String cpuLoad;

  @Option(names = "--working-set", paramLabel = "SIZE", description = "Memory the vCPUs write to (default: all).")
  String workingSet;

  @Option(names = "--hot-set", paramLabel = "PERCENT", defaultValue = "20",
      description = "Hot part of the working set (default: ${DEFAULT-VALUE}%%).")
  int hotSet;

  @Option(names = "--hot-access", paramLabel = "PERCENT", defaultValue = "80",
      description = "Writes that go to the hot part (default: ${DEFAULT-VALUE}%%).")
  int hotAccess;

  @Option(names = "--content", defaultValue = "mixed",
      description = "zero, text, random or mixed (30/40/30) (default: ${DEFAULT-VALUE}).")
  String content;

  @Option(names = "--seed", defaultValue = "1", description = "Workload seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(names = "--kv-port", paramLabel = "PORT",
      description = "Run the key-value application profile on 127.0.0.1:PORT wherever the guest runs; it persists "
          + "every write it acknowledges to the guest's disk on the datastore (cluster only).")
  Integer kvPort;

  /** The spec of a guest named {@code name}; throws naming the option that is wrong. */
  public GuestSpec spec(String name) {
    GuestSpec spec = dev.ferry.common.Specs.guest(name, memory, vcpus, dirtyRate, workingSet, hotSet, hotAccess, content, seed);
    spec = spec.toBuilder().setWorkload(spec.getWorkload().toBuilder()
        .setCpuLoad(dev.ferry.common.Specs.cpuLoad("--cpu-load", cpuLoad))).build();
    return kvPort == null ? spec : spec.toBuilder().setKvPort(kvPort).build();
  }

  public int vcpus() {
    return vcpus;
  }
}
