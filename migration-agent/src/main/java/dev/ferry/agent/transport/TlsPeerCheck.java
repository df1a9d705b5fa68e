package dev.ferry.agent.transport;

import dev.ferry.proto.Control;
import dev.ferry.proto.Hello;
import dev.ferry.proto.HelloAck;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.NotSslRecordException;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.ReferenceCountUtil;
import java.util.ArrayDeque;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The target's check of who sent a migration: on a TLS connection, the {@code Hello}'s source
 * host must be the host the source's certificate names, and the host the migration's record
 * names (asked of {@link Verifier} without blocking the event loop). Anything else is refused
 * with the reason before the migration starts. Also logs failed handshakes and plain peers of a
 * server that requires TLS. Removes itself after the first message.
 */
public final class TlsPeerCheck extends ChannelInboundHandlerAdapter {
  private static final Logger LOG = LoggerFactory.getLogger(TlsPeerCheck.class);
  static final String NAME = "tls-peer-check";

  /** Which host a migration comes from, by its record. */
  @FunctionalInterface
  public interface Verifier {
    /** Completes with the source host the record of {@code migrationId} names, or null if unknown here. */
    CompletableFuture<String> expectedSource(String migrationId);

    Verifier NONE = id -> CompletableFuture.completedFuture(null);
  }

  private final Verifier verifier;
  private String peerHost;
  /** Messages that arrived while the record was read (released if the connection ends). */
  private ArrayDeque<Object> held;
  private boolean refused;

  TlsPeerCheck(Verifier verifier) {
    this.verifier = verifier;
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object event) throws Exception {
    if (event instanceof SslHandshakeCompletionEvent done) {
      if (done.isSuccess()) {
        SslHandler ssl = ctx.pipeline().get(SslHandler.class);
        peerHost = MigrationTls.peerHostId(ssl.engine().getSession());
      } else if (!(done.cause() instanceof NotSslRecordException)) {
        LOG.warn("refusing connection from {}: TLS handshake failed: {}", ctx.channel().remoteAddress(),
            MigrationTls.rootMessage(done.cause()));
      }
    }
    ctx.fireUserEventTriggered(event);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (cause.getCause() instanceof NotSslRecordException || cause instanceof NotSslRecordException) {
      LOG.warn("refusing connection from {}: it does not speak TLS, and this agent requires it"
          + " (--migration-encryption required)", ctx.channel().remoteAddress());
      ctx.close();
      return;
    }
    ctx.fireExceptionCaught(cause);
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (refused) {
      ReferenceCountUtil.release(msg);
      return;
    }
    if (held != null) {
      held.add(msg);
      return;
    }
    if (peerHost == null || !(msg instanceof Control control) || control.getBodyCase() != Control.BodyCase.HELLO) {
      // A plain connection (opportunistic), or an admin request: any certificate of the CA will do.
      ctx.pipeline().remove(this);
      ctx.fireChannelRead(msg);
      return;
    }
    Hello hello = control.getHello();
    if (!hello.getSourceHost().equals(peerHost)) {
      refuse(ctx, "the source's certificate is for host " + peerHost + ", but it says it is "
          + hello.getSourceHost());
      return;
    }
    held = new ArrayDeque<>();
    held.add(msg);
    ctx.channel().config().setAutoRead(false);
    CompletableFuture<String> expected;
    try {
      expected = verifier.expectedSource(hello.getMigrationId());
    } catch (RuntimeException e) {
      expected = CompletableFuture.failedFuture(e);
    }
    expected.whenComplete((source, failure) -> ctx.executor().execute(() -> decide(ctx, hello, source, failure)));
  }

  private void decide(ChannelHandlerContext ctx, Hello hello, String source, Throwable failure) {
    if (!ctx.channel().isActive()) {
      releaseHeld();
      return;
    }
    if (failure != null) {
      refuse(ctx, "cannot read migration " + hello.getMigrationId() + " to check its source: "
          + MigrationTls.rootMessage(failure));
    } else if (source != null && !source.equals(peerHost)) {
      refuse(ctx, "migration " + hello.getMigrationId() + " comes from host " + source
          + " (its record), not from host " + peerHost + " (the certificate of this connection)");
    } else {
      ArrayDeque<Object> pass = held;
      held = null;
      ctx.pipeline().remove(this);
      ctx.channel().config().setAutoRead(true);
      while (!pass.isEmpty()) {
        ctx.fireChannelRead(pass.poll());
      }
    }
  }

  private void refuse(ChannelHandlerContext ctx, String reason) {
    refused = true;
    releaseHeld();
    LOG.warn("refusing migration from {}: {}", ctx.channel().remoteAddress(), reason);
    ctx.writeAndFlush(Control.newBuilder().setHelloAck(HelloAck.newBuilder().setAccepted(false)
        .setProtocolVersion(dev.ferry.engine.wire.Wire.PROTOCOL_VERSION).setReason(reason)).build())
        .addListener(ChannelFutureListener.CLOSE);
  }

  private void releaseHeld() {
    if (held != null) {
      held.forEach(ReferenceCountUtil::release);
      held = null;
    }
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    releaseHeld();
    ctx.fireChannelInactive();
  }
}
