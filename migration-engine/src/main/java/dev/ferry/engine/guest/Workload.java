package dev.ferry.engine.guest;

import dev.ferry.common.InvalidConfigException;
import dev.ferry.proto.ContentMix;
import dev.ferry.proto.WorkloadSpec;

/**
 * A validated {@link WorkloadSpec}: which page each vCPU step writes and with what. Pure: every
 * choice comes from the vCPU's generator, so a restored generator replays the same steps.
 */
public final class Workload {
  /** Far above what one host can dirty; bounds the pacing arithmetic. */
  public static final long DIRTY_RATE_BYTES_PER_S_MAX = 64L << 30;
  /** A vCPU computes at most all of its time. */
  public static final double CPU_LOAD_MAX = dev.ferry.common.Specs.CPU_LOAD_MAX;

  private final WorkloadSpec spec;
  private final int workingSetFirstPage;
  private final int workingSetPages;
  private final int hotPages;
  private final int hotAccessPercent;
  private final int zeroPercent;
  private final int textPercent;

  private Workload(WorkloadSpec spec, int firstPage, int pages, int hotPages, int hotAccessPercent) {
    this.spec = spec;
    this.workingSetFirstPage = firstPage;
    this.workingSetPages = pages;
    this.hotPages = hotPages;
    this.hotAccessPercent = hotAccessPercent;
    this.zeroPercent = spec.getContent().getZeroPercent();
    this.textPercent = spec.getContent().getTextPercent();
  }

  /** Validates {@code spec} against a memory of {@code memoryBytes}; errors name the field. */
  public static Workload from(WorkloadSpec spec, long memoryBytes) {
    InvalidConfigException.requireRange("workload.dirty_rate_bytes_per_s",
        spec.getDirtyRateBytesPerS(), 0, DIRTY_RATE_BYTES_PER_S_MAX);
    InvalidConfigException.requireRange("workload.cpu_load", spec.getCpuLoad(), 0.0, CPU_LOAD_MAX);
    long offset = spec.getWorkingSetOffsetBytes();
    long size = spec.getWorkingSetBytes() == 0 ? memoryBytes - offset : spec.getWorkingSetBytes();
    InvalidConfigException.requireRange("workload.working_set_offset_bytes", offset, 0, memoryBytes - 1);
    InvalidConfigException.requireRange("workload.working_set_bytes", size,
        GuestMemory.PAGE_BYTES, memoryBytes - offset);
    if (offset % GuestMemory.PAGE_BYTES != 0 || size % GuestMemory.PAGE_BYTES != 0) {
      throw new InvalidConfigException("workload.working_set_bytes",
          "working set offset and size must be multiples of 4096");
    }
    InvalidConfigException.requireRange("workload.hot_set_percent", spec.getHotSetPercent(), 0, 100);
    InvalidConfigException.requireRange("workload.hot_access_percent", spec.getHotAccessPercent(), 0, 100);
    validateMix(spec.getContent());
    int pages = (int) (size / GuestMemory.PAGE_BYTES);
    int hot = spec.getHotSetPercent() == 0 || spec.getHotSetPercent() == 100
        ? pages : Math.max(1, (int) ((long) pages * spec.getHotSetPercent() / 100));
    int hotAccess = hot == pages ? 100 : spec.getHotAccessPercent();
    return new Workload(spec, (int) (offset / GuestMemory.PAGE_BYTES), pages, hot, hotAccess);
  }

  private static void validateMix(ContentMix mix) {
    InvalidConfigException.requireRange("workload.content.zero_percent", mix.getZeroPercent(), 0, 100);
    InvalidConfigException.requireRange("workload.content.text_percent", mix.getTextPercent(), 0, 100);
    InvalidConfigException.requireRange("workload.content.random_percent", mix.getRandomPercent(), 0, 100);
    int sum = mix.getZeroPercent() + mix.getTextPercent() + mix.getRandomPercent();
    if (sum != 100) {
      throw new InvalidConfigException("workload.content",
          "zero + text + random percentages must sum to 100, got " + sum);
    }
  }

  /** The named mixes of the CLI and the benchmark: zero, text, random, mixed. */
  /** The named page-content mixes: zero, text, random, mixed. */
  public static ContentMix namedMix(String name) {
    return dev.ferry.common.Specs.contentMix(name);
  }

  public WorkloadSpec spec() {
    return spec;
  }

  public long dirtyRateBytesPerSecond() {
    return spec.getDirtyRateBytesPerS();
  }

  public double cpuLoad() {
    return spec.getCpuLoad();
  }

  /**
   * This workload with another demand (the rest, and so the pages it writes, unchanged); errors
   * name the field.
   */
  public Workload withDemand(double cpuLoad, long dirtyRateBytesPerS, long memoryBytes) {
    return from(spec.toBuilder().setCpuLoad(cpuLoad).setDirtyRateBytesPerS(dirtyRateBytesPerS).build(), memoryBytes);
  }

  /** The page one step writes. */
  int choosePage(Xoshiro256 rng) {
    if (hotPages == workingSetPages || rng.nextInt(100) < hotAccessPercent) {
      return workingSetFirstPage + rng.nextInt(hotPages);
    }
    return workingSetFirstPage + hotPages + rng.nextInt(workingSetPages - hotPages);
  }

  /** The content one step (or the initial fill) writes. */
  PageKind chooseContent(Xoshiro256 rng) {
    int roll = rng.nextInt(100);
    if (roll < zeroPercent) {
      return PageKind.ZERO;
    }
    return roll < zeroPercent + textPercent ? PageKind.TEXT : PageKind.RANDOM;
  }
}
