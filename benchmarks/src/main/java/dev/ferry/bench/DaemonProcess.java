package dev.ferry.bench;

import dev.ferry.agent.cli.AgentProcess;
import dev.ferry.daemons.Daemons;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One {@code ferry} daemon (zk-server, coordinator, agent) in its own JVM, as scripts/ferry runs
 * it, with this JVM's class path and module flags; stderr goes to {@code NAME.log}.
 * {@link #awaitReady()} returns its "ready" line; {@link #close()} sends SIGTERM and waits.
 */
final class DaemonProcess implements AutoCloseable {
  private static final long READY_TIMEOUT_SECONDS = 90;
  private final String name;
  private final Path log;
  private final Process process;
  private final CompletableFuture<String> ready = new CompletableFuture<>();

  private DaemonProcess(String name, Path log, Process process) {
    this.name = name;
    this.log = log;
    this.process = process;
  }

  static DaemonProcess start(String name, Path dir, String heap, List<String> args) throws IOException {
    String extra = System.getenv("FERRY_AGENT_JAVA_OPTS");
    List<String> jvm = new ArrayList<>(List.of("-Dferry.log.level=INFO"));
    if (extra != null && !extra.isBlank() && args.get(0).equals("agent")) {
      jvm.addAll(List.of(extra.trim().split("\\s+")));
    }
    List<String> command = new ArrayList<>(AgentProcess.childJvm(heap, jvm, Daemons.class));
    command.addAll(args);
    Path log = dir.resolve(name + ".log");
    Process process = new ProcessBuilder(command).redirectError(log.toFile()).start();
    DaemonProcess p = new DaemonProcess(name, log, process);
    Thread reader = new Thread(p::readStdout, name + "-stdout");
    reader.setDaemon(true);
    reader.start();
    return p;
  }

  private void readStdout() {
    try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        if (line.contains(" ready") && !ready.isDone()) {
          ready.complete(line);
        }
      }
    } catch (IOException | RuntimeException e) {
      ready.completeExceptionally(e);
    }
    ready.completeExceptionally(new IOException(name + " exited before it was ready (see " + log + ")"));
  }

  String awaitReady() throws IOException {
    try {
      return ready.get(READY_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    } catch (TimeoutException | ExecutionException e) {
      throw new IOException(name + " did not start (see " + log + ")", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while starting " + name, e);
    }
  }

  @Override
  public void close() {
    AgentProcess.stop(process);
  }
}
