package dev.ferry.agent.transport;

import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.precopy.ControlSink;
import dev.ferry.engine.precopy.TargetMigration;
import dev.ferry.engine.wire.ProtocolException;
import dev.ferry.proto.AgentReply;
import dev.ferry.proto.Control;
import dev.ferry.proto.Error;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.RecvByteBufAllocator;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.handler.timeout.ReadTimeoutHandler;
import io.netty.util.ReferenceCountUtil;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's listening socket. A connection's first control message decides what it is: a
 * {@code Hello} starts an incoming migration (its pages go straight into guest memory on the event
 * loop), an {@code AgentRequest} is an admin call. A connection that says nothing within
 * {@link #FIRST_MESSAGE_TIMEOUT_SECONDS} is closed; a migration whose source goes silent for
 * {@link #SOURCE_IDLE_SECONDS} is aborted.
 */
public final class AgentServer implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(AgentServer.class);
  static final int FIRST_MESSAGE_TIMEOUT_SECONDS = 10;
  static final int SOURCE_IDLE_SECONDS = 60;
  /**
   * Reads of up to 256 KiB: large enough to move a page batch in one or two system calls, and
   * within what Netty's adaptive allocator pools (larger buffers would be allocated, zeroed and
   * freed on every read).
   */
  private static final RecvByteBufAllocator RECEIVE_BUFFERS = new AdaptiveRecvByteBufAllocator(4096, 64 * 1024, 256 * 1024);

  private final NettyTransport transport;
  private final TargetMigration.Host host;
  private final AdminService admin;
  private final Clock clock;
  private final MigrationTls tls;
  private final TlsPeerCheck.Verifier verifier;
  private Channel serverChannel;

  public AgentServer(NettyTransport transport, TargetMigration.Host host, AdminService admin, Clock clock) {
    this(transport, host, admin, clock, MigrationTls.OFF, TlsPeerCheck.Verifier.NONE);
  }

  /**
   * As above, with TLS as {@code tls} says; {@code verifier} names the source host a migration's
   * record expects, checked against the source's certificate.
   */
  public AgentServer(NettyTransport transport, TargetMigration.Host host, AdminService admin, Clock clock,
      MigrationTls tls, TlsPeerCheck.Verifier verifier) {
    this.transport = transport;
    this.host = host;
    this.admin = admin;
    this.clock = clock;
    this.tls = tls;
    this.verifier = verifier;
  }

  /** Binds {@code listen}; returns the bound address (port 0 picks a free one). */
  public InetSocketAddress bind(InetSocketAddress listen) {
    ServerBootstrap bootstrap = new ServerBootstrap()
        .group(transport.group())
        .channel(transport.serverChannel())
        .option(ChannelOption.SO_REUSEADDR, true)
        .childOption(ChannelOption.ALLOCATOR, transport.allocator())
        .childOption(ChannelOption.TCP_NODELAY, true)
        .childOption(ChannelOption.SO_KEEPALIVE, true)
        .childHandler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            ch.pipeline().addLast("first-message-timeout", new ReadTimeoutHandler(FIRST_MESSAGE_TIMEOUT_SECONDS));
            installTls(ch);
            Frames.install(ch.pipeline());
            if (tls.enabled()) {
              ch.pipeline().addLast(TlsPeerCheck.NAME, new TlsPeerCheck(verifier));
            }
            ch.pipeline().addLast("router", new Router());
          }
        });
    try {
      serverChannel = bootstrap.bind(listen).sync().channel();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while binding " + listen, e);
    } catch (RuntimeException e) {
      throw new IllegalStateException("cannot listen on " + listen.getHostString() + ":" + listen.getPort()
          + ": " + e.getMessage(), e);
    }
    return (InetSocketAddress) serverChannel.localAddress();
  }

  /**
   * TLS first in the pipeline when this host has certificates: always when encryption is required,
   * or when the first bytes are a TLS handshake if it is opportunistic. Placement (pages read
   * from the socket straight into guest memory) only on plain connections: over TLS the socket
   * carries ciphertext, and the decrypted pages are copied once from TLS's buffers instead.
   */
  private void installTls(Channel ch) {
    if (tls.enabled() && tls.mode() == MigrationTls.Mode.REQUIRED) {
      ch.config().setRecvByteBufAllocator(RECEIVE_BUFFERS);
      ch.pipeline().addLast(TlsClient.HANDLER, tls.newServerHandler(ch.alloc()));
      return;
    }
    ch.config().setRecvByteBufAllocator(new PlacementRecvAllocator(RECEIVE_BUFFERS));
    if (tls.enabled()) {
      ch.pipeline().addLast("tls-detect", new io.netty.handler.ssl.OptionalSslHandler(tls.serverContext()) {
        @Override
        protected String newSslHandlerName() {
          return TlsClient.HANDLER;
        }

        @Override
        protected io.netty.handler.ssl.SslHandler newSslHandler(ChannelHandlerContext ctx,
            io.netty.handler.ssl.SslContext context) {
          ctx.channel().config().setRecvByteBufAllocator(RECEIVE_BUFFERS); // no placement under TLS
          return super.newSslHandler(ctx, context);
        }
      });
    }
  }

  @Override
  public void close() {
    if (serverChannel != null) {
      serverChannel.close().syncUninterruptibly();
    }
  }

  /**
   * Placement needs a transport that asks for each read's buffer only after the previous read was
   * decoded: epoll and NIO do, and so does io_uring without provided buffer rings (Netty's default,
   * which the agent keeps). Off with -Dferry.placement=false.
   */
  private boolean placementSafe() {
    return Boolean.parseBoolean(System.getProperty("ferry.placement", "true"));
  }

  /** How long a closing target keeps draining what its source still sends. */
  private static final long LINGER_MILLIS = 2_000;

  /** Closes {@code channel} once {@code lastWrite} (if any) has reached the socket. */
  private static void closeAfter(Channel channel, ChannelFuture lastWrite) {
    if (lastWrite == null) {
      channel.close();
    } else {
      lastWrite.addListener(ChannelFutureListener.CLOSE);
    }
  }

  /** Looks at the first message and installs the handler for what the connection is. */
  private final class Router extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (!(msg instanceof Control control)) {
        ReferenceCountUtil.release(msg);
        refuse(ctx, "the first frame must be a control message");
        return;
      }
      ctx.pipeline().remove("first-message-timeout");
      switch (control.getBodyCase()) {
        case HELLO -> {
          ctx.pipeline().addBefore(Frames.FRAME_DECODER, "source-idle",
              new IdleStateHandler(SOURCE_IDLE_SECONDS, 0, 0, TimeUnit.SECONDS));
          ctx.pipeline().replace(this, "target", new TargetHandler());
        }
        case REQUEST -> ctx.pipeline().replace(this, "admin", new AdminHandler());
        default -> {
          refuse(ctx, "the first message must be Hello or an agent request, not " + control.getBodyCase());
          return;
        }
      }
      ctx.fireChannelRead(control);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      LOG.debug("connection from {} closed before it said anything useful: {}", ctx.channel().remoteAddress(),
          Failures.describe(cause));
      ctx.close();
    }

    private void refuse(ChannelHandlerContext ctx, String reason) {
      LOG.warn("refusing connection from {}: {}", ctx.channel().remoteAddress(), reason);
      ctx.writeAndFlush(Control.newBuilder().setReply(AgentReply.newBuilder()
          .setError(Error.newBuilder().setMessage(reason))).build()).addListener(ChannelFutureListener.CLOSE);
    }
  }

  /** Feeds one incoming migration, on the connection's event loop. */
  private final class TargetHandler extends ChannelInboundHandlerAdapter implements ControlSink {
    private ChannelHandlerContext ctx;
    private TargetMigration migration;
    private boolean placing;
    private boolean closing;

    @Override
    public void handlerAdded(ChannelHandlerContext context) {
      this.ctx = context;
      this.migration = new TargetMigration(host, this, clock);
    }

    @Override
    public void channelRead(ChannelHandlerContext context, Object msg) {
      try {
        if (closing) {
          return; // the migration is over: what still arrives is dropped
        }
        if (msg instanceof PageBytes bytes) {
          ByteBuf chunk = bytes.content();
          if (chunk.nioBufferCount() == 1) {
            migration.onPageBytes(chunk.nioBuffer());
          } else {
            for (ByteBuffer piece : chunk.nioBuffers()) {
              migration.onPageBytes(piece);
            }
          }
        } else if (msg instanceof PageBatchStart start) {
          migration.onPagesStart(start.bodyBytes());
        } else if (msg instanceof Control control) {
          migration.onControl(control);
          if (!placing && migration.isReceiving() && placementSafe()
              && context.channel().config().getRecvByteBufAllocator() instanceof PlacementRecvAllocator placement) {
            placing = true;
            placement.activate(context.pipeline().get(Frames.FrameDecoder.class), migration.reader(),
                migration.receivingMemory(), migration::isReceiving);
          }
        }
      } finally {
        ReferenceCountUtil.release(msg);
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext context) {
      migration.onLinkLost("connection closed by the source");
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext context, Object event) {
      if (event instanceof IdleStateEvent) {
        migration.onLinkLost("the source sent nothing for " + SOURCE_IDLE_SECONDS + " s");
        context.close();
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext context, Throwable cause) {
      if (cause instanceof IOException) {
        migration.onLinkLost(Failures.describe(cause));
        context.close();
      } else {
        migration.onProtocolError(Failures.describe(cause));
      }
    }

    private ChannelFuture lastWrite;

    @Override
    public void send(Control message) {
      lastWrite = ctx.writeAndFlush(message);
    }

    @Override
    public void schedule(Runnable task, long delayNanos) {
      ctx.executor().schedule(task, delayNanos, TimeUnit.NANOSECONDS);
    }

    /**
     * Closes gracefully: once the last message is flushed, half-close and keep reading (and
     * dropping) what the source still sends for a moment. Closing outright while the source is
     * mid-write makes the kernel answer with a reset, which discards the unread Abort and leaves
     * the source with "connection reset" instead of the target's reason.
     */
    @Override
    public void close() {
      if (closing) {
        return;
      }
      closing = true;
      Channel channel = ctx.channel();
      Runnable linger = () -> {
        if (channel instanceof io.netty.channel.socket.DuplexChannel duplex && channel.isActive()) {
          duplex.shutdownOutput().addListener(f -> ctx.executor().schedule(() -> {
            channel.close();
          }, LINGER_MILLIS, TimeUnit.MILLISECONDS));
        } else {
          channel.close();
        }
      };
      if (lastWrite == null) {
        linger.run();
      } else {
        lastWrite.addListener(f -> linger.run());
      }
    }
  }

  /** Serves admin requests: each reply is written as it comes; the connection ends with the last. */
  private final class AdminHandler extends ChannelInboundHandlerAdapter {
    private boolean handled;

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      try {
        if (!(msg instanceof Control control) || control.getBodyCase() != Control.BodyCase.REQUEST || handled) {
          throw new ProtocolException("an admin connection carries exactly one request");
        }
        handled = true;
        Channel channel = ctx.channel();
        admin.handle(control.getRequest(), new AdminService.ReplySink() {
          private volatile ChannelFuture lastWrite;

          @Override
          public void send(AgentReply reply) {
            lastWrite = channel.writeAndFlush(Control.newBuilder().setReply(reply).build());
          }

          @Override
          public void end() {
            closeAfter(channel, lastWrite);
          }
        });
      } finally {
        ReferenceCountUtil.release(msg);
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      if (!(cause instanceof IOException)) {
        LOG.warn("admin connection from {}: {}", ctx.channel().remoteAddress(), Failures.describe(cause));
        ctx.writeAndFlush(Control.newBuilder().setReply(AgentReply.newBuilder()
            .setError(Error.newBuilder().setMessage(Failures.describe(cause)))).build())
            .addListener(ChannelFutureListener.CLOSE);
      } else {
        ctx.close();
      }
    }
  }
}
