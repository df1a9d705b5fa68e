package dev.ferry.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.agent.cli.AgentCommand;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.common.InvalidConfigException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The agent's --cpu-capacity and --load-interval are bounded; errors name the option; nothing starts. */
class AgentLoadOptionsTest {
  @TempDir
  Path dir;

  @Test
  void badCapacitiesAndIntervalsAreRefusedNamingTheOption() {
    String[][] cases = {{"cpu-capacity: ", "--cpu-capacity", "0"}, {"cpu-capacity: ", "--cpu-capacity", "5000"},
        {"cpu-capacity: ", "--cpu-capacity", "many"}, {"load-interval: ", "--load-interval", "0.1"},
        {"load-interval: ", "--load-interval", "60"}, {"load-interval: ", "--load-interval", "NaN"},
        {"load-interval: ", "--load-interval", "soon"}};
    for (String[] c : cases) {
      StringWriter err = new StringWriter();
      int code = new CommandLine(new AgentCommand()).setErr(new PrintWriter(err, true))
          .execute("--host-id", "h1", "--datastore", dir.toString(), c[1], c[2]);
      assertEquals(2, code, c[1] + " " + c[2] + ": " + err);
      assertTrue(err.toString().contains(c[0]), c[1] + " " + c[2] + ": " + err);
    }
  }

  @Test
  void theConfigKeepsTheCapacityAndInterval() {
    AgentConfig config = AgentConfig.of("h1", new InetSocketAddress("127.0.0.1", 0), dir, NettyTransport.Kind.NIO,
        1L << 30, 2, 2);
    assertEquals(2_000, config.loadIntervalMillis(), "default: a report every 2 s");
    AgentConfig bigger = config.withCpu(64, 500);
    assertEquals(64, bigger.cpuCores());
    assertEquals(500, bigger.loadIntervalMillis());
    assertEquals("load-interval", assertThrows(InvalidConfigException.class, () -> config.withCpu(2, 499)).field());
  }
}
