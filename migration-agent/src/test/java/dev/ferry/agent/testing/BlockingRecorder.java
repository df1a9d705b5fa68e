package dev.ferry.agent.testing;

import static org.junit.jupiter.api.Assertions.fail;

import dev.ferry.agent.BlockingCheck;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.platform.launcher.LauncherSession;
import org.junit.platform.launcher.LauncherSessionListener;

/**
 * Makes a blocking call on a Netty event loop fail the test that made it: installed before any
 * test runs (a launcher session listener), BlockHound reports each such call here, with where it
 * happened; after each test (an extension registered for every test class through
 * META-INF/services and junit-platform.properties) the test fails if anything was recorded.
 */
public final class BlockingRecorder implements LauncherSessionListener, AfterEachCallback {
  private static final List<String> BLOCKED = new CopyOnWriteArrayList<>();

  @Override
  public void launcherSessionOpened(LauncherSession session) {
    BlockingCheck.install(method -> {
      StringBuilder where = new StringBuilder(method + " on " + Thread.currentThread().getName());
      for (StackTraceElement frame : new Throwable().getStackTrace()) {
        where.append("\n\tat ").append(frame);
      }
      BLOCKED.add(where.toString());
    });
  }

  @Override
  public void afterEach(ExtensionContext context) {
    assertNoneBlocked();
  }

  /** Fails if a blocking call ran on an event loop since the last check. */
  public static void assertNoneBlocked() {
    if (!BLOCKED.isEmpty()) {
      String first = BLOCKED.get(0);
      int count = BLOCKED.size();
      BLOCKED.clear();
      fail(count + " blocking call(s) on an event loop; the first: " + first);
    }
  }
}
