package dev.ferry.agent.transport;

import dev.ferry.engine.precopy.LinkException;
import dev.ferry.engine.precopy.SourceLink;
import dev.ferry.engine.wire.Wire;
import dev.ferry.proto.Control;
import io.netty.bootstrap.Bootstrap;
import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.wire.PageBatchWriter;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.DefaultByteBufHolder;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.util.ReferenceCountUtil;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.concurrent.LinkedTransferQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The source's TCP connection to a target agent for one migration. Back-pressure is the
 * channel's writability: the engine waits while more than {@link #WRITE_BUFFER_HIGH_BYTES} are
 * queued, so the sender never buffers without bound. An optional bandwidth cap paces the sender
 * (see {@link Pacer}); counters advance when bytes reach the socket.
 */
public final class NettyMigrationLink implements SourceLink {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(NettyMigrationLink.class);
  static final int WRITE_BUFFER_LOW_BYTES = 2 << 20;
  static final int WRITE_BUFFER_HIGH_BYTES = 4 << 20;
  private static final int INCOMING_CONTROL_MAX = 64;
  private static final long CLOSE_WAIT_MILLIS = 10_000;

  private final Channel channel;
  private final GuestMemory memory;
  private final Pacer pacer;
  /** Filled on the event loop, which must never wait for a lock: a lock-free queue, bounded by a count. */
  private final LinkedTransferQueue<Control> incoming = new LinkedTransferQueue<>();
  private final java.util.concurrent.atomic.AtomicInteger incomingCount = new java.util.concurrent.atomic.AtomicInteger();
  /** The engine's thread while it waits for the channel to drain; the event loop unparks it. */
  private volatile Thread awaitingWritable;
  private final AtomicLong guestBytesFlushed = new AtomicLong();
  private final AtomicLong wireBytesFlushed = new AtomicLong();
  private volatile String failure;

  private NettyMigrationLink(Channel channel, GuestMemory memory, long bandwidthBytesPerSecond) {
    this.channel = channel;
    this.memory = memory;
    this.pacer = bandwidthBytesPerSecond > 0 ? new Pacer(bandwidthBytesPerSecond) : null;
  }

  /**
   * The bandwidth cap (it stands in for a slower link): a token bucket over wire bytes, checked
   * before each batch, as QEMU's migration thread enforces max-bandwidth. Netty's traffic shaper
   * was the first choice, but it restores writability only once its queue is empty, so the sender
   * sat idle while the link drained and the link idled while the sender compressed the next
   * batches; pacing the sender keeps both busy.
   */
  private static final class Pacer {
    private final double bytesPerNano;
    private final long burstBytes;
    private double tokens;
    private long lastNanos = System.nanoTime();

    Pacer(long bytesPerSecond) {
      this.bytesPerNano = bytesPerSecond / 1e9;
      this.burstBytes = Math.max(256 * 1024, bytesPerSecond / 100);
      this.tokens = burstBytes;
    }

    /** Nanos to wait before more may be sent (0: go). */
    synchronized long waitNanos() {
      long now = System.nanoTime();
      tokens = Math.min(burstBytes, tokens + (now - lastNanos) * bytesPerNano);
      lastNanos = now;
      return tokens >= 0 ? 0 : (long) Math.ceil(-tokens / bytesPerNano);
    }

    synchronized void spend(long bytes) {
      tokens -= bytes;
    }
  }

  /**
   * Connects to {@code target} to send pages of {@code memory}; throws {@link LinkException} naming
   * the address if it cannot.
   */
  public static NettyMigrationLink connect(NettyTransport transport, InetSocketAddress target, GuestMemory memory,
      long bandwidthBytesPerSecond, long connectTimeoutMillis) {
    return connect(transport, target, memory, bandwidthBytesPerSecond, connectTimeoutMillis, MigrationTls.OFF, null);
  }

