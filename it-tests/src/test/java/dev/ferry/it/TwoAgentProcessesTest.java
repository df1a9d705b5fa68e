package dev.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.agent.cli.AgentProcess;
import dev.ferry.agent.cli.GuestCommand;
import dev.ferry.agent.transport.AgentClient;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.proto.GuestStatus;
import dev.ferry.proto.MigrationPhase;
import dev.ferry.proto.MigrationPolicy;
import dev.ferry.proto.MigrationProgress;
import dev.ferry.proto.MigrationReport;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Two agents as separate JVM processes on loopback, as an operator runs them. */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class TwoAgentProcessesTest {
  @TempDir
  Path dir;

  private AgentProcess a;
  private AgentProcess b;
  private NettyTransport transport;
  private AgentClient clientA;
  private AgentClient clientB;

  @BeforeEach
  void start() throws Exception {
    a = AgentProcess.start("it-a", dir.resolve("datastore"), dir.resolve("a.log"), List.of());
    b = AgentProcess.start("it-b", dir.resolve("datastore"), dir.resolve("b.log"), List.of());
    transport = NettyTransport.create(NettyTransport.Kind.NIO, 1, "it-client");
    clientA = new AgentClient(transport, a.address());
    clientB = new AgentClient(transport, b.address());
  }

  @AfterEach
  void stop() {
    if (a != null) {
      a.close();
    }
    if (b != null) {
      b.close();
    }
    if (transport != null) {
      transport.close();
    }
  }

  @Test
  void aBusyGuestMovesBetweenProcessesExactly() throws Exception {
    clientA.create(dev.ferry.common.Specs.guest("web-1", "256MiB", 2, "32MiB/s", "64MiB", 20, 80, "mixed", 11));
    awaitSteps(clientA, "web-1", 1000);

    MigrationReport report = clientA.migrate("web-1", b.address(), MigrationPolicy.newBuilder().setDigest(true).build(),
        p -> { });

    assertEquals(MigrationPhase.PHASE_COMPLETED, report.getPhase(), report.getReason());
    GuestStatus arrived = clientB.awaitDigestAtResume("web-1", Duration.ofSeconds(120));
    assertEquals(report.getSourceDigest(), arrived.getDigestAtResume(),
        "the target's memory at resume equals the source's at pause");
    assertEquals(report.getStateAtPause(), arrived.getVcpuStateAtResume(), "the vCPUs resumed at the exact step");
    long stepsAtPause = report.getStateAtPause().getVcpusList().stream().mapToLong(v -> v.getStep()).sum();
    awaitSteps(clientB, "web-1", stepsAtPause + 1000);
    assertTrue(clientA.list().isEmpty(), "the source freed the guest");
    assertTrue(report.getDowntimeNs() > 0 && report.getRounds() >= 2, report.toString());
  }

  @Test
  void killingTheTargetMidMigrationLeavesTheGuestRunningOnTheSource() throws Exception {
    clientA.create(dev.ferry.common.Specs.guest("db-1", "512MiB", 1, "8MiB/s", "64MiB", 20, 80, "random", 3));
    AtomicLong sent = new AtomicLong();
    CompletableFuture<MigrationReport> migration = CompletableFuture.supplyAsync(() -> {
      try {
        return clientA.migrate("db-1", b.address(),
            MigrationPolicy.newBuilder().setBandwidthBytesPerS(32L << 20).build(),
            (MigrationProgress p) -> sent.set(p.getGuestBytesSent()));
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    });
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (sent.get() < (32L << 20)) {
      assertTrue(System.nanoTime() < deadline, "the migration never got going");
      LockSupport.parkNanos(10_000_000);
    }
    b.kill();

    MigrationReport report = migration.get(60, TimeUnit.SECONDS);
    assertEquals(MigrationPhase.PHASE_ABORTED, report.getPhase());
    assertTrue(report.getReason().startsWith("link to target lost"), report.getReason());
    GuestStatus status = clientA.status("db-1");
    assertEquals("running", status.getState());
    awaitSteps(clientA, "db-1", status.getSteps() + 100);
  }

  /**
   * The README's promise for SIGTERM: an agent cancels its outgoing migrations (their guests keep
   * running on it until it exits), the targets free what they received, and it exits 0.
   */
  @Test
  void sigtermCancelsOutgoingMigrationsAndExitsCleanly() throws Exception {
    clientA.create(dev.ferry.common.Specs.guest("leaving", "512MiB", 1, "8MiB/s", "64MiB", 20, 80, "random", 5));
    AtomicLong sent = new AtomicLong();
    // 512 MiB at 16 MiB/s: half a minute, so SIGTERM certainly arrives mid-migration.
    CompletableFuture<MigrationReport> migration = CompletableFuture.supplyAsync(() -> {
      try {
        return clientA.migrate("leaving", b.address(),
            MigrationPolicy.newBuilder().setBandwidthBytesPerS(16L << 20).build(),
            (MigrationProgress p) -> sent.set(p.getGuestBytesSent()));
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    });
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (sent.get() < (16L << 20)) {
      assertTrue(System.nanoTime() < deadline, "the migration never got going");
      LockSupport.parkNanos(10_000_000);
    }
    assertEquals(List.of("leaving"), clientB.list().stream().map(g -> g.getSpec().getName()).toList(),
        "the target holds the incoming copy");

    a.close(); // SIGTERM; SIGKILL (exit 137) if it has not exited after 30 s
    assertFalse(a.isAlive());
    assertEquals(0, a.exitCode(), "ferry agent exits 0 on SIGTERM, within 30 s");
    a = null;

    MigrationReport report = migration.get(30, TimeUnit.SECONDS);
    assertEquals(MigrationPhase.PHASE_CANCELLED, report.getPhase(), "the source kept the guest: " + report);
    assertTrue(report.getReason().contains("it-a is shutting down"), report.getReason());
    deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!clientB.list().isEmpty()) {
      assertTrue(System.nanoTime() < deadline, "the target still holds " + clientB.list());
      LockSupport.parkNanos(20_000_000);
    }
  }

  private static void awaitSteps(AgentClient client, String guest, long steps) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (client.status(guest).getSteps() < steps) {
      assertTrue(System.nanoTime() < deadline, guest + " did not reach step " + steps);
      LockSupport.parkNanos(20_000_000);
    }
  }
}
