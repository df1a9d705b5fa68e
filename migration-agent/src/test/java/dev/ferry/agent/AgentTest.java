package dev.ferry.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.agent.cli.GuestCommand;
import dev.ferry.engine.clock.Clock;
import dev.ferry.common.InvalidConfigException;
import dev.ferry.agent.transport.AgentClient;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.GuestStatus;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationPolicy;
import dev.ferry.proto.MigrationReport;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Two agents in this JVM on loopback, driven through their admin API as the CLI drives them. */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class AgentTest {
  @TempDir
  Path datastore;

  private Agent a;
  private Agent b;
  private NettyTransport clientTransport;
  private AgentClient clientA;
  private AgentClient clientB;

  @BeforeEach
  void start() throws IOException {
    a = new Agent(config("host-a", 1L << 30, 2), Clock.SYSTEM).start();
    b = new Agent(config("host-b", 96L << 20, 1), Clock.SYSTEM).start();
    clientTransport = NettyTransport.create(NettyTransport.Kind.NIO, 1, "test-client");
    clientA = new AgentClient(clientTransport, a.address());
    clientB = new AgentClient(clientTransport, b.address());
  }

  private AgentConfig config(String host, long capacity, int inMax) {
    return AgentConfig.of(host, new InetSocketAddress("127.0.0.1", 0), datastore, NettyTransport.Kind.AUTO,
        capacity, 2, inMax);
  }

  @AfterEach
  void stop() {
    a.close();
    b.close();
    clientTransport.close();
  }

  private static GuestSpec spec(String name, String memory, String dirtyRate) {
    return dev.ferry.common.Specs.guest(name, memory, 1, dirtyRate, null, 20, 80, "mixed", 5);
  }

  @Test
  void aGuestMovesWithItsMemoryAndStepsAndLeavesNothingBehind() throws Exception {
    clientA.create(spec("web-1", "64MiB", "8MiB/s"));
    MigrationReport report = clientA.migrate("web-1", b.address(), MigrationPolicy.newBuilder().setDigest(true).build(),
        p -> { });
    assertEquals(MigrationPhase.PHASE_COMPLETED, report.getPhase(), report.getReason());
    GuestStatus arrived = clientB.awaitDigestAtResume("web-1", Duration.ofSeconds(60));
    assertEquals(report.getSourceDigest(), arrived.getDigestAtResume(), "memory at resume == at pause");
    assertEquals(report.getStateAtPause(), arrived.getVcpuStateAtResume(), "vCPUs continue from the exact step");
    assertEquals("running", arrived.getState());
    assertTrue(clientA.list().isEmpty(), "the source freed the guest");
    assertThrows(AgentClient.RefusedException.class, () -> clientA.status("web-1"));
  }

  @Test
  void aGuestStillBootingCountsWithTheMemoryOfItsSpec() throws Exception {
    java.util.concurrent.CountDownLatch booting = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.CompletableFuture<Void> booted = new java.util.concurrent.CompletableFuture<>();
    Thread boot = new Thread(() -> { }, "boot-held");
    // The clock holds the boot thread inside Guest.boot (its first resume), with the entry booting.
    Clock holding = () -> {
      if (Thread.currentThread().getName().equals("boot-held")) {
        booting.countDown();
        try {
          release.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      return System.nanoTime();
    };
    Agent c = new Agent(config("host-c", 96L << 20, 1), holding).start();
    try {
      boot = new Thread(() -> {
        try {
          c.bootGuest(spec("big-1", "64MiB", "1MiB/s"), 1, "");
          booted.complete(null);
        } catch (Throwable t) {
          booted.completeExceptionally(t);
        }
      }, "boot-held");
      boot.start();
      assertTrue(booting.await(60, TimeUnit.SECONDS), "the boot reached the guest's first resume");
      assertEquals("booting", c.guestStates().get("big-1"));

      dev.ferry.engine.precopy.TargetMigration.Refused refused = assertThrows(
          dev.ferry.engine.precopy.TargetMigration.Refused.class,
          () -> c.bootGuest(spec("web-2", "64MiB", "1MiB/s"), 1, ""));
      assertEquals("host host-c has 32.0 MiB free, web-2 needs 64.0 MiB", refused.getMessage());
      release.countDown();
      booted.get(60, TimeUnit.SECONDS);
      assertEquals("running", c.guestStates().get("big-1"));
    } finally {
      release.countDown();
      boot.join(60_000);
      c.close();
    }
  }

  @Test
  void badRequestsAreRefusedWithAReasonAndChangeNothing() throws Exception {
    clientA.create(spec("db-1", "32MiB", "0"));
    AgentClient.RefusedException duplicate = assertThrows(AgentClient.RefusedException.class,
        () -> clientA.create(spec("db-1", "32MiB", "0")));
    assertEquals("host host-a already has a guest named db-1", duplicate.getMessage());

    AgentClient.RefusedException tooBig = assertThrows(AgentClient.RefusedException.class,
        () -> clientA.create(spec("huge", "2GiB", "0")));
    assertEquals("host host-a has 992.0 MiB free, huge needs 2.0 GiB", tooBig.getMessage());

    AgentClient.RefusedException badName = assertThrows(AgentClient.RefusedException.class,
        () -> clientA.create(spec("Bad_Name", "32MiB", "0")));
    assertTrue(badName.getMessage().startsWith("name: 'Bad_Name' must be"), badName.getMessage());

    assertThrows(AgentClient.RefusedException.class, () -> clientA.status("nope"));
    assertThrows(AgentClient.RefusedException.class, () -> clientA.cancel("m-nope"));
    assertEquals(1, clientA.list().size());
  }

  @Test
  void aTargetWithoutRoomRefusesAndTheGuestStaysOnTheSource() throws Exception {
    clientA.create(spec("big-1", "128MiB", "4MiB/s"));
    MigrationReport report = clientA.migrate("big-1", b.address(), MigrationPolicy.getDefaultInstance(), p -> { });
    assertEquals(MigrationPhase.PHASE_ABORTED, report.getPhase());
    assertEquals("target refused: host host-b has 96.0 MiB free, big-1 needs 128.0 MiB", report.getReason());
    assertEquals("running", clientA.status("big-1").getState());
    assertTrue(clientB.list().isEmpty());
  }

  @Test
  void anUnreachableTargetAbortsAndTheGuestKeepsRunning() throws Exception {
    clientA.create(spec("lonely", "32MiB", "0"));
    InetSocketAddress nobody;
    try (java.net.ServerSocket probe = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      nobody = new InetSocketAddress("127.0.0.1", probe.getLocalPort());
    }
    MigrationReport report = clientA.migrate("lonely", nobody, MigrationPolicy.getDefaultInstance(), p -> { });
    assertEquals(MigrationPhase.PHASE_ABORTED, report.getPhase());
    assertTrue(report.getReason().startsWith("cannot connect to target agent at 127.0.0.1:" + nobody.getPort()),
        report.getReason());
    assertEquals("running", clientA.status("lonely").getState());
  }

  @Test
  void anInvalidPolicyIsRefusedNamingTheField() throws Exception {
    clientA.create(spec("strict", "32MiB", "0"));
    AgentClient.RefusedException e = assertThrows(AgentClient.RefusedException.class, () -> clientA.migrate("strict",
        b.address(), MigrationPolicy.newBuilder().setMaxDowntimeMs(120_000).build(), p -> { }));
    assertEquals("policy.max_downtime_ms: must be between 1 and 60000, got 120000", e.getMessage());
    assertEquals("running", clientA.status("strict").getState());
  }

  @Test
  void configValuesAreValidatedNamingTheSetting() {
    InvalidConfigException e = assertThrows(InvalidConfigException.class, () -> AgentConfig.of("Host A",
        new InetSocketAddress("127.0.0.1", 0), datastore, NettyTransport.Kind.AUTO, 1L << 30, 2, 2));
    assertEquals("host-id", e.field());
    assertThrows(InvalidConfigException.class, () -> AgentConfig.of("h", new InetSocketAddress("127.0.0.1", 0),
        datastore, NettyTransport.Kind.AUTO, 1L << 30, 0, 2));
  }

  @Test
  void aFileInPlaceOfTheDatastoreIsRefused() throws IOException {
    Path file = Files.createFile(datastore.resolve("not-a-dir"));
    InvalidConfigException e = assertThrows(InvalidConfigException.class, () -> AgentConfig.of("h",
        new InetSocketAddress("127.0.0.1", 0), file, NettyTransport.Kind.AUTO, 1L << 30, 2, 2));
    assertEquals("datastore", e.field());
  }

  @org.junit.jupiter.api.AfterAll
  static void noBufferLeaked() {
    dev.ferry.agent.testing.LeakRecorder.assertNoLeaks();
  }
}
