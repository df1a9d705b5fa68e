package dev.ferry.storage;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A test's helper process: {@code main} from the test class path in a fresh JVM with a small
 * heap. Its stderr goes to a file shown when it fails; {@link #kill()} is {@code kill -9}. Its
 * stdout either comes through a pipe, line by line ({@link #start}, {@link #nextLine}, for a
 * conversation), or goes to a file ({@link #startToFile}, {@link #awaitOutput}, {@link #output}):
 * a file keeps every line the child wrote before it was killed, which a pipe being torn down
 * may not hand over.
 */
final class ChildJvm implements AutoCloseable {
  private static final long LINE_TIMEOUT_SECONDS = 60;
  private static final String EOF = "\u0000eof";

  private final Process process;
  private final Path stderr;
  private final LinkedBlockingQueue<String> lines = new LinkedBlockingQueue<>();
  private final CountDownLatch stdoutDone = new CountDownLatch(1);
  private final Writer stdin;

  private final Path stdout;

  private ChildJvm(Process process, Path stderr, Path stdout) {
    this.process = process;
    this.stderr = stderr;
    this.stdout = stdout;
    this.stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
    if (stdout == null) {
      Thread reader = new Thread(this::readStdout, "child-" + process.pid() + "-stdout");
      reader.setDaemon(true);
      reader.start();
    } else {
      stdoutDone.countDown();
    }
  }

  /** Starts {@code main} with {@code args}, stdout through a pipe; {@code jvmArgs} such as {@code -Xmx16m} go first. */
  static ChildJvm start(Class<?> main, Path logDir, List<String> jvmArgs, String... args) throws IOException {
    return start(main, logDir, jvmArgs, false, args);
  }

  /** As {@link #start} with stdout going to a file. */
  static ChildJvm startToFile(Class<?> main, Path logDir, List<String> jvmArgs, String... args) throws IOException {
    return start(main, logDir, jvmArgs, true, args);
  }

  private static ChildJvm start(Class<?> main, Path logDir, List<String> jvmArgs, boolean stdoutToFile,
      String... args) throws IOException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    // Quick start-up matters more than peak speed for these short-lived helpers.
    command.addAll(List.of("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"));
    command.addAll(jvmArgs);
    command.addAll(List.of("-cp", System.getProperty("java.class.path"), main.getName()));
    command.addAll(List.of(args));
    Path stderr = Files.createTempFile(logDir, main.getSimpleName(), ".err");
    ProcessBuilder builder = new ProcessBuilder(command).redirectError(stderr.toFile());
    Path stdout = null;
    if (stdoutToFile) {
      stdout = Files.createTempFile(logDir, main.getSimpleName(), ".out");
      builder.redirectOutput(stdout.toFile());
    }
    return new ChildJvm(builder.start(), stderr, stdout);
  }

  /** Waits (up to a minute) until the child's stdout file has a whole line starting with {@code prefix}. */
  String awaitOutput(String prefix) throws IOException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(LINE_TIMEOUT_SECONDS);
    while (true) {
      for (String line : output()) {
        if (line.startsWith(prefix)) {
          return line;
        }
      }
      if (!process.isAlive() || System.nanoTime() - deadline > 0) {
        throw new IOException("child " + process.pid() + " printed no line starting '" + prefix + "' ("
            + exitCode() + "); its stderr:\n" + stderrText());
      }
      LockSupport.parkNanos(1_000_000);
    }
  }

  /** The whole lines in the child's stdout file so far. */
  List<String> output() throws IOException {
    String text = Files.readString(stdout, StandardCharsets.UTF_8);
    List<String> out = new ArrayList<>(List.of(text.split("\n")));
    if (!text.endsWith("\n")) {
      out.remove(out.size() - 1);
    }
    return out;
  }

  /** The next stdout line; fails if the child exits or stays silent for a minute. */
  String nextLine() throws IOException, InterruptedException {
    String line = lines.poll(LINE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    if (line == null || line.equals(EOF)) {
      lines.offer(EOF);
      throw new IOException("child " + process.pid() + (line == null ? " silent for " + LINE_TIMEOUT_SECONDS + " s"
          : " exited (" + exitCode() + ")") + "; its stderr:\n" + stderrText());
    }
    return line;
  }

  void send(String line) throws IOException {
    stdin.write(line + "\n");
    stdin.flush();
  }

  /** kill -9, then waits for the process and its stdout to end. */
  void kill() throws InterruptedException {
    process.destroyForcibly();
    awaitExit();
  }

  /** Waits for the process to exit and its stdout to be read to the end; returns its exit code. */
  int awaitExit() throws InterruptedException {
    if (!process.waitFor(LINE_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      process.waitFor();
    }
    if (!stdoutDone.await(LINE_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
      throw new IllegalStateException("child " + process.pid() + " exited but its stdout stayed open");
    }
    return process.exitValue();
  }

  String stderrText() {
    try {
      return Files.readString(stderr, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "(cannot read " + stderr + ": " + e + ")";
    }
  }

  private String exitCode() {
    return process.isAlive() ? "running" : "exit " + process.exitValue();
  }

  private void readStdout() {
    try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        lines.offer(line);
      }
    } catch (IOException e) {
      // The pipe closed under the reader as the process went: the same as its end.
    } finally {
      lines.offer(EOF);
      stdoutDone.countDown();
    }
  }

  /** Kills the child if it is still running. */
  @Override
  public void close() {
    if (process.isAlive()) {
      process.destroyForcibly();
      try {
        process.waitFor(LINE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