  /**
   * As above, over TLS when {@code tls} has certificates: the target must present a certificate
   * of the cluster CA for {@code targetHost} (null: any host, when only the address is known).
   * An opportunistic client falls back to a plain link only if the target speaks no TLS at all.
   */
  public static NettyMigrationLink connect(NettyTransport transport, InetSocketAddress target, GuestMemory memory,
      long bandwidthBytesPerSecond, long connectTimeoutMillis, MigrationTls tls, String targetHost) {
    String what = "target agent at " + target.getHostString() + ":" + target.getPort();
    if (!tls.enabled()) {
      return open(transport, target, memory, bandwidthBytesPerSecond, connectTimeoutMillis, null, targetHost, what);
    }
    try {
      return open(transport, target, memory, bandwidthBytesPerSecond, connectTimeoutMillis, tls, targetHost, what);
    } catch (NoTls e) {
      if (tls.mode() != MigrationTls.Mode.OPPORTUNISTIC) {
        throw new LinkException(e.getMessage() + ", and this agent requires it (--migration-encryption required)");
      }
      LOG.warn("{}; sending in the clear (--migration-encryption opportunistic)", e.getMessage());
      return open(transport, target, memory, bandwidthBytesPerSecond, connectTimeoutMillis, null, targetHost, what);
    }
  }

  /** The target answered the TLS handshake without TLS. */
  private static final class NoTls extends RuntimeException {
    private static final long serialVersionUID = 1L;

    NoTls(String message) {
      super(message, null, false, false);
    }
  }

