package dev.ferry.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.common.Json;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class BenchMigrateTest {
  private static Json run(String tls, double totalMs) {
    return new Json().put("tls", tls).put("compression", "auto").put("total_ms", totalMs);
  }

  @Test
  void pairsEachTlsRunWithThePlainRunBeforeIt() {
    List<Json> results = List.of(run("off", 600.0), run("on", 900.0), run("off", 500.0), run("on", 800.0));

    String line = BenchMigrate.paired(results, "tls", "off", "on");

    assertEquals("paired: total time on/off per pair [1.50, 1.60]; median 1.55", line);
  }

  @Test
  void refusesAnUnknownTlsModeNamingTheOption() {
    String err = errorOf("--tls", "off,tls13");

    assertTrue(err.contains("--tls: 'tls13' is not one of off, on, openssl, jdk"), err);
  }

  @Test
  void refusesTwoListsAndAClusterPerTlsMode() {
    assertTrue(errorOf("--tls", "off,on", "--compression", "off,auto").contains("--tls: a list of TLS modes"));
    assertTrue(errorOf("--tls", "off,on", "--cluster").contains("--tls: --cluster takes one TLS mode"));
    assertTrue(errorOf("--tls", "on,on").contains("--tls: a mode is listed twice"));
  }

  /** Runs the command with arguments it refuses before starting anything; returns its standard error. */
  private static String errorOf(String... args) {
    PrintStream saved = System.err;
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      assertEquals(2, new CommandLine(new BenchMigrate()).execute(args));
    } finally {
      System.setErr(saved);
    }
    return err.toString(StandardCharsets.UTF_8);
  }
}
