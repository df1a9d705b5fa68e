package dev.ferry.bench;

import dev.ferry.agent.transport.NettyTransport;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.WriteBufferWaterMark;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The second yardstick: the same transfer as {@link TcpBaseline}, but through Netty with the
 * agents' transport, allocator, receive-buffer sizes and water marks, and nothing else (no
 * framing, no checksums, the receiver drops the bytes). The gap between the two baselines is what
 * the event-loop transport costs on this machine before Ferry does any work.
 */
final class NettyBaseline implements AutoCloseable {
  private static final int CHUNK_BYTES = TcpBaseline.CHUNK_BYTES;
  private final NettyTransport transport;
  private final ByteBuf source;

  NettyBaseline(NettyTransport.Kind kind, long bytes) {
    this.transport = NettyTransport.create(kind, 2, "netty-baseline");
    int size = (int) Math.min(bytes, 1L << 30);
    size -= size % CHUNK_BYTES;
    this.source = transport.allocator().directBuffer(size, size);
    for (int i = 0; i + 8 <= size; i += 8) {
      source.writeLong(i * 0x9E3779B97F4A7C15L);
    }
  }

  /** Moves {@code bytes} (whole chunks) from a client channel to a server channel; bytes per second. */
  double measure(long bytes) throws IOException {
    long chunks = bytes / CHUNK_BYTES;
    long total = chunks * CHUNK_BYTES;
    CompletableFuture<Long> done = new CompletableFuture<>();
    Channel server = new ServerBootstrap().group(transport.group()).channel(transport.serverChannel())
        .childOption(ChannelOption.ALLOCATOR, transport.allocator())
        .childOption(ChannelOption.RCVBUF_ALLOCATOR, new AdaptiveRecvByteBufAllocator(4096, 64 * 1024, 256 * 1024))
        .childHandler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            ch.pipeline().addLast(new ChannelInboundHandlerAdapter() {
              private long received;

              @Override
              public void channelRead(ChannelHandlerContext ctx, Object msg) {
                received += ((ByteBuf) msg).readableBytes();
                ((ByteBuf) msg).release();
                if (received >= total) {
                  done.complete(System.nanoTime());
                }
              }
            });
          }
        }).bind(new InetSocketAddress("127.0.0.1", 0)).syncUninterruptibly().channel();
    Channel client = new Bootstrap().group(transport.group()).channel(transport.channel())
        .option(ChannelOption.ALLOCATOR, transport.allocator())
        .option(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(2 << 20, 4 << 20))
        .handler(new ChannelInboundHandlerAdapter())
        .connect(server.localAddress()).syncUninterruptibly().channel();
    try {
      long start = System.nanoTime();
      int slots = source.capacity() / CHUNK_BYTES;
      for (long c = 0; c < chunks; c++) {
        while (!client.isWritable()) {
          LockSupport.parkNanos(20_000);
        }
        client.writeAndFlush(source.retainedSlice((int) (c % slots) * CHUNK_BYTES, CHUNK_BYTES));
      }
      long end = done.get(5, TimeUnit.MINUTES);
      return total * 1e9 / (end - start);
    } catch (Exception e) {
      throw new IOException("netty baseline failed: " + e, e);
    } finally {
      client.close().syncUninterruptibly();
      server.close().syncUninterruptibly();
    }
  }

  @Override
  public void close() {
    source.release();
    transport.close();
  }
}