  private static NettyMigrationLink open(NettyTransport transport, InetSocketAddress target, GuestMemory memory,
      long bandwidthBytesPerSecond, long connectTimeoutMillis, MigrationTls tls, String targetHost, String what) {
    Holder holder = new Holder();
    Bootstrap bootstrap = new Bootstrap()
        .group(transport.group())
        .channel(transport.channel())
        .option(ChannelOption.ALLOCATOR, transport.allocator())
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) connectTimeoutMillis)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.SO_KEEPALIVE, true)
        .option(ChannelOption.WRITE_BUFFER_WATER_MARK,
            new WriteBufferWaterMark(WRITE_BUFFER_LOW_BYTES, WRITE_BUFFER_HIGH_BYTES))
        .handler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            if (tls != null) {
              TlsClient.install(ch.pipeline(), tls, target);
            }
            Frames.install(ch.pipeline());
            ch.pipeline().addLast("page-sealer", new PageSealer(new PageBatchWriter.Sealer(memory)));
            ch.pipeline().addLast("source", new SourceHandler(holder));
          }
        });
    ChannelFuture connected = bootstrap.connect(target).awaitUninterruptibly();
    if (!connected.isSuccess()) {
      Throwable cause = connected.cause();
      throw new LinkException("cannot connect to " + what + ": " + (cause == null ? "cancelled" : cause.getMessage()),
          cause);
    }
    if (tls != null) {
      TlsClient.Outcome outcome = TlsClient.handshake(connected.channel(), targetHost, what);
      if (!outcome.ok()) {
        connected.channel().close().awaitUninterruptibly(CLOSE_WAIT_MILLIS);
        throw outcome.peerSpeaksNoTls() ? new NoTls(outcome.reason()) : new LinkException(outcome.reason());
      }
    }
    NettyMigrationLink link = new NettyMigrationLink(connected.channel(), memory, bandwidthBytesPerSecond);
    // On the event loop, where the handlers run: a failure they saw before the link existed (a
    // TLS 1.3 server refuses the client's certificate after the client's handshake completed)
    // becomes the link's failure, never lost in between.
    connected.channel().eventLoop().submit(() -> {
      holder.link = link;
      if (holder.earlyFailure != null) {
        link.fail(holder.earlyFailure);
      } else if (!connected.channel().isActive()) {
        link.fail("connection closed by the target");
      }
    }).awaitUninterruptibly();
    return link;
  }

  /** Lets the handler, built before the link, reach it. */
  private static final class Holder {
    volatile NettyMigrationLink link;
    /** The first failure seen before the link existed (event loop only). */
    String earlyFailure;

    void failEarly(String reason) {
      if (earlyFailure == null) {
        earlyFailure = reason;
      }
    }
  }

  /** The connection (tests inject faults into its pipeline). */
  Channel channel() {
    return channel;
  }

  @Override
  public void sendControl(Control message) {
    checkOpen();
    channel.writeAndFlush(message).addListener(f -> {
      if (!f.isSuccess()) {
        fail("sending " + message.getBodyCase() + " failed: " + Failures.describe(f.cause()));
      } else {
        wireBytesFlushed.addAndGet(message.getSerializedSize() + 5L);
      }
    });
  }

  @Override
  public Control pollControl(long timeoutNanos) throws InterruptedException {
    Control message = timeoutNanos <= 0 ? incoming.poll() : incoming.poll(timeoutNanos, TimeUnit.NANOSECONDS);
    if (message != null) {
      incomingCount.decrementAndGet();
    }
    if (message == null && failure != null) {
      throw new LinkException(failure);
    }
    return message;
  }

  @Override
  public OutboundBatch newBatch() {
    checkOpen();
    ByteBuf header = channel.alloc().directBuffer(1 + Wire.BATCH_HEADER_BYTES_MAX);
    header.writeByte(Wire.KIND_PAGES);
    return new NettyBatch(channel, header);
  }

  /** A batch's header buffer (kind byte first) and, once compression needs it, its payload buffer. */
  private static final class NettyBatch implements OutboundBatch {
    final Channel channel;
    final ByteBuf header;
    final ByteBuffer headerView;
    ByteBuf payload;
    ByteBuffer payloadView;

    NettyBatch(Channel channel, ByteBuf header) {
      this.channel = channel;
      this.header = header;
      this.headerView = header.nioBuffer(1, Wire.BATCH_HEADER_BYTES_MAX);
    }

    @Override
    public ByteBuffer header() {
      return headerView;
    }

    @Override
    public ByteBuffer payload() {
      if (payload == null) {
        payload = channel.alloc().directBuffer(Wire.BATCH_PAYLOAD_BYTES_MAX);
        payloadView = payload.nioBuffer(0, Wire.BATCH_PAYLOAD_BYTES_MAX);
      }
      return payloadView;
    }

    /** Once the buffers are given back or handed to a frame: a later discard must not free them again. */
    private boolean released;

    @Override
    public void discard() {
      if (released) {
        return; // the source's cleanup after a send that failed and already gave them back
      }
      released = true;
      header.release();
      if (payload != null) {
        payload.release();
      }
    }

    /** The frame being built owns the buffers from here on. */
    void handOver() {
      released = true;
    }
  }

  @Override
  public boolean awaitWritable(long timeoutNanos) throws InterruptedException {
    checkOpen();
    long deadline = System.nanoTime() + timeoutNanos;
    if (pacer != null) {
      long wait = pacer.waitNanos();
      if (wait > 0) {
        if (wait > timeoutNanos) {
          java.util.concurrent.locks.LockSupport.parkNanos(timeoutNanos);
          return false;
        }
        java.util.concurrent.locks.LockSupport.parkNanos(wait);
        if (pacer.waitNanos() > 0) {
          return false;
        }
      }
    }
    if (channel.isWritable()) {
      return true;
    }
    awaitingWritable = Thread.currentThread(); // before looking: an unpark in between is kept
    try {
      while (!channel.isWritable()) {
        checkOpen();
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        java.util.concurrent.locks.LockSupport.parkNanos(this, left);
        if (Thread.interrupted()) {
          throw new InterruptedException();
        }
      }
      return true;
    } finally {
      awaitingWritable = null;
    }
  }

  @Override
  public void sendBatch(OutboundBatch batch, PageBatchWriter layout, long guestBytes) {
    NettyBatch b = (NettyBatch) batch;
    if (failure != null) {
      b.discard();
      throw new LinkException(failure);
    }
    int bodyBytes = layout.bodyBytes();
    b.handOver();
    CompositeByteBuf frame = channel.alloc().compositeDirectBuffer(layout.segmentCount() + 1);
    b.header.writerIndex(1 + b.headerView.limit());
    frame.addComponent(true, b.header);
    for (int i = 0; i < layout.segmentCount(); i++) {
      if (layout.segmentInGuest(i)) {
        // Zero copy: the socket reads the pages from guest memory.
        frame.addComponent(true, Unpooled.wrappedBuffer(memory.view(layout.segmentStart(i), layout.segmentLength(i))));
      } else {
        frame.addComponent(true, b.payload.retainedSlice((int) layout.segmentStart(i), layout.segmentLength(i)));
      }
    }
    if (b.payload != null) {
      b.payload.release();
    }
    if (frame.readableBytes() != 1 + bodyBytes) {
      frame.release();
      throw new IllegalStateException("page batch frame of " + frame.readableBytes() + " bytes, expected " + (1 + bodyBytes));
    }
    if (pacer != null) {
      pacer.spend(bodyBytes + 5L);
    }
    channel.writeAndFlush(new PageFrame(frame, b.headerView)).addListener(f -> {
      if (f.isSuccess()) {
        guestBytesFlushed.addAndGet(guestBytes);
        wireBytesFlushed.addAndGet(bodyBytes + 5L);
      } else {
        fail("sending a page batch failed: " + Failures.describe(f.cause()));
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

  /**
   * Closes the connection and waits until the event loop has let go of every queued batch, so
   * that guest memory the batches point into may be freed afterwards.
   */
  @Override
  public void close() {
    if (failure == null) {
      failure = "link closed";
    }
    channel.close().awaitUninterruptibly(CLOSE_WAIT_MILLIS);
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
    if (incomingCount.incrementAndGet() > INCOMING_CONTROL_MAX) {
      incomingCount.decrementAndGet();
      fail("target sent more than " + INCOMING_CONTROL_MAX + " unread control messages");
      return;
    }
    incoming.offer(message);
  }

  void signalWritability() {
    Thread waiting = awaitingWritable;
    if (waiting != null) {
      java.util.concurrent.locks.LockSupport.unpark(waiting);
    }
  }

  /**
   * A page batch frame whose header still lacks its checksums. A {@code ByteBufHolder}, so that
   * the channel counts its bytes against the write watermarks while it waits in the event loop's
   * queue.
   */
  private static final class PageFrame extends DefaultByteBufHolder {
    final ByteBuffer header;

    PageFrame(ByteBuf frame, ByteBuffer header) {
      super(frame);
      this.header = header;
    }
  }

  /**
   * Seals page batches on the event loop, right before they go to the socket: the raw pages are
   * read for their checksums by the thread whose kernel copy reads them next (see
   * {@link PageBatchWriter}).
   */
  private static final class PageSealer extends ChannelOutboundHandlerAdapter {
    private final PageBatchWriter.Sealer sealer;

    PageSealer(PageBatchWriter.Sealer sealer) {
      this.sealer = sealer;
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
      if (!(msg instanceof PageFrame frame)) {
        ctx.write(msg, promise);
        return;
      }
      try {
        sealer.seal(frame.header);
      } catch (RuntimeException e) {
        frame.release();
        promise.setFailure(e);
        return;
      }
      ctx.write(frame.content(), promise);
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
      } else {
        holder.failEarly("connection closed by the target");
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      NettyMigrationLink link = holder.link;
      if (link != null) {
        link.fail(Failures.describe(cause));
      } else {
        holder.failEarly(Failures.describe(cause));
      }
      ctx.close();
    }
  }
}
