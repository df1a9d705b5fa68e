package dev.ferry.agent.transport;

import dev.ferry.common.Addresses;
import dev.ferry.proto.AgentReply;
import dev.ferry.proto.AgentRequest;
import dev.ferry.proto.Control;
import dev.ferry.proto.CreateGuest;
import dev.ferry.proto.DestroyGuest;
import dev.ferry.proto.GuestQuery;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.GuestStatus;
import dev.ferry.proto.MigrateGuest;
import dev.ferry.proto.MigrationPolicy;
import dev.ferry.proto.MigrationProgress;
import dev.ferry.proto.MigrationReport;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.SimpleChannelInboundHandler;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.LinkedTransferQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A client for an agent's admin requests (the developer commands, tests and the benchmark use
 * it until the coordinator exists): one connection per request, replies until the agent closes.
 */
public final class AgentClient {
  private static final long CONNECT_TIMEOUT_MILLIS = 5_000;
  public static final Duration CALL_TIMEOUT = Duration.ofSeconds(120);
  /** A migration reports progress every 250 ms; a longer silence means the agent is gone. */
  public static final Duration MIGRATION_IDLE_TIMEOUT = Duration.ofSeconds(90);
  private final NettyTransport transport;
  private final InetSocketAddress agent;
  private final MigrationTls tls;
  private final String agentHost;

  public AgentClient(NettyTransport transport, InetSocketAddress agent) {
    this(transport, agent, MigrationTls.OFF, null);
  }

  /**
   * A client that speaks TLS when {@code tls} has certificates; the agent must then present a
   * certificate for {@code agentHost} (null: any host of the cluster CA).
   */
  public AgentClient(NettyTransport transport, InetSocketAddress agent, MigrationTls tls, String agentHost) {
    this.transport = transport;
    this.agent = agent;
    this.tls = tls;
    this.agentHost = agentHost;
  }

  /** The TLS settings this client uses (another client built from this one keeps them). */
  public MigrationTls tls() {
    return tls;
  }

  public InetSocketAddress address() {
    return agent;
  }

  public NettyTransport transport() {
    return transport;
  }

  /** Creates and starts a guest; throws with the agent's reason if refused. */
  public GuestStatus create(GuestSpec spec) throws IOException {
    return expect(call(AgentRequest.newBuilder().setCreateGuest(CreateGuest.newBuilder().setSpec(spec)).build(),
        CALL_TIMEOUT), "create " + spec.getName()).getGuest();
  }

  public GuestStatus status(String guest) throws IOException {
    return expect(call(AgentRequest.newBuilder().setQuery(GuestQuery.newBuilder().setGuest(guest)).build(),
        CALL_TIMEOUT), "status of " + guest).getGuest();
  }

  /** Destroys a guest; returns the agent's message. */
  public String destroy(String guest) throws IOException {
    return expect(call(AgentRequest.newBuilder().setDestroy(DestroyGuest.newBuilder().setGuest(guest)).build(),
        CALL_TIMEOUT), "destroy " + guest).getOk().getMessage();
  }

  /** Migrates {@code guest} to {@code target}; progress goes to {@code onProgress}; returns the report. */
  public MigrationReport migrate(String guest, InetSocketAddress target, MigrationPolicy policy,
      Consumer<MigrationProgress> onProgress) throws IOException {
    return migrate(guest, target, policy, "", onProgress);
  }

  /** As above, with a chosen migration id (empty: the agent picks one). */
  public MigrationReport migrate(String guest, InetSocketAddress target, MigrationPolicy policy, String migrationId,
      Consumer<MigrationProgress> onProgress) throws IOException {
    MigrationReport[] report = new MigrationReport[1];
    String[] error = new String[1];
    stream(AgentRequest.newBuilder().setMigrate(MigrateGuest.newBuilder().setGuest(guest)
        .setTargetAddress(Addresses.format(target)).setPolicy(policy).setMigrationId(migrationId)).build(), reply -> {
          if (reply.hasProgress()) {
            onProgress.accept(reply.getProgress());
          } else if (reply.hasReport()) {
            report[0] = reply.getReport();
          } else if (reply.hasError()) {
            error[0] = reply.getError().getMessage();
          }
        }, MIGRATION_IDLE_TIMEOUT);
    if (error[0] != null) {
      throw new RefusedException(error[0]);
    }
    if (report[0] == null) {
      throw new IOException("agent " + Addresses.format(agent) + " closed the connection before migration of "
          + guest + " ended");
    }
    return report[0];
  }

