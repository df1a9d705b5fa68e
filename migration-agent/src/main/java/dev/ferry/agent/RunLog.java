package dev.ferry.agent;

import dev.ferry.engine.guest.Guest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where this agent's guests ran, for the integration tests' "never on two hosts at once" check
 * (set with {@code -Dferry.runlog=FILE}; nothing else uses it). Each line is one event, written
 * with one unbuffered write so that a kill -9 loses none the kernel already has:
 * <pre>
 *   start VM START_NANOS HOST          the vCPUs are about to run
 *   run VM START_NANOS END_NANOS HOST  they ran from START to END (and have stopped)
 * </pre>
 * Times are {@link System#nanoTime()} (CLOCK_MONOTONIC on Linux: comparable between the
 * processes of one machine). A start without its run line was running until the process died.
 * An end is never later than the {@link dev.ferry.engine.guest.RunPermit}'s deadline: past it
 * the vCPUs take no step.
 */
final class RunLog implements Guest.RunObserver, AutoCloseable {
  static final String PROPERTY = "ferry.runlog";
  private static final Logger LOG = LoggerFactory.getLogger(RunLog.class);

  private final FileChannel file;
  private final String host;
  private final Map<String, Long> startedNanos = new HashMap<>();
  private boolean failed;

  private RunLog(FileChannel file, String host) {
    this.file = file;
    this.host = host;
  }

  /** The run log the {@value #PROPERTY} system property names, or null if it is not set. */
  static RunLog fromProperty(String host) throws IOException {
    String path = System.getProperty(PROPERTY);
    if (path == null || path.isBlank()) {
      return null;
    }
    return new RunLog(FileChannel.open(Path.of(path), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.APPEND), host);
  }

  @Override
  public synchronized void started(String guest) {
    long now = System.nanoTime();
    startedNanos.put(guest, now);
    write("start " + guest + " " + now + " " + host + "\n");
  }

  @Override
  public synchronized void stopped(String guest) {
    // No vCPU steps past the run permit's deadline (an agent frozen past it stops its guests when
    // it wakes, but they ran only until the deadline).
    long now = Math.min(System.nanoTime(), dev.ferry.engine.guest.RunPermit.deadlineNanos());
    Long since = startedNanos.remove(guest);
    if (since != null) {
      write("run " + guest + " " + since + " " + Math.max(since, now) + " " + host + "\n");
    }
  }

  private void write(String line) {
    try {
      ByteBuffer bytes = ByteBuffer.wrap(line.getBytes(StandardCharsets.UTF_8));
      while (bytes.hasRemaining()) {
        file.write(bytes);
      }
    } catch (IOException e) {
      if (!failed) {
        failed = true;
        LOG.error("run log: cannot write: {}", e.toString());
      }
    }
  }

  @Override
  public synchronized void close() {
    try {
      file.close();
    } catch (IOException e) {
      LOG.debug("run log: close: {}", e.toString());
    }
  }
}
