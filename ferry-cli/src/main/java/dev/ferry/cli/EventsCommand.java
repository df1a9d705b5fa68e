package dev.ferry.cli;

import dev.ferry.proto.ClusterEvent;
import dev.ferry.proto.EventList;
import java.io.IOException;
import java.io.PrintWriter;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code ferry events [--follow] [--json] [--limit N]}: the cluster's event log, oldest first. */
@Command(name = "events", mixinStandardHelpOptions = true,
    description = {"Show the cluster's event log: migrations started and ended (with the reason and the pause),",
        "hosts joined and lost, VMs created and deleted, coordinator take-overs.", "",
        "The last --limit events, oldest first; with --follow, then every new one as it comes (polled every",
        "second) until Ctrl-C. The coordinators keep the latest events only (ferry coordinator --events-kept).",
        "Any coordinator answers, a standby too."},
    exitCodeListHeading = "%nExit codes:%n", exitCodeList = {"0:Success (also Ctrl-C with --follow).",
        "2:Invalid command line.", "3:No coordinator could be reached.", "4:Refused.", "6:Wrong API token."})
final class EventsCommand extends ClusterCommand {
  static final int LIMIT_MAX = 1000;
  private static final long POLL_MILLIS = 1000;
  private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS", Locale.ROOT)
      .withZone(ZoneOffset.UTC);

  @Option(names = "--follow", description = "Keep printing new events as they come, until Ctrl-C.")
  boolean follow;

  @Option(names = "--json", description = "One JSON object per event and line (the API's ClusterEvent).")
  boolean json;

  @Option(names = "--limit", paramLabel = "N", defaultValue = "20",
      description = "How many of the latest events to show first, 1 to " + LIMIT_MAX + " (default: ${DEFAULT-VALUE}).")
  int limit;

  @Override
  int run(ApiClient api) throws IOException, InterruptedException {
    if (limit < 1 || limit > LIMIT_MAX) {
      throw new dev.ferry.common.InvalidConfigException("--limit", "must be between 1 and " + LIMIT_MAX + ", got "
          + limit);
    }
    EventList first = api.get("v1/events?limit=" + limit, EventList.newBuilder()).build();
    print(first);
    if (!follow) {
      if (first.getEventsCount() == 0 && first.getUnreadableCount() == 0 && !json) {
        out().println("(no events)");
      }
      return 0;
    }
    long last = first.getLastSeq();
    boolean unreachable = false;
    while (!Thread.currentThread().isInterrupted()) {
      Thread.sleep(POLL_MILLIS);
      EventList next;
      try {
        next = api.get("v1/events?after=" + last + "&limit=" + LIMIT_MAX, EventList.newBuilder()).build();
      } catch (ApiClient.UnreachableException e) {
        // A failover or a restart: keep following, say so once.
        if (!unreachable) {
          spec.commandLine().getErr().println("ferry events: " + e.getMessage() + "; still trying");
          unreachable = true;
        }
        continue;
      }
      unreachable = false;
      if (last > 0 && next.getOldestSeq() > last + 1) {
        spec.commandLine().getErr().println("ferry events: " + (next.getOldestSeq() - last - 1)
            + " events were deleted (the log keeps the latest only) before they could be shown");
      }
      print(next);
      last = Math.max(last, next.getLastSeq());
    }
    return 0;
  }

  private void print(EventList list) {
    PrintWriter out = out();
    for (String unreadable : list.getUnreadableList()) {
      spec.commandLine().getErr().println("ferry events: skipped " + unreadable);
    }
    for (ClusterEvent e : list.getEventsList()) {
      out.println(json ? ApiClient.json(e) : line(e));
    }
    out.flush();
  }

  /** {@code SEQ  TIME (UTC)  KIND  MESSAGE}: one line per event, the message names what it is about. */
  static String line(ClusterEvent e) {
    return String.format(Locale.ROOT, "%6d  %s  %-21s  %s", e.getSeq(), TIME.format(Instant.ofEpochMilli(e.getTimeMs())),
        kind(e), e.getMessage().replaceAll("[\\p{Cntrl}]", " "));
  }

  /** EVENT_MIGRATION_STARTED -> migration-started. */
  static String kind(ClusterEvent e) {
    return switch (e.getKind()) {
      case UNRECOGNIZED -> "unknown-" + e.getKindValue();
      default -> e.getKind().name().replaceFirst("^EVENT_", "").toLowerCase(Locale.ROOT).replace('_', '-');
    };
  }
}