  /** Waits until the guest's digest at resume is computed (an incoming migration with digest on). */
  public GuestStatus awaitDigestAtResume(String guest, Duration timeout) throws IOException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      GuestStatus status = status(guest);
      if (!status.getDigestAtResume().isEmpty()) {
        return status;
      }
      if (System.nanoTime() > deadline) {
        throw new IOException("no digest for " + guest + " on " + Addresses.format(agent) + " after "
            + timeout.toSeconds() + " s");
      }
      try {
        Thread.sleep(50);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted", e);
      }
    }
  }

  /** The agent answered, and said no; the message is the agent's reason. */
  public static final class RefusedException extends IOException {
    private static final long serialVersionUID = 1L;

    RefusedException(String message) {
      super(message);
    }
  }

  private static AgentReply expect(AgentReply reply, String what) throws RefusedException {
    if (reply.hasError()) {
      throw new RefusedException(reply.getError().getMessage());
    }
    return reply;
  }

  /** Lists the agent's guests. */
  public java.util.List<GuestStatus> list() throws IOException {
    return expect(call(AgentRequest.newBuilder().setList(dev.ferry.proto.ListGuests.getDefaultInstance()).build(),
        CALL_TIMEOUT), "list").getGuests().getGuestsList();
  }

  /** Cancels an outgoing migration; returns the agent's message. */
  public String cancel(String migrationId) throws IOException {
    return expect(call(AgentRequest.newBuilder().setCancel(dev.ferry.proto.CancelMigration.newBuilder()
        .setMigrationId(migrationId)).build(), CALL_TIMEOUT), "cancel").getOk().getMessage();
  }

  /** Sends {@code request} and returns the first reply; fails if none comes within {@code timeout}. */
  public AgentReply call(AgentRequest request, Duration timeout) throws IOException {
    AgentReply[] first = new AgentReply[1];
    stream(request, reply -> {
      if (first[0] == null) {
        first[0] = reply;
      }
    }, timeout);
    if (first[0] == null) {
      throw new IOException("agent at " + Addresses.format(agent) + " closed the connection without replying");
    }
    return first[0];
  }

  /**
   * Sends {@code request} and hands every reply to {@code each} until the agent ends the stream.
   * Fails if the agent stays silent for {@code idleTimeout}.
   */
  public void stream(AgentRequest request, Consumer<AgentReply> each, Duration idleTimeout) throws IOException {
    if (!tls.enabled()) {
      stream(request, each, idleTimeout, false);
      return;
    }
    try {
      stream(request, each, idleTimeout, true);
    } catch (NoTls e) {
      if (tls.mode() != MigrationTls.Mode.OPPORTUNISTIC) {
        throw new IOException(e.getMessage() + ", and TLS is required here (--migration-encryption required)");
      }
      stream(request, each, idleTimeout, false);
    }
  }

  /** The agent answered the TLS handshake without TLS. */
  private static final class NoTls extends IOException {
    private static final long serialVersionUID = 1L;

    NoTls(String message) {
      super(message);
    }
  }

  private void stream(AgentRequest request, Consumer<AgentReply> each, Duration idleTimeout, boolean useTls)
      throws IOException {
    // Filled on the event loop: a lock-free queue (a contended lock would park the loop).
    LinkedTransferQueue<Object> replies = new LinkedTransferQueue<>();
    Object end = new Object();
    Bootstrap bootstrap = new Bootstrap().group(transport.group()).channel(transport.channel())
        .option(ChannelOption.ALLOCATOR, transport.allocator())
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) CONNECT_TIMEOUT_MILLIS)
        .handler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            if (useTls) {
              TlsClient.install(ch.pipeline(), tls, agent);
            }
            Frames.install(ch.pipeline());
            ch.pipeline().addLast(new SimpleChannelInboundHandler<Control>() {
              @Override
              protected void channelRead0(ChannelHandlerContext ctx, Control msg) {
                if (msg.getBodyCase() == Control.BodyCase.REPLY) {
                  replies.add(msg.getReply());
                }
              }

              @Override
              public void channelInactive(ChannelHandlerContext ctx) {
                replies.add(end);
              }

              @Override
              public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                replies.add(new IOException(Failures.describe(cause), cause));
                ctx.close();
              }
            });
          }
        });
    ChannelFuture connected = bootstrap.connect(agent).awaitUninterruptibly();
    if (!connected.isSuccess()) {
      throw new IOException("cannot reach agent at " + Addresses.format(agent) + ": "
          + (connected.cause() == null ? "cancelled" : connected.cause().getMessage()), connected.cause());
    }
    Channel channel = connected.channel();
    if (useTls) {
      TlsClient.Outcome outcome = TlsClient.handshake(channel, agentHost, "agent at " + Addresses.format(agent));
      if (!outcome.ok()) {
        channel.close();
        throw outcome.peerSpeaksNoTls() ? new NoTls(outcome.reason()) : new IOException(outcome.reason());
      }
    }
    try {
      channel.writeAndFlush(Control.newBuilder().setRequest(request).build());
      while (true) {
        Object next;
        try {
          next = replies.poll(idleTimeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException("interrupted while waiting for agent " + Addresses.format(agent), e);
        }
        if (next == null) {
          throw new IOException("agent at " + Addresses.format(agent) + " said nothing for " + idleTimeout.toSeconds() + " s");
        }
        if (next == end) {
          return;
        }
        if (next instanceof IOException e) {
          throw e;
        }
        each.accept((AgentReply) next);
      }
    } finally {
      channel.close();
    }
  }
}
