package dev.ferry.agent.transport;

import dev.ferry.agent.testing.TestCa;
import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.guest.Guest;
import dev.ferry.engine.precopy.MigrationContractTest;
import dev.ferry.engine.precopy.RecordingHost;
import dev.ferry.engine.precopy.SourceLink;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * The migration contract over TLS 1.3 with mutual authentication (encryption required on both
 * sides): every page arrives, checked, and memory is identical at resume.
 */
class TlsMigrationTest extends MigrationContractTest {
  private static Path dir;

  @BeforeAll
  static void certificates() throws Exception {
    dir = Files.createTempDirectory("ferry-tls-test");
    TestCa ca = new TestCa("test cluster CA");
    ca.issue("source", dir.resolve("source"));
    ca.issue("target", dir.resolve("target"));
  }

  /** Which TLS implementation both sides use. */
  protected MigrationTls.Provider provider() {
    return MigrationTls.Provider.AUTO;
  }

  @Override
  protected Connector connector() {
    MigrationTls source = MigrationTls.loadDir(MigrationTls.Mode.REQUIRED, dir.resolve("source"), provider());
    MigrationTls target = MigrationTls.loadDir(MigrationTls.Mode.REQUIRED, dir.resolve("target"), provider());
    return new Connector() {
      private final NettyTransport transport = NettyTransport.create(NettyTransport.Kind.AUTO, 2, "test");
      private AgentServer server;
      private NettyMigrationLink link;

      @Override
      public SourceLink connect(Guest guest, RecordingHost host) {
        host.reaper = NettyMigrationTest.OFF_THE_LOOP;
        server = new AgentServer(transport, host, (request, replies) -> replies.end(), Clock.SYSTEM, target,
            TlsPeerCheck.Verifier.NONE);
        InetSocketAddress address = server.bind(new InetSocketAddress("127.0.0.1", 0));
        link = NettyMigrationLink.connect(transport, address, guest.memory(), 0, 5_000, source, "target");
        return link;
      }

      @Override
      public void corruptPages() {
        // After TLS (on the plain text): damaged ciphertext would fail TLS's own check first.
        link.channel().pipeline().addAfter(TlsClient.HANDLER, "corrupt", new NettyMigrationTest.Corrupter());
      }

      @Override
      public void breakLink() {
        link.channel().close().syncUninterruptibly();
      }

      @Override
      public void close() {
        if (server != null) {
          server.close();
        }
        transport.close();
      }
    };
  }

  @AfterAll
  static void noBufferLeaked() throws Exception {
    dev.ferry.agent.testing.LeakRecorder.assertNoLeaks();
    try (var files = Files.walk(dir)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }
}
