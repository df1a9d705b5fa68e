package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.proto.ClusterEvent;
import dev.ferry.proto.EventKind;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** How 'ferry events' prints an event, and that a bad --limit is refused before any request. */
class EventsCommandTest {
  @TempDir
  Path dir;

  @Test
  void anEventIsOneLineWithItsSeqUtcTimeKindAndMessage() {
    ClusterEvent e = ClusterEvent.newBuilder().setSeq(42).setTimeMs(1_796_688_194_963L)
        .setKind(EventKind.EVENT_MIGRATION_COMPLETED).setMessage("migration of web-1 done\nsecond line").build();
    assertEquals("    42  2026-12-08 00:03:14.963  migration-completed    migration of web-1 done second line",
        EventsCommand.line(e), "control characters in a message cannot break the line");
    assertEquals("unknown-99", EventsCommand.kind(e.toBuilder().setKindValue(99).build()),
        "a kind from a newer coordinator is shown, not fatal");
    assertEquals("coordinator-leading", EventsCommand.kind(e.toBuilder().setKind(EventKind.EVENT_COORDINATOR_LEADING)
        .build()));
  }

  @Test
  void aLimitOutOfRangeIsRefusedNamingTheOption() throws Exception {
    Path token = Files.writeString(dir.resolve("token"), "events-test-token-0123456789\n");
    for (String limit : new String[] {"0", "1001"}) {
      StringWriter err = new StringWriter();
      CommandLine cli = Ferry.commandLine();
      cli.setErr(new PrintWriter(err, true));
      cli.setOut(new PrintWriter(new StringWriter(), true));
      // A coordinator address nothing listens on: the command must fail before it asks.
      int code = cli.execute("events", "--limit", limit, "--coordinator", "http://127.0.0.1:1",
          "--token-file", token.toString());
      assertEquals(dev.ferry.common.ExitCodes.USAGE, code, err.toString());
      assertTrue(err.toString().contains("--limit: must be between 1 and 1000, got " + limit), err.toString());
    }
  }
}
