package dev.ferry.agent.transport;

import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.guest.Guest;
import dev.ferry.engine.precopy.MigrationContractTest;
import dev.ferry.engine.precopy.PageCorruption;
import dev.ferry.engine.precopy.RecordingHost;
import dev.ferry.engine.precopy.SourceLink;
import dev.ferry.engine.wire.Wire;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import java.net.InetSocketAddress;

/** The migration contract over real sockets: an agent server and a Netty link on loopback. */
class NettyMigrationTest extends MigrationContractTest {
  /** Where the test host destroys failed guests: not on the event loop (destroying waits for the vCPUs). */
  static final java.util.concurrent.Executor OFF_THE_LOOP = task -> {
    Thread reaper = new Thread(task, "test-reaper");
    reaper.setDaemon(true);
    reaper.start();
  };

  @Override
  protected Connector connector() {
    return new Connector() {
      private final NettyTransport transport = NettyTransport.create(NettyTransport.Kind.AUTO, 2, "test");
      private AgentServer server;
      private NettyMigrationLink link;

      @Override
      public SourceLink connect(Guest source, RecordingHost host) {
        host.reaper = OFF_THE_LOOP;
        server = new AgentServer(transport, host, (request, replies) -> replies.end(), Clock.SYSTEM);
        InetSocketAddress address = server.bind(new InetSocketAddress("127.0.0.1", 0));
        link = NettyMigrationLink.connect(transport, address, source.memory(), 0, 5_000);
        return link;
      }

      @Override
      public void corruptPages() {
        link.channel().pipeline().addFirst("corrupt", new Corrupter());
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

  /**
   * On the wire, just before the socket: replaces each page frame with a damaged copy. (The frame
   * itself points into the source guest's memory, which must stay untouched.)
   */
  static final class Corrupter extends ChannelOutboundHandlerAdapter {
    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
      if (msg instanceof ByteBuf frame && frame.readableBytes() > 5 && frame.getByte(frame.readerIndex()) == Wire.KIND_PAGES) {
        ByteBuf copy = ctx.alloc().directBuffer(frame.readableBytes());
        copy.writeBytes(frame, frame.readerIndex(), frame.readableBytes());
        frame.release();
        PageCorruption.flipFirstPayloadByte(copy.nioBuffer(1, copy.readableBytes() - 1));
        ctx.write(copy, promise);
        return;
      }
      ctx.write(msg, promise);
    }
  }

  @org.junit.jupiter.api.AfterAll
  static void noBufferLeaked() {
    dev.ferry.agent.testing.LeakRecorder.assertNoLeaks();
  }
}
