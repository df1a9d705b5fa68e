package dev.ferry.it.cluster;

import dev.ferry.agent.cli.AgentProcess;
import dev.ferry.daemons.Daemons;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One {@code ferry} daemon (zk-server, coordinator, agent) in its own JVM, started with this
 * JVM's class path and module flags; its stdout and stderr go to a log file. {@link #awaitReady()}
 * waits for the daemon's "ready" line.
 */
final class FerryProcess implements AutoCloseable {
  private static final long READY_TIMEOUT_SECONDS = 90;

  final String name;
  final Path log;
  private final Process process;
  private final CompletableFuture<String> ready = new CompletableFuture<>();
  /** System.nanoTime when the process was seen to exit (0 while it runs): where its open runs end. */
  private volatile long exitNanos;

  private FerryProcess(String name, Path log, Process process) {
    this.name = name;
    this.log = log;
    this.process = process;
    process.onExit().thenRun(() -> exitNanos = System.nanoTime());
  }

  /** Starts {@code ferry args...}; {@code jvmArgs} go before the class name (failpoints). */
  static FerryProcess start(String name, Path dir, List<String> jvmArgs, List<String> args) throws IOException {
    List<String> jvm = new ArrayList<>(List.of("-Dferry.log.level=INFO"));
    jvm.addAll(jvmArgs);
    List<String> command = new ArrayList<>(AgentProcess.childJvm("256m", jvm, Daemons.class));
    command.addAll(args);
    Path log = dir.resolve(name + ".log");
    Path out = dir.resolve(name + ".out");
    Process process = new ProcessBuilder(command).redirectError(log.toFile()).start();
    FerryProcess p = new FerryProcess(name, log, process);
    Thread reader = new Thread(() -> p.readStdout(out), name + "-stdout");
    reader.setDaemon(true);
    reader.start();
    return p;
  }

  private void readStdout(Path out) {
    try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        Files.writeString(out, line + "\n", StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.CREATE,
            java.nio.file.StandardOpenOption.APPEND);
        if (line.contains(" ready") && !ready.isDone()) {
          ready.complete(line);
        }
      }
    } catch (IOException | RuntimeException e) {
      ready.completeExceptionally(e);
    }
    ready.completeExceptionally(new IOException(name + " exited before it was ready"));
  }

  /** The ready line. */
  String awaitReady() throws IOException {
    try {
      return ready.get(READY_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    } catch (TimeoutException | java.util.concurrent.ExecutionException e) {
      throw new IOException(name + " did not start; its log:\n" + logText(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
  }

  String logText() {
    try {
      return Files.exists(log) ? Files.readString(log) : "(no log)";
    } catch (IOException e) {
      return "(log unreadable: " + e + ")";
    }
  }

  long pid() {
    return process.pid();
  }

  /** When it exited (System.nanoTime), or {@code orElse} while it still runs. */
  long exitNanos(long orElse) {
    long at = exitNanos;
    return at == 0 ? orElse : at;
  }

  /** Waits until the process has exited on its own (a fail point halting it); false on timeout. */
  boolean awaitExit(java.time.Duration timeout) throws InterruptedException {
    return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** The exit status once it has exited, else -1. */
  int exitCode() {
    return process.isAlive() ? -1 : process.exitValue();
  }

  boolean isAlive() {
    return process.isAlive();
  }

  /** kill -9, as a crash would. */
  void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(30, TimeUnit.SECONDS);
  }

  /** SIGSTOP or SIGCONT: the process freezes (no heartbeats, no I/O) or thaws. */
  void signal(String signal) throws IOException, InterruptedException {
    Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(process.pid())).inheritIO().start();
    if (kill.waitFor() != 0) {
      throw new IOException("kill -" + signal + " " + process.pid() + " failed");
    }
  }

  /** SIGTERM, then waits (kill -9 after 30 s). */
  @Override
  public void close() {
    try {
      if (process.isAlive()) {
        signal("CONT");
      }
    } catch (IOException | InterruptedException ignored) {
      // it may be gone already
    }
    AgentProcess.stop(process);
  }
}
