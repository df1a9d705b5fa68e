package dev.ferry.agent.transport;

import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.precopy.ControlSink;
import dev.ferry.engine.precopy.TargetMigration;
import dev.ferry.engine.wire.ProtocolException;
import dev.ferry.common.MigrationIds;
import dev.ferry.engine.wire.Wire;
import dev.ferry.proto.AgentReply;
import dev.ferry.proto.AgentRequest;
import dev.ferry.proto.HelloAck;
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
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelOption;
import io.netty.channel.RecvByteBufAllocator;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.util.ReferenceCountUtil;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's listening socket. A connection's first control message decides what it is: a
 * {@code Hello} starts an incoming migration (its pages go straight into guest memory on the event
 * loop), an {@code AgentRequest} is an admin call.
 *
 * <p>Until a peer has authenticated (a migration's source proved its secret; an admin client sent
 * its one request) it gets little: frames of at most {@link Frames#UNAUTHENTICATED_FRAME_BYTES_MAX},
 * a fixed deadline of {@link #HANDSHAKE_DEADLINE_SECONDS} from accept (not restarted by what it
 * sends), and at most {@link #UNAUTHENTICATED_CONNECTIONS_MAX} such connections at a time.
 *
 * <p>Event loops never block: what may (ZooKeeper reads, admission and allocation, the
 * commit, admin requests) runs on the server's executors while the connection stops reading, and
 * the connection goes on once it is done. A migration whose source goes silent for
 * {@link #SOURCE_IDLE_SECONDS} is aborted.
 */
public final class AgentServer implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(AgentServer.class);
  static final int HANDSHAKE_DEADLINE_SECONDS = 10;
  static final int UNAUTHENTICATED_CONNECTIONS_MAX = 64;
  static final int SOURCE_IDLE_SECONDS = 60;
  private static final long REFUSAL_LOG_EVERY_MILLIS = 10_000;
  /** Handshake steps: a few ZooKeeper reads or an allocation each; bounded by the unauthenticated cap. */
  private static final int HANDSHAKE_THREADS = 4;
  private static final int ADMIN_THREADS = 2;
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
  private final AtomicInteger unauthenticated = new AtomicInteger();
  private final RateLimitedLog refusals = new RateLimitedLog(LOG, REFUSAL_LOG_EVERY_MILLIS);
  private final ExecutorService handshakeWork = pool("agent-handshake", HANDSHAKE_THREADS);
  /** Commits run on threads of their own: a paused guest never waits behind a handshake. */
  private final ExecutorService switchoverWork = pool("agent-switchover", SWITCHOVER_THREADS);
  private final ExecutorService adminWork = pool("agent-admin", ADMIN_THREADS);
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

  /** More than the incoming-migration limit can ever need at once. */
  private static final int SWITCHOVER_THREADS = 4;

  /**
   * Executors the event loops hand work to without ever waiting: every thread is started up
   * front and never retires (so execute() never takes the pool's lock to add one), and the queue
   * is lock-free (a LinkedBlockingQueue's lock parked a loop under contention: BlockHound halted
   * an agent of the fault-injection test there).
   */
  private static ExecutorService pool(String name, int threads) {
    ThreadPoolExecutor pool = new ThreadPoolExecutor(threads, threads, 0, TimeUnit.MILLISECONDS,
        new java.util.concurrent.LinkedTransferQueue<>(), daemon(name));
    pool.prestartAllCoreThreads();
    return pool;
  }

  private static ThreadFactory daemon(String name) {
    AtomicInteger count = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, name + "-" + count.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
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
            // The handshake's deadline and the cap on unproven peers cover the TLS handshake too.
            ch.pipeline().addLast("handshake-guard", new HandshakeGuard());
            installTls(ch); // also chooses placement (plain links) or not (TLS)
            Frames.install(ch.pipeline(), Frames.UNAUTHENTICATED_FRAME_BYTES_MAX);
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
    handshakeWork.shutdownNow();
    adminWork.shutdownNow();
    switchoverWork.shutdown(); // a commit under way finishes
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

  /**
   * Counts the connection among the unauthenticated ones (closing it at once past the cap) and
   * closes it at a fixed deadline from accept unless {@link #authenticated} came first.
   */
  private final class HandshakeGuard extends ChannelInboundHandlerAdapter {
    private ScheduledFuture<?> deadline;
    private boolean counted;

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      if (unauthenticated.incrementAndGet() > UNAUTHENTICATED_CONNECTIONS_MAX) {
        unauthenticated.decrementAndGet();
        refusals.warn("closing a connection from " + ctx.channel().remoteAddress() + " at once: "
            + UNAUTHENTICATED_CONNECTIONS_MAX + " connections already wait for their handshake");
        ctx.close();
        return;
      }
      counted = true;
      deadline = ctx.executor().schedule(() -> {
        refusals.warn("closing the connection from " + ctx.channel().remoteAddress() + ": no authenticated"
            + " handshake within " + HANDSHAKE_DEADLINE_SECONDS + " s of accept");
        ctx.close();
      }, HANDSHAKE_DEADLINE_SECONDS, TimeUnit.SECONDS);
      ctx.fireChannelActive();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      authenticated();
      ctx.fireChannelInactive();
    }

    /** The peer proved itself (or sent its one admin request): no deadline, no longer counted. */
    void authenticated() {
      if (deadline != null) {
        deadline.cancel(false);
      }
      if (counted) {
        counted = false;
        unauthenticated.decrementAndGet();
      }
    }
  }

  private static void authenticated(ChannelPipeline pipeline) {
    HandshakeGuard guard = pipeline.get(HandshakeGuard.class);
    if (guard != null) {
      guard.authenticated();
    }
    Frames.FrameDecoder decoder = pipeline.get(Frames.FrameDecoder.class);
    if (decoder != null) {
      decoder.authenticated();
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
      switch (control.getBodyCase()) {
        case HELLO -> {
          String id = control.getHello().getMigrationId();
          if (!MigrationIds.isValid(id)) {
            // Checked before the id reaches a log line, a ZooKeeper path or the engine.
            refuseHello(ctx, "migration_id: '" + MigrationIds.printable(id) + "' is not a migration id");
            return;
          }
          ctx.pipeline().addBefore(Frames.FRAME_DECODER, "source-idle",
              new IdleStateHandler(SOURCE_IDLE_SECONDS, 0, 0, TimeUnit.SECONDS));
          ctx.pipeline().replace(this, "target", new TargetHandler());
        }
        case REQUEST -> {
          AgentRequest.BodyCase kind = control.getRequest().getBodyCase();
          if (!admin.servesMutations() && kind != AgentRequest.BodyCase.LIST && kind != AgentRequest.BodyCase.QUERY) {
            refuse(ctx, "this host is managed by its cluster's coordinator: " + kind
                + " is not served here (only listing and status); use ferry vm / ferry migrate");
            return;
          }
          authenticated(ctx.pipeline()); // the request is all an admin client sends
          ctx.pipeline().replace(this, "admin", new AdminHandler());
        }
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
      refusals.warn("refusing connection from " + ctx.channel().remoteAddress() + ": " + reason);
      ctx.writeAndFlush(Control.newBuilder().setReply(AgentReply.newBuilder()
          .setError(Error.newBuilder().setMessage(reason))).build()).addListener(ChannelFutureListener.CLOSE);
    }

    private void refuseHello(ChannelHandlerContext ctx, String reason) {
      refusals.warn("refusing a migration from " + ctx.channel().remoteAddress() + ": " + reason);
      ctx.writeAndFlush(Control.newBuilder().setHelloAck(HelloAck.newBuilder().setAccepted(false)
          .setProtocolVersion(Wire.PROTOCOL_VERSION).setTargetHost(host.hostId()).setReason(reason)).build())
          .addListener(ChannelFutureListener.CLOSE);
    }
  }

  /**
   * Feeds one incoming migration, on the connection's event loop. While a step of the migration
   * runs on an executor ({@link #offload}) the connection stops reading and holds what was already
   * decoded, then delivers it in order once the step is done.
   */
  private final class TargetHandler extends ChannelInboundHandlerAdapter implements ControlSink {
    private ChannelHandlerContext ctx;
    private TargetMigration migration;
    private boolean placing;
    private boolean closing;
    private boolean authenticated;
    private boolean offloaded;
    private final ArrayDeque<Object> held = new ArrayDeque<>();
    private volatile ChannelFuture lastWrite;

    @Override
    public void handlerAdded(ChannelHandlerContext context) {
      this.ctx = context;
      this.migration = new TargetMigration(host, this, clock);
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext context) {
      releaseHeld();
    }

    @Override
    public void channelRead(ChannelHandlerContext context, Object msg) {
      if (offloaded || !held.isEmpty()) {
        if (!authenticated && !held.isEmpty()) {
          // A source waits for HelloAck before it says more: an unproven peer holds one message at most.
          ReferenceCountUtil.release(msg);
          refusals.warn("closing the connection from " + context.channel().remoteAddress()
              + ": it kept sending before its handshake was answered");
          context.close();
          return;
        }
        held.add(msg);
        return;
      }
      deliver(msg);
    }

    private void deliver(Object msg) {
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
          if (!authenticated && migration.isAuthenticated()) {
            authenticated = true;
            authenticated(ctx.pipeline());
          }
          if (!offloaded) {
            placeIfReceiving();
          }
        }
      } finally {
        ReferenceCountUtil.release(msg);
      }
    }

    /** Once pages may come, lets them be read straight into guest memory (between frames only). */
    private void placeIfReceiving() {
      if (!placing && migration.isReceiving() && placementSafe()
          && ctx.channel().config().getRecvByteBufAllocator() instanceof PlacementRecvAllocator placement) {
        placing = true;
        placement.activate(ctx.pipeline().get(Frames.FrameDecoder.class), migration.reader(),
            migration.receivingMemory(), migration::isReceiving);
      }
    }

    @Override
    public <T> void offload(Step step, Callable<T> work, BiConsumer<T, Throwable> then) {
      offloaded = true;
      ctx.channel().config().setAutoRead(false);
      Runnable task = () -> {
        T result = null;
        Throwable error = null;
        try {
          result = work.call();
        } catch (Exception | LinkageError e) {
          error = e;
        }
        try {
          then.accept(result, error);
        } catch (RuntimeException e) {
          LOG.error("migration {}: {} failed", migration.migrationId(), step, e);
          migration.onProtocolError("target failed in " + step + ": " + e);
        } finally {
          try {
            ctx.executor().execute(this::resumeDelivery);
          } catch (RejectedExecutionException e) {
            // the event loop is shutting down: nothing left to deliver to
          }
        }
      };
      try {
        (step == Step.COMMIT ? switchoverWork : handshakeWork).execute(task);
      } catch (RejectedExecutionException e) {
        then.accept(null, new TargetMigration.Refused("host " + host.hostId() + " is shutting down"));
        resumeDelivery();
      }
    }

    /** On the event loop, once an offloaded step is done: what was held first, then reading again. */
    private void resumeDelivery() {
      offloaded = false;
      Object next;
      while (!offloaded && (next = held.poll()) != null) {
        deliver(next);
      }
      if (!offloaded) {
        placeIfReceiving();
        ctx.channel().config().setAutoRead(true);
      }
    }

    private void releaseHeld() {
      Object next;
      while ((next = held.poll()) != null) {
        ReferenceCountUtil.release(next);
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext context) {
      releaseHeld();
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
      if (!ctx.executor().inEventLoop()) {
        ctx.executor().execute(this::close); // an offloaded step ended the migration
        return;
      }
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
      ChannelFuture last = lastWrite;
      if (last == null) {
        linger.run();
      } else {
        last.addListener(f -> linger.run());
      }
      if (!offloaded) {
        ctx.channel().config().setAutoRead(true); // drain (and drop) while lingering
      }
    }
  }

  /**
   * Serves one admin request on the admin executor (creating or destroying a guest may block):
   * each reply is written as it comes; the connection ends with the last.
   */
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
        AdminService.ReplySink replies = new AdminService.ReplySink() {
          private volatile ChannelFuture lastWrite;

          @Override
          public void send(AgentReply reply) {
            lastWrite = channel.writeAndFlush(Control.newBuilder().setReply(reply).build());
          }

          @Override
          public void end() {
            closeAfter(channel, lastWrite);
          }
        };
        AgentRequest request = control.getRequest();
        try {
          adminWork.execute(() -> admin.handle(request, replies));
        } catch (RejectedExecutionException e) {
          channel.close(); // shutting down
        }
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
