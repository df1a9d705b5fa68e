package dev.ferry.agent.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.precopy.LinkException;
import dev.ferry.proto.Control;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.util.ReferenceCountUtil;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.channels.ClosedChannelException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** A link's failure reason says what was being done and what went wrong, even without a message. */
class LinkFailureReasonTest {
  @Test
  void aWriteFailingWithoutAMessageNamesTheExceptionAndWhatWasSent() throws Exception {
    assertEquals("sending DEVICE_STATE failed: the connection is closed (ClosedChannelException)",
        failedWrite(new ClosedChannelException()));
    assertEquals("sending DEVICE_STATE failed: IOException: Broken pipe",
        failedWrite(new IOException(null, new IOException("Broken pipe"))));
    assertEquals("sending DEVICE_STATE failed: IllegalStateException",
        failedWrite(new IllegalStateException()));
  }

  @Test
  void describeNamesTheClassWhenThereIsNoMessage() {
    assertEquals("the connection is closed (ClosedChannelException)", Failures.describe(new ClosedChannelException()));
    assertEquals("IOException: Connection reset", Failures.describe(new IOException(null,
        new java.net.SocketException("Connection reset"))));
    assertEquals("NullPointerException", Failures.describe(new NullPointerException()));
  }

  /**
   * The source's cleanup discards the batch it was building when a send throws; a send on a
   * failed link has already given the buffers back, so that second discard must do nothing (it
   * threw IllegalReferenceCountException, and the migration aborted with "internal error").
   */
  @Test
  void aBatchRefusedByAFailedLinkIsReleasedOnce() throws Exception {
    NettyTransport transport = NettyTransport.create(NettyTransport.Kind.NIO, 1, "test");
    GuestMemory memory = GuestMemory.allocate(16L << 20);
    try (ServerSocket peer = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      NettyMigrationLink link = NettyMigrationLink.connect(transport,
          new InetSocketAddress("127.0.0.1", peer.getLocalPort()), memory, 0, 5_000);
      dev.ferry.engine.precopy.SourceLink.OutboundBatch batch = link.newBatch();
      dev.ferry.engine.wire.PageBatchWriter writer = new dev.ferry.engine.wire.PageBatchWriter(memory);
      writer.begin(batch.header(), batch::payload, 1);
      writer.add(0, false, true);
      writer.finish();
      // The target goes while the batch is being built.
      failWrites(link, new ClosedChannelException());
      link.sendControl(Control.newBuilder().setDeviceState(dev.ferry.proto.DeviceState.getDefaultInstance()).build());
      org.junit.jupiter.api.Assertions.assertTrue(link.channel().closeFuture().await(30, TimeUnit.SECONDS));
      assertThrows(LinkException.class, () -> link.sendBatch(batch, writer, GuestMemory.PAGE_BYTES));
      batch.discard();
      link.close();
    } finally {
      transport.close();
      memory.release();
    }
  }

  private static void failWrites(NettyMigrationLink link, Throwable cause) {
    link.channel().pipeline().addFirst("fail-writes", new ChannelOutboundHandlerAdapter() {
      @Override
      public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
        ReferenceCountUtil.release(msg);
        promise.setFailure(cause);
      }
    });
  }

  /** Sends a DeviceState over a real connection whose writes fail with {@code cause}; returns the link's reason. */
  private static String failedWrite(Throwable cause) throws Exception {
    NettyTransport transport = NettyTransport.create(NettyTransport.Kind.NIO, 1, "test");
    GuestMemory memory = GuestMemory.allocate(16L << 20);
    try (ServerSocket peer = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      NettyMigrationLink link = NettyMigrationLink.connect(transport,
          new InetSocketAddress("127.0.0.1", peer.getLocalPort()), memory, 0, 5_000);
      failWrites(link, cause);
      link.sendControl(Control.newBuilder().setDeviceState(dev.ferry.proto.DeviceState.getDefaultInstance()).build());
      // A failed write closes the link (after recording why): then the reason is there to read.
      org.junit.jupiter.api.Assertions.assertTrue(link.channel().closeFuture().await(30, TimeUnit.SECONDS));
      LinkException failed = assertThrows(LinkException.class, () -> link.pollControl(0));
      link.close();
      return failed.getMessage();
    } finally {
      transport.close();
      memory.release();
    }
  }
}
