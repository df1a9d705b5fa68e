package dev.ferry.agent;

import java.lang.reflect.Array;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * BlockHound for tests: with {@code -Dferry.blockhound=true} (and BlockHound on the class path, as
 * in the tests and the agents they start) a blocking call on a Netty event loop is caught. It
 * needs {@code -XX:+AllowRedefinitionToAddDeleteMethods} on Java 17. Reached by reflection: the
 * agent itself does not depend on BlockHound.
 */
public final class BlockingCheck {
  private static final Logger LOG = LoggerFactory.getLogger(BlockingCheck.class);
  public static final String PROPERTY = "ferry.blockhound";
  /** Exit code of an agent that blocked an event loop while checked (EX_SOFTWARE). */
  public static final int BLOCKED_EXIT_CODE = 70;

  /**
   * Blocking calls allowed on an event loop because they are harmless, by class and method.
   * Logging: logback's appender takes a lock and writes a line (to a pipe or file the agent owns);
   * a stalled log is a bigger problem than this check can solve. io_uring's teardown: a closing
   * event loop spins until the kernel has let go of its ring, after its last task.
   */
  private static final String[][] ALLOWED = {
      {"ch.qos.logback.core.OutputStreamAppender", "writeBytes"},
      {"ch.qos.logback.core.OutputStreamAppender", "subAppend"},
      {"io.netty.channel.uring.IoUringIoHandler", "destroy"},
  };

  private BlockingCheck() {}

  public static boolean asked() {
    return Boolean.getBoolean(PROPERTY);
  }

  /**
   * In an agent process started with {@code -Dferry.blockhound=true}: a blocking call on an event
   * loop is logged with its stack and ends the process (the test that started it fails).
   */
  public static void installIfAsked() {
    if (!asked()) {
      return;
    }
    boolean installed = install(method -> {
      LOG.error("BLOCKING CALL ON AN EVENT LOOP: {}", method, new IllegalStateException("blocked here"));
      Runtime.getRuntime().halt(BLOCKED_EXIT_CODE);
    });
    if (installed) {
      LOG.info("BlockHound installed: a blocking call on an event loop ends this process (exit 70)");
    }
  }

  /**
   * Installs BlockHound (its Netty integration comes from netty-common's service entry) with
   * {@code onBlocking} told of each blocking call on a non-blocking thread. False if BlockHound is
   * not on the class path. Installing twice keeps the first.
   */
  public static boolean install(Consumer<Object> onBlocking) {
    try {
      Class<?> blockHound = Class.forName("reactor.blockhound.BlockHound");
      Class<?> integration = Class.forName("reactor.blockhound.integration.BlockHoundIntegration");
      Object builder = blockHound.getMethod("builder").invoke(null);
      Class<?> builderClass = builder.getClass();
      Object none = Array.newInstance(integration, 0);
      builderClass.getMethod("loadIntegrations", none.getClass()).invoke(builder, none);
      for (String[] allowed : ALLOWED) {
        builderClass.getMethod("allowBlockingCallsInside", String.class, String.class).invoke(builder, allowed[0], allowed[1]);
      }
      builderClass.getMethod("blockingMethodCallback", Consumer.class).invoke(builder, onBlocking);
      builderClass.getMethod("install").invoke(builder);
      return true;
    } catch (ClassNotFoundException e) {
      LOG.debug("BlockHound is not on the class path: not checking event loops");
      return false;
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("cannot install BlockHound: " + e, e);
    }
  }
}
