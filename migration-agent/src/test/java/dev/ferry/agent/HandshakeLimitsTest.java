package dev.ferry.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.agent.testing.RawPeer;
import dev.ferry.agent.transport.NettyTransport;
import dev.ferry.common.InvalidConfigException;
import dev.ferry.common.MigrationIds;
import dev.ferry.engine.clock.Clock;
import dev.ferry.proto.Control;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.HelloAck;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** What a peer that has proved nothing can make a (standalone) agent do: refuse, and hold little. */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class HandshakeLimitsTest {
  @TempDir
  Path datastore;

  private Agent agent;

  @BeforeEach
  void start() throws IOException {
    agent = new Agent(AgentConfig.of("host-t", new InetSocketAddress("127.0.0.1", 0), datastore,
        NettyTransport.Kind.AUTO, 1L << 30, 2, 2), Clock.SYSTEM).start();
  }

  @AfterEach
  void stop() {
    agent.close();
  }

  private static GuestSpec spec(String name) {
    return dev.ferry.common.Specs.guest(name, "32MiB", 1, "0", null, 20, 80, "mixed", 5);
  }

  @Test
  void badMigrationIdsGetOneRefusalNamingTheField() throws IOException {
    for (String id : List.of("", "..", "m\u0000x", "m-1\n", "m-" + "a".repeat(33), "../../hosts/x")) {
      try (RawPeer peer = new RawPeer(agent.address())) {
        peer.send(RawPeer.hello(id, spec("web-1")));
        HelloAck ack = peer.receive().getHelloAck();
        assertFalse(ack.getAccepted(), "id " + MigrationIds.printable(id));
        assertTrue(ack.getReason().startsWith("migration_id: '"), ack.getReason());
        assertTrue(peer.closedWithin(Duration.ofSeconds(5)), "closed after the refusal");
      }
    }
    assertTrue(agent.guestStates().isEmpty());
  }

  @Test
  void aHelloReservesNothingAndOneAdmittedConnectionPerIdIsAllowed() throws IOException {
    String id = MigrationIds.random();
    try (RawPeer first = new RawPeer(agent.address()); RawPeer stray = new RawPeer(agent.address())) {
      first.send(RawPeer.hello(id, spec("web-1")));
      assertTrue(first.receive().getHelloAck().getAccepted());
      assertTrue(agent.guestStates().isEmpty(), "nothing reserved or allocated before the source's proof");

      stray.send(RawPeer.hello(id, spec("web-1")));
      assertTrue(stray.receive().getHelloAck().getAccepted(), "a second Hello is only answered");
      first.send(RawPeer.auth(new byte[0])); // standalone: no secret to prove
      RawPeer.await(() -> "incoming".equals(agent.guestStates().get("web-1")), Duration.ofSeconds(10), "admission");

      stray.send(RawPeer.auth(new byte[0]));
      Control refusal = stray.receive();
      assertEquals("migration " + id + " already has its connection to host-t", refusal.getAbort().getReason());
      assertEquals("incoming", agent.guestStates().get("web-1"), "the first connection is undisturbed");

      try (RawPeer late = new RawPeer(agent.address())) {
        late.send(RawPeer.hello(id, spec("web-1")));
        HelloAck ack = late.receive().getHelloAck();
        assertFalse(ack.getAccepted());
        assertEquals("migration " + id + " already has its connection to host-t", ack.getReason());
      }
    }
    RawPeer.await(() -> agent.guestStates().isEmpty(), Duration.ofSeconds(10), "the guest freed after the link dropped");
  }

  @Test
  void framesLargerThanAFewKibibytesAreRefusedBeforeAuthentication() throws IOException {
    try (RawPeer peer = new RawPeer(agent.address())) {
      ByteBuffer prefix = ByteBuffer.allocate(5 + 1000).putInt(1 << 20).put((byte) 1);
      peer.sendRaw(prefix.array());
      assertTrue(peer.closedWithin(Duration.ofSeconds(5)), "a 1 MiB frame before authentication closes the connection");
    }
  }

  @Test
  void theHandshakeDeadlineCountsFromAcceptAndIsNotRestartedByTrickling() throws IOException {
    try (RawPeer peer = new RawPeer(agent.address())) {
      peer.sendRaw(ByteBuffer.allocate(5).putInt(100).put((byte) 1).array());
      long acceptedNanos = System.nanoTime();
      boolean closed = false;
      while (!closed && System.nanoTime() - acceptedNanos < TimeUnit.SECONDS.toNanos(25)) {
        try {
          peer.sendRaw(new byte[] {8});
        } catch (IOException e) {
          closed = true;
          break;
        }
        closed = peer.closedWithin(Duration.ofSeconds(2));
      }
      assertTrue(closed, "a peer trickling a byte every 2 s is closed at the handshake deadline");
    }
  }

  @Test
  void unauthenticatedConnectionsAreCapped() throws IOException {
    List<RawPeer> peers = new ArrayList<>();
    try {
      for (int i = 0; i < 70; i++) {
        peers.add(new RawPeer(agent.address()));
      }
      int[] closed = new int[1];
      List<RawPeer> open = new ArrayList<>(peers);
      RawPeer.await(() -> {
        for (java.util.Iterator<RawPeer> it = open.iterator(); it.hasNext(); ) {
          try {
            if (it.next().closedWithin(Duration.ofMillis(5))) {
              it.remove();
              closed[0]++;
            }
          } catch (IOException e) {
            throw new IllegalStateException(e);
          }
        }
        return closed[0] >= 6;
      }, Duration.ofSeconds(8), "the connections past the cap to be closed");
      assertEquals(6, closed[0], "70 connections, 64 may wait for their handshake");
    } finally {
      for (RawPeer peer : peers) {
        peer.close();
      }
    }
  }

  @Test
  void aStandaloneAgentListensOnLoopbackOnly() {
    InvalidConfigException e = assertThrows(InvalidConfigException.class, () -> AgentConfig.of("h",
        new InetSocketAddress("0.0.0.0", 0), datastore, NettyTransport.Kind.AUTO, 1L << 30, 2, 2));
    assertEquals("listen", e.field());
    assertTrue(e.getMessage().contains("--listen 0.0.0.0:0 is not a loopback address"), e.getMessage());
  }
}
