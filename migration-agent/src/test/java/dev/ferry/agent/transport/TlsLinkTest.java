package dev.ferry.agent.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.agent.testing.TestCa;
import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.precopy.LinkException;
import dev.ferry.engine.precopy.RecordingHost;
import dev.ferry.engine.wire.Wire;
import dev.ferry.proto.AgentReply;
import dev.ferry.proto.AgentRequest;
import dev.ferry.proto.Control;
import dev.ferry.proto.Hello;
import dev.ferry.proto.HelloAck;
import dev.ferry.proto.ListGuests;
import dev.ferry.proto.Ok;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS between agents over real sockets: who may connect, and what a peer is refused for. The
 * admin request (any certificate of the CA will do) shows a link works end to end; a Hello shows
 * the target's checks of a migration's source.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TlsLinkTest {
  private static final Duration WAIT = Duration.ofSeconds(10);
  @TempDir
  static Path dir;
  private static TestCa ca;
  private static TestCa otherCa;

  private final NettyTransport transport = NettyTransport.create(NettyTransport.Kind.AUTO, 2, "tls-test");
  private AgentServer server;
  private GuestMemory memory;

  @BeforeAll
  static void cas() throws Exception {
    ca = new TestCa("cluster CA");
    otherCa = new TestCa("another cluster's CA");
  }

  @AfterEach
  void close() {
    if (server != null) {
      server.close();
    }
    if (memory != null) {
      memory.release();
    }
    transport.close();
  }

  @AfterAll
  static void noBufferLeaked() {
    dev.ferry.agent.testing.LeakRecorder.assertNoLeaks();
  }

  private static MigrationTls tls(TestCa authority, String host, MigrationTls.Mode mode) throws Exception {
    return MigrationTls.loadDir(mode, authority.issue(host, dir.resolve(host + "-" + System.nanoTime())),
        MigrationTls.Provider.AUTO);
  }

  /** An agent server that answers every admin request "ok" and checks migrations with {@code verifier}. */
  private InetSocketAddress serve(MigrationTls tls, TlsPeerCheck.Verifier verifier) {
    server = new AgentServer(transport, new RecordingHost(Clock.SYSTEM, false), (request, replies) -> {
      replies.send(AgentReply.newBuilder().setOk(Ok.newBuilder().setMessage("ok")).build());
      replies.end();
    }, Clock.SYSTEM, tls, verifier);
    return server.bind(new InetSocketAddress("127.0.0.1", 0));
  }

  private AgentReply ask(InetSocketAddress agent, MigrationTls tls, String agentHost) throws IOException {
    return new AgentClient(transport, agent, tls, agentHost).call(
        AgentRequest.newBuilder().setList(ListGuests.getDefaultInstance()).build(), WAIT);
  }

  @Test
  void peersWithCertificatesOfTheSameCaTalk() throws Exception {
    InetSocketAddress agent = serve(tls(ca, "host-b", MigrationTls.Mode.REQUIRED), TlsPeerCheck.Verifier.NONE);
    assertEquals("ok", ask(agent, tls(ca, "host-a", MigrationTls.Mode.REQUIRED), "host-b").getOk().getMessage());
  }

  @Test
  void aClientWithACertificateOfAnotherCaIsRefused() throws Exception {
    InetSocketAddress agent = serve(tls(ca, "host-b", MigrationTls.Mode.REQUIRED), TlsPeerCheck.Verifier.NONE);
    // It trusts the cluster's CA (so its own check of the server passes), but its certificate is
    // signed by another CA.
    Path strangerDir = otherCa.issue("host-a", dir.resolve("stranger"));
    java.nio.file.Files.copy(ca.issue("host-x", dir.resolve("x")).resolve("ca.crt"), strangerDir.resolve("ca.crt"),
        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    MigrationTls stranger = MigrationTls.loadDir(MigrationTls.Mode.REQUIRED, strangerDir, MigrationTls.Provider.AUTO);
    // TLS 1.3: the client's handshake completes before the server has checked its certificate;
    // the server's alert arrives with the first read.
    IOException e = assertThrows(IOException.class, () -> ask(agent, stranger, "host-b"));
    assertTrue(e.getMessage().toLowerCase().contains("certificate") || e.getMessage().contains("alert"),
        e.getMessage());
  }

  @Test
  void aServerWithACertificateOfAnotherCaIsRefused() throws Exception {
    InetSocketAddress agent = serve(tls(otherCa, "host-b", MigrationTls.Mode.REQUIRED), TlsPeerCheck.Verifier.NONE);
    IOException e = assertThrows(IOException.class,
        () -> ask(agent, tls(ca, "host-a", MigrationTls.Mode.REQUIRED), "host-b"));
    assertTrue(e.getMessage().startsWith("TLS handshake with agent at"), e.getMessage());
  }

  @Test
  void aTargetWhoseCertificateNamesAnotherHostIsRefused() throws Exception {
    InetSocketAddress agent = serve(tls(ca, "host-c", MigrationTls.Mode.REQUIRED), TlsPeerCheck.Verifier.NONE);
    memory = GuestMemory.allocate(16 << 20);
    LinkException e = assertThrows(LinkException.class, () -> NettyMigrationLink.connect(transport, agent, memory, 0,
        5_000, tls(ca, "host-a", MigrationTls.Mode.REQUIRED), "host-b"));
    assertTrue(e.getMessage().contains("a certificate for host host-c, not for host-b"), e.getMessage());
  }

  @Test
  void aSourceWhoseCertificateIsNotTheHostItClaimsIsRefused() throws Exception {
    InetSocketAddress agent = serve(tls(ca, "host-b", MigrationTls.Mode.REQUIRED), TlsPeerCheck.Verifier.NONE);
    HelloAck ack = hello(agent, tls(ca, "host-c", MigrationTls.Mode.REQUIRED), "host-a");
    assertFalse(ack.getAccepted());
    assertEquals("the source's certificate is for host host-c, but it says it is host-a", ack.getReason());
  }

  @Test
  void aSourceOtherThanTheOneTheMigrationRecordNamesIsRefused() throws Exception {
    TlsPeerCheck.Verifier record = id -> CompletableFuture.supplyAsync(() -> id.equals("m-1") ? "host-a" : null);
    InetSocketAddress agent = serve(tls(ca, "host-b", MigrationTls.Mode.REQUIRED), record);
    HelloAck ack = hello(agent, tls(ca, "host-c", MigrationTls.Mode.REQUIRED), "host-c");
    assertFalse(ack.getAccepted());
    assertEquals("migration m-1 comes from host host-a (its record), not from host host-c (the certificate of this"
        + " connection)", ack.getReason());
  }

  @Test
  void requiredRefusesAPlainPeer() throws Exception {
    InetSocketAddress agent = serve(tls(ca, "host-b", MigrationTls.Mode.REQUIRED), TlsPeerCheck.Verifier.NONE);
    IOException e = assertThrows(IOException.class, () -> ask(agent, MigrationTls.OFF, null));
    assertTrue(e.getMessage().contains("closed the connection without replying"), e.getMessage());
  }

  @Test
  void aRequiredClientRefusesAPlainServer() throws Exception {
    InetSocketAddress agent = serve(MigrationTls.OFF, TlsPeerCheck.Verifier.NONE);
    IOException e = assertThrows(IOException.class,
        () -> ask(agent, tls(ca, "host-a", MigrationTls.Mode.REQUIRED), "host-b"));
    assertTrue(e.getMessage().contains("does not speak TLS"), e.getMessage());
  }

  @Test
  void opportunisticPeersUseTlsWhenBothHaveItAndPlainOtherwise() throws Exception {
    MigrationTls client = tls(ca, "host-a", MigrationTls.Mode.OPPORTUNISTIC);
    InetSocketAddress plain = serve(MigrationTls.OFF, TlsPeerCheck.Verifier.NONE);
    assertEquals("ok", ask(plain, client, "host-b").getOk().getMessage(), "falls back to a plain server");
    server.close();
    InetSocketAddress both = serve(tls(ca, "host-b", MigrationTls.Mode.OPPORTUNISTIC), TlsPeerCheck.Verifier.NONE);
    assertEquals("ok", ask(both, client, "host-b").getOk().getMessage(), "TLS");
    assertEquals("ok", ask(both, MigrationTls.OFF, null).getOk().getMessage(), "a plain client is still served");
  }

  @Test
  void anOpportunisticClientNeverFallsBackAfterACertificateFailure() throws Exception {
    InetSocketAddress agent = serve(tls(ca, "host-c", MigrationTls.Mode.OPPORTUNISTIC), TlsPeerCheck.Verifier.NONE);
    IOException e = assertThrows(IOException.class,
        () -> ask(agent, tls(ca, "host-a", MigrationTls.Mode.OPPORTUNISTIC), "host-b"));
    assertTrue(e.getMessage().contains("a certificate for host host-c"), e.getMessage());
  }

  /** Opens a migration link and sends a Hello for migration m-1 claiming {@code claimedSource}. */
  private HelloAck hello(InetSocketAddress agent, MigrationTls tls, String claimedSource) throws Exception {
    memory = GuestMemory.allocate(16 << 20);
    NettyMigrationLink link = NettyMigrationLink.connect(transport, agent, memory, 0, 5_000, tls, "host-b");
    try {
      link.sendControl(Control.newBuilder().setHello(Hello.newBuilder().setProtocolVersion(Wire.PROTOCOL_VERSION)
          .setMigrationId("m-1").setSourceHost(claimedSource).setPageSize(GuestMemory.PAGE_BYTES)).build());
      Control reply = link.pollControl(WAIT.toNanos());
      assertTrue(reply != null && reply.hasHelloAck(), "a HelloAck, not " + reply);
      return reply.getHelloAck();
    } finally {
      link.close();
    }
  }
}
