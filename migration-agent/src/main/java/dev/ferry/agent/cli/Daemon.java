package dev.ferry.agent.cli;

import java.io.PrintWriter;
import java.util.concurrent.CountDownLatch;

/** How every Ferry daemon waits: until SIGTERM or Ctrl-C, then it closes what it runs, in order. */
public final class Daemon {
  private Daemon() {}

  /**
   * Prints {@code readyLine} (scripts wait for it), blocks until SIGTERM or SIGINT, then closes
   * {@code running}. A shutdown hook closes it too if the JVM ends another way.
   */
  public static void runUntilStopped(AutoCloseable running, String name, PrintWriter out, String readyLine)
      throws InterruptedException {
    CountDownLatch stop = new CountDownLatch(1);
    for (String signal : new String[] {"TERM", "INT"}) {
      sun.misc.Signal.handle(new sun.misc.Signal(signal), s -> stop.countDown());
    }
    Thread hook = new Thread(() -> closeQuietly(running), name + "-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);
    out.println(readyLine);
    out.flush();
    stop.await();
    closeQuietly(running);
    Runtime.getRuntime().removeShutdownHook(hook);
  }

  private static void closeQuietly(AutoCloseable running) {
    try {
      running.close();
    } catch (Exception e) {
      System.err.println("error while stopping: " + e);
    }
  }
}
