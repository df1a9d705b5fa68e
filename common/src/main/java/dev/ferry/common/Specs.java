package dev.ferry.common;

import dev.ferry.proto.CompressionMode;
import dev.ferry.proto.ContentMix;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.WorkloadSpec;
import java.util.Locale;

/** Guest specs and policies from the words an operator types; an error names the option. */
public final class Specs {
  private Specs() {
  }

  /** A built-in guest's spec from CLI-style values (also used by the benchmark and the tests). */
  public static GuestSpec guest(String name, String memory, int vcpus, String dirtyRate, String workingSet,
      int hotSet, int hotAccess, String content, long seed) {
    return GuestSpec.newBuilder().setName(name).setMemoryBytes(Sizes.parseBytes("--memory", memory)).setVcpus(vcpus)
        .setWorkload(WorkloadSpec.newBuilder()
            .setDirtyRateBytesPerS(Sizes.parseRate("--dirty-rate", dirtyRate))
            .setWorkingSetBytes(workingSet == null ? 0 : Sizes.parseBytes("--working-set", workingSet))
            .setHotSetPercent(hotSet).setHotAccessPercent(hotAccess)
            .setContent(contentMix(content)).setSeed(seed))
        .build();
  }

  /** The most CPU a vCPU can demand: all of its time. */
  public static final double CPU_LOAD_MAX = 1.0;

  /** A CPU demand per vCPU (0-1, the share of time its thread computes), e.g. 0.25; errors name {@code field}. */
  public static double cpuLoad(String field, String text) {
    double value;
    try {
      value = Double.parseDouble(text.trim());
    } catch (NumberFormatException e) {
      throw new InvalidConfigException(field, "'" + text + "' is not a number (0 to 1, e.g. 0.25)");
    }
    return InvalidConfigException.requireRange(field, value, 0.0, CPU_LOAD_MAX);
  }

  /** The named page-content mixes: zero, text, random, mixed. */
  public static ContentMix contentMix(String name) {
    return switch (name) {
      case "zero" -> mix(100, 0, 0);
      case "text" -> mix(0, 100, 0);
      case "random" -> mix(0, 0, 100);
      case "mixed" -> mix(30, 40, 30);
      default -> throw new InvalidConfigException("content",
          "'" + name + "' is not one of zero, text, random, mixed");
    };
  }

  private static ContentMix mix(int zero, int text, int random) {
    return ContentMix.newBuilder().setZeroPercent(zero).setTextPercent(text).setRandomPercent(random).build();
  }

  public static CompressionMode compressionMode(String text) {
    return switch (text.trim().toLowerCase(Locale.ROOT)) {
      case "off" -> CompressionMode.COMPRESSION_OFF;
      case "on" -> CompressionMode.COMPRESSION_ON;
      case "auto" -> CompressionMode.COMPRESSION_AUTO;
      default -> throw new InvalidConfigException("--compression", "'" + text + "' is not one of off, on, auto");
    };
  }
}
