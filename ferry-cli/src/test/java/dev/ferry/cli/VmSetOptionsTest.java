package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.common.ExitCodes;
import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

/**
 * 'ferry vm set' and 'ferry vm create --cpu-load' refuse bad values before any request, with exit
 * code 2 and a message naming the option (the coordinator's address is never contacted: port 1).
 */
class VmSetOptionsTest {
  @org.junit.jupiter.api.io.TempDir
  java.nio.file.Path dir;

  private String[] args(String... words) throws java.io.IOException {
    java.nio.file.Path token = java.nio.file.Files.writeString(dir.resolve("token"), "test-token-0123456789abcdef");
    String[] cluster = {"--coordinator", "http://127.0.0.1:1", "--token-file", token.toString()};
    String[] all = new String[words.length + cluster.length];
    System.arraycopy(words, 0, all, 0, words.length);
    System.arraycopy(cluster, 0, all, words.length, cluster.length);
    return all;
  }

  @Test
  void badLoadsAndRatesAreRefusedNamingTheOption() throws Exception {
    String[][] cases = {
        {"--cpu-load: ", "vm", "set", "web-1", "--cpu-load", "1.5"},
        {"--cpu-load: ", "vm", "set", "web-1", "--cpu-load", "-0.2"},
        {"--cpu-load: ", "vm", "set", "web-1", "--cpu-load", "NaN"},
        {"--cpu-load: ", "vm", "set", "web-1", "--cpu-load", "busy"},
        {"--dirty-rate: ", "vm", "set", "web-1", "--dirty-rate", "fast"},
        {"--cpu-load, --dirty-rate: give at least one", "vm", "set", "web-1"},
        {"--cpu-load: ", "vm", "create", "web-1", "--cpu-load", "2"}};
    for (String[] c : cases) {
      StringWriter err = new StringWriter();
      String[] words = java.util.Arrays.copyOfRange(c, 1, c.length);
      int code = Ferry.commandLine().setErr(new PrintWriter(err, true)).setOut(new PrintWriter(new StringWriter()))
          .execute(args(words));
      assertEquals(ExitCodes.USAGE, code, String.join(" ", words) + ": " + err);
      assertTrue(err.toString().contains(c[0]), String.join(" ", words) + ": " + err);
    }
  }
}
