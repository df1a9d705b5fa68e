package dev.ferry.daemons;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code ferry coordinator --load-window} is bounded; a bad one is refused naming it, before anything starts. */
class CoordinatorLoadWindowTest {
  @TempDir
  Path dir;

  @Test
  void aBadLoadWindowIsRefusedNamingTheOption() throws Exception {
    Path token = Files.writeString(dir.resolve("token"), "test-token-0123456789abcdef");
    Path credentials = Files.writeString(dir.resolve("zk-credentials"), "ferry:secret-password");
    for (String bad : new String[] {"0", "61", "many"}) {
      StringWriter err = new StringWriter();
      CommandLine cli = Daemons.commandLine();
      cli.setErr(new PrintWriter(err, true));
      cli.setOut(new PrintWriter(new StringWriter(), true));
      int code = cli.execute("coordinator", "--zk", "127.0.0.1:1", "--zk-credentials-file", credentials.toString(),
          "--token-file", token.toString(), "--listen", "127.0.0.1:0", "--load-window", bad);
      assertEquals(2, code, bad + ": " + err);
      assertTrue(err.toString().contains("load-window: "), bad + ": " + err);
    }
  }
}
