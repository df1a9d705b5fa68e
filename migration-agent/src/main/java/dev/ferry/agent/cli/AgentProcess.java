package dev.ferry.agent.cli;

import dev.ferry.common.Addresses;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An agent in its own JVM, started with this JVM's class path and module flags (the benchmark
 * and the integration tests use it). It listens on a free loopback port; {@link #address()} is
 * read from its ready line. {@link #close()} sends SIGTERM and waits for a clean exit.
 */
public final class AgentProcess implements AutoCloseable {
  private static final Pattern READY = Pattern.compile("ready on (\\S+)");
  private static final long START_TIMEOUT_SECONDS = 60;

  private final String hostId;
  private final Process process;
  private final InetSocketAddress address;

  private AgentProcess(String hostId, Process process, InetSocketAddress address) {
    this.hostId = hostId;
    this.process = process;
    this.address = address;
  }

  /** Starts agent {@code hostId} with its log in {@code logFile}; {@code extraArgs} go to {@code ferry agent}. */
  public static AgentProcess start(String hostId, Path datastore, Path logFile, List<String> extraArgs)
      throws IOException {
    String extra = System.getenv("FERRY_AGENT_JAVA_OPTS");
    List<String> command = childJvm("512m",
        extra == null || extra.isBlank() ? List.of() : List.of(extra.trim().split("\\s+")), AgentMain.class);
    command.addAll(List.of("--host-id", hostId, "--listen", "127.0.0.1:0", "--datastore", datastore.toString()));
    command.addAll(extraArgs);
    Process process = new ProcessBuilder(command).redirectError(logFile.toFile()).start();
    CompletableFuture<InetSocketAddress> ready = new CompletableFuture<>();
    Thread reader = new Thread(() -> readStdout(process, ready), "agent-" + hostId + "-stdout");
    reader.setDaemon(true);
    reader.start();
    try {
      InetSocketAddress address = ready.get(START_TIMEOUT_SECONDS, TimeUnit.SECONDS);
      return new AgentProcess(hostId, process, address);
    } catch (TimeoutException | java.util.concurrent.ExecutionException e) {
      process.destroyForcibly();
      throw new IOException("agent " + hostId + " did not start (see " + logFile + ")", e);
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while starting agent " + hostId, e);
    }
  }

  /**
   * The command line of a child JVM running {@code main} with this JVM's class path, its module
   * flags (Chronicle's access on Java 17), its BlockHound setting (tests) and Chronicle's analytics
   * off, plus {@code jvmArgs}.
   */
  public static List<String> childJvm(String heap, List<String> jvmArgs, Class<?> main) {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.add("-Xmx" + heap);
    for (String arg : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (arg.startsWith("--add-") || arg.startsWith("-Dchronicle") || arg.startsWith("-Dio.netty")
          || arg.startsWith("-D" + dev.ferry.agent.BlockingCheck.PROPERTY + "=")
          || arg.equals("-XX:+AllowRedefinitionToAddDeleteMethods")) { // BlockHound in the tests' agents
        command.add(arg);
      }
    }
    command.add("-Dchronicle.analytics.disable=true");
    command.addAll(jvmArgs);
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(main.getName());
    return command;
  }

  private static void readStdout(Process process, CompletableFuture<InetSocketAddress> ready) {
    try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        Matcher m = READY.matcher(line);
        if (m.find() && !ready.isDone()) {
          ready.complete(Addresses.parse("ready line", m.group(1)));
        }
      }
    } catch (IOException | RuntimeException e) {
      ready.completeExceptionally(e);
    }
    ready.completeExceptionally(new IOException("agent exited before it was ready"));
  }

  public String hostId() {
    return hostId;
  }

  public InetSocketAddress address() {
    return address;
  }

  public long pid() {
    return process.pid();
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  /** SIGKILL, as a crash would. */
  public void kill() {
    process.destroyForcibly();
  }

  /** SIGTERM, then waits for the exit code (killing after 30 s). */
  @Override
  public void close() {
    stop(process);
  }

  /** SIGTERM to a child JVM, then waits for it to exit; SIGKILL if it has not after 30 s. */
  public static void stop(Process process) {
    process.destroy();
    try {
      if (!process.waitFor(30, TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }

  public int exitCode() {
    return process.exitValue();
  }
}
