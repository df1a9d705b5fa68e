package dev.ferry.engine.precopy;

import dev.ferry.common.InvalidConfigException;
import dev.ferry.proto.CompressionMode;
import dev.ferry.proto.MigrationPolicy;

/**
 * A validated {@link MigrationPolicy} with every default filled in. Bounds keep a hostile or
 * mistyped policy from making a migration run forever or never start.
 */
public record MigrationSettings(
    long maxDowntimeMillis,
    long bandwidthBytesPerSecond,
    CompressionMode compression,
    long completionTimeoutMillisPerGib,
    long progressTimeoutMillis,
    int throttleInitialPercent,
    int throttleStepPercent,
    int throttleMaxPercent,
    boolean digest) {

  public static final long MAX_DOWNTIME_MILLIS_DEFAULT = 50;
  public static final long COMPLETION_TIMEOUT_MILLIS_PER_GIB_DEFAULT = 120_000;
  /** No migration, however small, gets less than this in total. */
  public static final long COMPLETION_TIMEOUT_MILLIS_MIN = 30_000;
  public static final long PROGRESS_TIMEOUT_MILLIS_DEFAULT = 30_000;
  public static final int THROTTLE_INITIAL_PERCENT_DEFAULT = 20;
  public static final int THROTTLE_STEP_PERCENT_DEFAULT = 10;
  public static final int THROTTLE_MAX_PERCENT_DEFAULT = 99;
  public static final long BANDWIDTH_BYTES_PER_S_MIN = 1L << 20;

  /**
   * The same settings with {@code overheadMillis} of the downtime budget set aside for a fixed
   * cost of the switchover (a cluster's commit round trips); at least half the budget stays for
   * the last pages ({@link DowntimeBudget}).
   */
  public MigrationSettings reservingForSwitchover(long overheadMillis) {
    return withMaxDowntimeMillis(DowntimeBudget.split(maxDowntimeMillis, overheadMillis).pagesMillis());
  }

  /** The same settings with another downtime budget (what the pre-copy policy is given for the pages). */
  public MigrationSettings withMaxDowntimeMillis(long millis) {
    return new MigrationSettings(millis, bandwidthBytesPerSecond, compression, completionTimeoutMillisPerGib,
        progressTimeoutMillis, throttleInitialPercent, throttleStepPercent, throttleMaxPercent, digest);
  }

  public static MigrationSettings defaults() {
    return from(MigrationPolicy.getDefaultInstance());
  }

  /** Validates {@code policy}; a zero field takes its default. Errors name the field. */
  public static MigrationSettings from(MigrationPolicy policy) {
    long downtime = orDefault(policy.getMaxDowntimeMs(), MAX_DOWNTIME_MILLIS_DEFAULT);
    InvalidConfigException.requireRange("policy.max_downtime_ms", downtime, 1, 60_000);
    long bandwidth = policy.getBandwidthBytesPerS();
    if (bandwidth != 0) {
      InvalidConfigException.requireRange("policy.bandwidth_bytes_per_s", bandwidth,
          BANDWIDTH_BYTES_PER_S_MIN, 1L << 40);
    }
    CompressionMode compression = switch (policy.getCompression()) {
      case COMPRESSION_UNSPECIFIED, COMPRESSION_AUTO -> CompressionMode.COMPRESSION_AUTO;
      case COMPRESSION_OFF -> CompressionMode.COMPRESSION_OFF;
      case COMPRESSION_ON -> CompressionMode.COMPRESSION_ON;
      default -> throw new InvalidConfigException("policy.compression", "unknown mode " + policy.getCompressionValue());
    };
    long completion = orDefault(policy.getCompletionTimeoutMsPerGib(), COMPLETION_TIMEOUT_MILLIS_PER_GIB_DEFAULT);
    InvalidConfigException.requireRange("policy.completion_timeout_ms_per_gib", completion, 1_000, 86_400_000);
    long progress = orDefault(policy.getProgressTimeoutMs(), PROGRESS_TIMEOUT_MILLIS_DEFAULT);
    InvalidConfigException.requireRange("policy.progress_timeout_ms", progress, 1_000, 3_600_000);
    int initial = (int) orDefault(policy.getThrottleInitialPercent(), THROTTLE_INITIAL_PERCENT_DEFAULT);
    int step = (int) orDefault(policy.getThrottleStepPercent(), THROTTLE_STEP_PERCENT_DEFAULT);
    int max = (int) orDefault(policy.getThrottleMaxPercent(), THROTTLE_MAX_PERCENT_DEFAULT);
    InvalidConfigException.requireRange("policy.throttle_max_percent", max, 1, 99);
    InvalidConfigException.requireRange("policy.throttle_initial_percent", initial, 1, max);
    InvalidConfigException.requireRange("policy.throttle_step_percent", step, 1, 99);
    return new MigrationSettings(downtime, bandwidth, compression, completion, progress,
        initial, step, max, policy.getDigest());
  }

  private static long orDefault(long value, long fallback) {
    return value == 0 ? fallback : value;
  }

  /** The whole migration's time limit for a guest of {@code memoryBytes}. */
  public long completionTimeoutMillis(long memoryBytes) {
    double gib = memoryBytes / (double) (1L << 30);
    return Math.max(COMPLETION_TIMEOUT_MILLIS_MIN, (long) Math.ceil(gib * completionTimeoutMillisPerGib));
  }

  public MigrationPolicy toProto() {
    return MigrationPolicy.newBuilder()
        .setMaxDowntimeMs((int) maxDowntimeMillis)
        .setBandwidthBytesPerS(bandwidthBytesPerSecond)
        .setCompression(compression)
        .setCompletionTimeoutMsPerGib((int) completionTimeoutMillisPerGib)
        .setProgressTimeoutMs((int) progressTimeoutMillis)
        .setThrottleInitialPercent(throttleInitialPercent)
        .setThrottleStepPercent(throttleStepPercent)
        .setThrottleMaxPercent(throttleMaxPercent)
        .setDigest(digest)
        .build();
  }
}
