package dev.ferry.agent.transport;

import dev.ferry.agent.precopy.LinkException;
import dev.ferry.agent.precopy.SourceLink;
import dev.ferry.agent.wire.Wire;
import dev.ferry.proto.Control;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.handler.traffic.ChannelTrafficShapingHandler;
import io.netty.util.ReferenceCountUtil;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The source's TCP connection to a target agent for one migration. Back-pressure is the
 * channel's writability: the engine waits while more than {@link #WRITE_BUFFER_HIGH_BYTES} are
 * queued, so the sender never buffers without bound. An optional bandwidth cap is Netty's traffic
 * shaper (it stands in for a slower link); counters advance when bytes reach the socket.
 */
public final class NettyMigrationLink implements SourceLink {
  static final int WRITE_BUFFER_LOW_BYTES = 2 << 20;
  static final int WRITE_BUFFER_HIGH_BYTES = 4 << 20;
  private static final long SHAPER_CHECK_INTERVAL_MS = 50;
  private static final int INCOMING_CONTROL_MAX = 64;

  private final Channel channel;
  private final LinkedBlockingQueue<Control> incoming = new LinkedBlockingQueue<>(INCOMING_CONTROL_MAX);
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition writable = lock.newCondition();
  private final AtomicLong guestBytesFlushed = new AtomicLong();
  private final AtomicLong wireBytesFlushed = new AtomicLong();
  private volatile String failure;

  private NettyMigrationLink(Channel channel) {
    this.channel = channel;
  }

  /** Connects to {@code target}; throws {@link LinkException} naming the address if it cannot. */
  public static NettyMigrationLink connect(NettyTransport transport, InetSocketAddress target,
      long bandwidthBytesPerSecond, long connectTimeoutMillis) {
    Holder holder = new Holder();
    Bootstrap bootstrap = new Bootstrap()
        .group(transport.group())
        .channel(transport.channel())
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) connectTimeoutMillis)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.SO_KEEPALIVE, true)
        .option(ChannelOption.WRITE_BUFFER_WATER_MARK,
            new WriteBufferWaterMark(WRITE_BUFFER_LOW_BYTES, WRITE_BUFFER_HIGH_BYTES))
        .handler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            if (bandwidthBytesPerSecond > 0) {
              ch.pipeline().addLast("bandwidth-cap",
                  new ChannelTrafficShapingHandler(bandwidthBytesPerSecond, 0, SHAPER_CHECK_INTERVAL_MS));
            }
            Frames.install(ch.pipeline());
            ch.pipeline().addLast("source", new SourceHandler(holder));
          }
        });
    ChannelFuture connected = bootstrap.connect(target).awaitUninterruptibly();
    if (!connected.isSuccess()) {
      Throwable cause = connected.cause();
      throw new LinkException("cannot connect to target agent at " + target.getHostString() + ":" + target.getPort()
          + ": " + (cause == null ? "cancelled" : cause.getMessage()), cause);
    }
    NettyMigrationLink link = new NettyMigrationLink(connected.channel());
    holder.link = link;
    return link;
  }

  /** Lets the handler, built before the link, reach it. */
  private static final class Holder {
    volatile NettyMigrationLink link;
  }

  @Override
  public void sendControl(Control message) {
    checkOpen();
    channel.writeAndFlush(message).addListener(f -> {
      if (!f.isSuccess()) {
        fail("write failed: " + f.cause().getMessage());
      } else {
        wireBytesFlushed.addAndGet(message.getSerializedSize() + 5L);
      }
    });
  }

  @Override
  public Control pollControl(long timeoutNanos) throws InterruptedException {
    Control message = timeoutNanos <= 0 ? incoming.poll() : incoming.poll(timeoutNanos, TimeUnit.NANOSECONDS);
    if (message == null && failure != null) {
      throw new LinkException(failure);
    }
    return message;
  }

  @Override
  public OutboundBatch newBatch() {
    checkOpen();
    ByteBuf buf = channel.alloc().directBuffer(1 + Wire.BATCH_BYTES_MAX);
    buf.writeByte(Wire.KIND_PAGES);
    ByteBuffer view = buf.nioBuffer(1, Wire.BATCH_BYTES_MAX);
    return new NettyBatch(buf, view);
  }

  private static final class NettyBatch implements OutboundBatch {
    final ByteBuf buf;
    final ByteBuffer view;

    NettyBatch(ByteBuf buf, ByteBuffer view) {
      this.buf = buf;
      this.view = view;
    }

    @Override
    public ByteBuffer buffer() {
      return view;
    }

    @Override
    public void discard() {
      buf.release();
    }
  }

  @Override
  public boolean awaitWritable(long timeoutNanos) throws InterruptedException {
    checkOpen();
    if (channel.isWritable()) {
      return true;
    }
    long deadline = System.nanoTime() + timeoutNanos;
    lock.lock();
    try {
      while (!channel.isWritable()) {
        checkOpen();
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        writable.awaitNanos(left);
      }
      return true;
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void sendBatch(OutboundBatch batch, long guestBytes) {
    NettyBatch b = (NettyBatch) batch;
    if (failure != null) {
      b.buf.release();
      throw new LinkException(failure);
    }
    int bodyBytes = b.view.position();
    b.buf.writerIndex(1 + bodyBytes);
    channel.writeAndFlush(b.buf).addListener(f -> {
      if (f.isSuccess()) {
        guestBytesFlushed.addAndGet(guestBytes);
        wireBytesFlushed.addAndGet(bodyBytes + 5L);
      } else {
        fail("write failed: " + f.cause().getMessage());
      }
    });
  }

  @Override
  public long guestBytesFlushed() {
    return guestBytesFlushed.get();
  }

  @Override
  public long wireBytesFlushed() {
    return wireBytesFlushed.get();
  }

  @Override
  public void close() {
    if (failure == null) {
      failure = "link closed";
    }
    channel.close();
    signalWritability();
  }

  private void checkOpen() {
    String reason = failure;
    if (reason != null) {
      throw new LinkException(reason);
    }
  }

  void fail(String reason) {
    if (failure == null) {
      failure = reason;
    }
    channel.close();
    signalWritability();
  }

  void offer(Control message) {
    if (!incoming.offer(message)) {
      fail("target sent more than " + INCOMING_CONTROL_MAX + " unread control messages");
    }
  }

  void signalWritability() {
    lock.lock();
    try {
      writable.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** Inbound side of the source's connection: control messages, writability, failures. */
  private static final class SourceHandler extends ChannelInboundHandlerAdapter {
    private final Holder holder;

    SourceHandler(Holder holder) {
      this.holder = holder;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      NettyMigrationLink link = holder.link;
      try {
        if (msg instanceof Control control && link != null) {
          link.offer(control);
        } else if (link != null) {
          link.fail("protocol error: the target sent an unexpected " + msg.getClass().getSimpleName());
        }
      } finally {
        ReferenceCountUtil.release(msg);
      }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      NettyMigrationLink link = holder.link;
      if (link != null) {
        link.signalWritability();
      }
      ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      NettyMigrationLink link = holder.link;
      if (link != null) {
        link.fail("connection closed by the target");
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      NettyMigrationLink link = holder.link;
      if (link != null) {
        link.fail(Failures.describe(cause));
      }
      ctx.close();
    }
  }
}
