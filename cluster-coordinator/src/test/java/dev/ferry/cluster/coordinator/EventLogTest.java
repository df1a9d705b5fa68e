package dev.ferry.cluster.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.agent.cluster.EmbeddedZooKeeper;
import dev.ferry.agent.cluster.ZkClients;
import dev.ferry.agent.cluster.ZkSettings;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.proto.ClusterEvent;
import dev.ferry.proto.EventKind;
import dev.ferry.proto.EventList;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.stream.LongStream;
import org.apache.curator.framework.CuratorFramework;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The event log on a real (embedded) ZooKeeper: bounded to the last N, readable past a record it
 * cannot read, written by the leader only, and a standby that takes over says so in it.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class EventLogTest {
  private static final String CREDENTIALS = "ferry:events-test-secret";

  @TempDir
  Path dir;

  private EmbeddedZooKeeper zkServer;
  private ZkSettings settings;
  private CuratorFramework admin;
  private final List<AutoCloseable> closing = new ArrayList<>();

  @BeforeEach
  void start() throws Exception {
    int port;
    try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort();
    }
    zkServer = EmbeddedZooKeeper.standalone(port, dir.resolve("zk"));
    settings = new ZkSettings(zkServer.connectString(), CREDENTIALS, 10_000);
    admin = ZkClients.start(settings);
  }

  @AfterEach
  void stop() {
    closing.add(admin);
    closing.add(zkServer);
    for (AutoCloseable c : closing) {
      try {
        if (c != null) {
          c.close();
        }
      } catch (Exception ignored) {
        // best effort
      }
    }
  }

  private Coordinator coordinator(String id, int kept) throws Exception {
    Coordinator c = new Coordinator(id, settings, Coordinator.Options.DEFAULT.withEventsKept(kept));
    closing.add(0, c);
    c.start("http://127.0.0.1:1/" + id);
    return c;
  }

  /** Starts a leader and waits until its take-over is in the log, so what a test appends comes after. */
  private Coordinator leader(String id, int kept) throws Exception {
    Coordinator c = coordinator(id, kept);
    await(id + " leads", c::leading);
    await(id + "'s take-over is in the log", () -> kinds(read(c, -1, 1000)).contains(EventKind.EVENT_COORDINATOR_LEADING));
    return c;
  }

  private static EventList read(Coordinator c, long after, int limit) {
    try {
      return c.readEvents(after, limit);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private static List<EventKind> kinds(EventList list) {
    return list.getEventsList().stream().map(ClusterEvent::getKind).toList();
  }

  @Test
  void trimmingKeepsExactlyTheLastN() throws Exception {
    Coordinator a = leader("a", 10);
    for (int i = 1; i <= 25; i++) {
      assertTrue(a.events().append(EventKind.EVENT_VM_CREATED, EventLog.Subject.vm("vm-" + i, "h1"), "event " + i));
    }
    List<String> children = admin.getChildren().forPath(ZkPaths.EVENTS);
    assertEquals(10, children.size(), children.toString());
    EventList all = read(a, 0, 1000);
    List<Long> seqs = all.getEventsList().stream().map(ClusterEvent::getSeq).toList();
    long last = seqs.get(seqs.size() - 1);
    assertEquals(LongStream.rangeClosed(last - 9, last).boxed().toList(), seqs, "the last 10, oldest first");
    assertEquals(last - 9, all.getOldestSeq());
    assertEquals(last, all.getLastSeq());
    List<String> messages = all.getEventsList().stream().map(ClusterEvent::getMessage).toList();
    assertEquals(LongStream.rangeClosed(16, 25).mapToObj(i -> "event " + i).toList(), messages);
    assertEquals(a.epoch(), all.getEvents(0).getCoordinatorEpoch());
    assertEquals("vm-16", all.getEvents(0).getVm());

    // Without after: the latest; with it: those after, at most limit of them.
    assertEquals(List.of("event 24", "event 25"),
        read(a, -1, 2).getEventsList().stream().map(ClusterEvent::getMessage).toList());
    EventList page = read(a, last - 5, 3);
    assertEquals(List.of(last - 4, last - 3, last - 2), page.getEventsList().stream().map(ClusterEvent::getSeq).toList());
    assertEquals(last - 2, page.getLastSeq(), "where the next page starts");
    EventList none = read(a, last, 100);
    assertEquals(0, none.getEventsCount());
    assertEquals(last, none.getLastSeq(), "a follower stays where it is");
  }

  @Test
  void aLongMessageIsCutToTheBound() throws Exception {
    Coordinator a = leader("a", 10);
    assertTrue(a.events().append(EventKind.EVENT_HOST_LOST, EventLog.Subject.host("h1"), "x".repeat(5_000)));
    String message = read(a, -1, 1).getEvents(0).getMessage();
    assertEquals(EventLog.MESSAGE_CHARS_MAX, message.length());
    assertTrue(message.endsWith("..."));
  }

  @Test
  void aMalformedRecordIsSkippedAndNamedAndTheLogGoesOn() throws Exception {
    Coordinator a = leader("a", 100);
    assertTrue(a.events().append(EventKind.EVENT_VM_CREATED, EventLog.Subject.vm("web-1", "h1"), "before"));
    long before = read(a, -1, 1).getLastSeq();
    // Written behind the leader's back: garbage, and a record of a newer format.
    admin.create().forPath(ZkPaths.event(before + 1), new byte[] {(byte) 0xff, 0x01, 0x02});
    admin.create().forPath(ZkPaths.event(before + 2), ClusterEvent.newBuilder().setFormatVersion(Records.FORMAT + 1)
        .setSeq(before + 2).setMessage("from the future").build().toByteArray());
    // The leader's next append finds its slot taken, reads the log again and writes after them.
    assertTrue(a.events().append(EventKind.EVENT_VM_DELETED, EventLog.Subject.vm("web-1", "h1"), "after"));

    EventList list = read(a, before - 1, 100);
    assertEquals(List.of("before", "after"), list.getEventsList().stream().map(ClusterEvent::getMessage).toList());
    assertEquals(before + 3, list.getEvents(1).getSeq());
    assertEquals(2, list.getUnreadableCount(), list.toString());
    assertTrue(list.getUnreadable(0).contains(ZkPaths.event(before + 1)) && list.getUnreadable(0).contains("not readable"),
        list.getUnreadable(0));
    assertTrue(list.getUnreadable(1).contains("newer Ferry"), list.getUnreadable(1));
    assertEquals(before + 3, list.getLastSeq());
    // A reader positioned on the bad records moves past them.
    EventList fromBad = read(a, before + 1, 100);
    assertEquals(List.of("after"), fromBad.getEventsList().stream().map(ClusterEvent::getMessage).toList());
    assertEquals(1, fromBad.getUnreadableCount());
  }

  @Test
  void onlyTheLeaderWritesAndAStandbysTakeOverIsLogged() throws Exception {
    Coordinator a = leader("a", 100);
    Coordinator b = coordinator("b", 100);
    await("b has loaded", () -> {
      try {
        b.readEvents(-1, 1);
        return true;
      } catch (Exception e) {
        return false;
      }
    });
    assertFalse(b.leading());
    assertFalse(b.events().append(EventKind.EVENT_VM_CREATED, EventLog.Subject.NONE, "from the standby"),
        "a standby writes no events");
    assertTrue(a.events().append(EventKind.EVENT_VM_CREATED, EventLog.Subject.vm("web-1", "h1"), "from the leader"));
    assertEquals(read(a, -1, 100), read(b, -1, 100), "the standby reads the same log");

    long epochA = a.epoch();
    a.close();
    await("b leads", b::leading);
    await("b's take-over is in the log", () -> read(b, -1, 100).getEventsList().stream()
        .anyMatch(e -> e.getKind() == EventKind.EVENT_COORDINATOR_LEADING && e.getCoordinatorEpoch() == b.epoch()));
    List<ClusterEvent> events = read(b, -1, 100).getEventsList();
    ClusterEvent takeOver = events.get(events.size() - 1);
    assertEquals(EventKind.EVENT_COORDINATOR_LEADING, takeOver.getKind());
    assertEquals("coordinator b took the lead (epoch " + b.epoch() + ") from a", takeOver.getMessage());
    assertTrue(b.epoch() > epochA);
    assertEquals(List.of(EventKind.EVENT_COORDINATOR_LEADING, EventKind.EVENT_VM_CREATED,
        EventKind.EVENT_COORDINATOR_LEADING), kinds(read(b, -1, 100)));
    assertTrue(events.stream().noneMatch(e -> e.getMessage().equals("from the standby")));
    List<Long> seqs = events.stream().map(ClusterEvent::getSeq).toList();
    assertEquals(seqs.stream().sorted().distinct().toList(), seqs, "one order across leaders");
  }

  private static void await(String what, BooleanSupplier condition) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting until " + what);
      }
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(50));
    }
  }
}
