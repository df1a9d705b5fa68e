package dev.ferry.bench.jmh;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;

/**
 * The JVM flags of {@code scripts/jvm-options}, one constant per flag so that an annotation can
 * list them ({@link FerryBenchmark}'s {@code @Fork(jvmArgsAppend = ...)}). Keep in step with that
 * file. Every state's trial set-up calls {@link #check()} before it touches Chronicle, so a fork
 * started without these flags (an IDE run, {@code -jvmArgsAppend} from the command line, which
 * replaces the annotation's list) fails at once instead of running with analytics on.
 */
public final class FerryJvm {
  public static final String EXPORTS_MISC = "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED";
  public static final String EXPORTS_REF = "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED";
  public static final String EXPORTS_UTIL = "--add-exports=java.base/jdk.internal.util=ALL-UNNAMED";
  public static final String EXPORTS_NIO_CH = "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED";
  public static final String EXPORTS_SUN_MISC = "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED";
  public static final String OPENS_MISC = "--add-opens=java.base/jdk.internal.misc=ALL-UNNAMED";
  public static final String OPENS_REF = "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED";
  public static final String OPENS_UTIL = "--add-opens=java.base/jdk.internal.util=ALL-UNNAMED";
  public static final String OPENS_NIO_CH = "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED";
  public static final String OPENS_IO = "--add-opens=java.base/java.io=ALL-UNNAMED";
  public static final String OPENS_LANG = "--add-opens=java.base/java.lang=ALL-UNNAMED";
  public static final String OPENS_REFLECT = "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED";
  public static final String OPENS_UTIL_PKG = "--add-opens=java.base/java.util=ALL-UNNAMED";
  public static final String OPENS_NIO = "--add-opens=java.base/java.nio=ALL-UNNAMED";
  public static final String OPENS_SUN_MISC = "--add-opens=jdk.unsupported/sun.misc=ALL-UNNAMED";
  public static final String ANALYTICS_OFF = "-Dchronicle.analytics.disable=true";

  static final String[] FLAGS = {
      EXPORTS_MISC, EXPORTS_REF, EXPORTS_UTIL, EXPORTS_NIO_CH, EXPORTS_SUN_MISC,
      OPENS_MISC, OPENS_REF, OPENS_UTIL, OPENS_NIO_CH, OPENS_IO, OPENS_LANG, OPENS_REFLECT,
      OPENS_UTIL_PKG, OPENS_NIO, OPENS_SUN_MISC, ANALYTICS_OFF,
  };

  private FerryJvm() {}

  /** Fails unless this JVM has Chronicle's analytics off and every flag above. */
  public static void check() {
    if (!Boolean.getBoolean("chronicle.analytics.disable")) {
      throw new IllegalStateException("this JVM lacks " + ANALYTICS_OFF
          + ": run the benchmarks with scripts/bench-jmh (JMH forks get it from FerryBenchmark's @Fork)");
    }
    List<String> args = ManagementFactory.getRuntimeMXBean().getInputArguments();
    List<String> missing = new ArrayList<>();
    for (String flag : FLAGS) {
      if (!args.contains(flag)) {
        missing.add(flag);
      }
    }
    if (!missing.isEmpty()) {
      throw new IllegalStateException("this JVM lacks the flags of scripts/jvm-options: " + missing);
    }
  }
}
