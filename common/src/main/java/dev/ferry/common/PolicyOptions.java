package dev.ferry.common;

import dev.ferry.common.Sizes;
import dev.ferry.proto.MigrationPolicy;
import picocli.CommandLine.Option;

/** How one migration may run, as every command that starts one takes it. */
public final class PolicyOptions {
  @Option(names = "--max-downtime", paramLabel = "MS", defaultValue = "50",
      description = "Longest acceptable pause (default: ${DEFAULT-VALUE} ms).")
  int maxDowntime;

  @Option(names = "--bandwidth", paramLabel = "RATE", description = "Cap the link, e.g. 100MiB/s (default: uncapped).")
  String bandwidth;

  @Option(names = "--compression", defaultValue = "auto", description = "off, on or auto (default: ${DEFAULT-VALUE}).")
  String compression;

  @Option(names = "--verify", description = "Prove the memory on the target at resume equals the source's at pause "
      + "(whole-memory digests, taken outside the pause) and that the vCPUs continue from the exact step.")
  boolean verify;

  public MigrationPolicy policy() {
    MigrationPolicy.Builder policy = MigrationPolicy.newBuilder().setMaxDowntimeMs(maxDowntime)
        .setCompression(dev.ferry.common.Specs.compressionMode(compression)).setDigest(verify);
    if (bandwidth != null) {
      policy.setBandwidthBytesPerS(Sizes.parseRate("--bandwidth", bandwidth));
    }
    return policy.build();
  }

  public boolean verify() {
    return verify;
  }
}
