package dev.ferry.bench.jmh;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What every Ferry micro-benchmark shares (JMH reads these annotations from superclasses): the
 * forked JVM gets the flags of {@code scripts/jvm-options}, Chronicle's analytics off among them;
 * the result is the average time of one operation. Methods override the time unit where an
 * operation takes microseconds. {@code scripts/bench-jmh} runs them (quick settings by default).
 */
@Fork(value = 1, jvmArgsAppend = {
    FerryJvm.EXPORTS_MISC, FerryJvm.EXPORTS_REF, FerryJvm.EXPORTS_UTIL, FerryJvm.EXPORTS_NIO_CH,
    FerryJvm.EXPORTS_SUN_MISC, FerryJvm.OPENS_MISC, FerryJvm.OPENS_REF, FerryJvm.OPENS_UTIL,
    FerryJvm.OPENS_NIO_CH, FerryJvm.OPENS_IO, FerryJvm.OPENS_LANG, FerryJvm.OPENS_REFLECT,
    FerryJvm.OPENS_UTIL_PKG, FerryJvm.OPENS_NIO, FerryJvm.OPENS_SUN_MISC, FerryJvm.ANALYTICS_OFF})
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 1, timeUnit = TimeUnit.SECONDS)
public abstract class FerryBenchmark {
}
