package dev.ferry.agent.transport;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.Future;
import java.net.InetSocketAddress;

/**
 * The client's side of a TLS link: the handlers at the head of the pipeline, then the handshake
 * and the check that the peer's certificate names the host the client meant to reach.
 */
final class TlsClient {
  static final String HANDLER = "tls";
  private static final String PROBE = "tls-probe";
  /** TLS record types a TLS server's first bytes can carry: handshake (22) or alert (21). */
  private static final int RECORD_HANDSHAKE = 22;
  private static final int RECORD_ALERT = 21;

  private TlsClient() {}

  /** How the handshake went. */
  record Outcome(boolean ok, boolean peerSpeaksNoTls, String reason) {
    static final Outcome OK = new Outcome(true, false, null);
  }

  /** Puts TLS first in a new client channel's pipeline (before the frame codec). */
  static void install(ChannelPipeline pipeline, MigrationTls tls, InetSocketAddress peer) {
    FirstByteProbe probe = new FirstByteProbe();
    SslHandler ssl = tls.newClientHandler(pipeline.channel().alloc(), peer);
    // Kept on the channel too: a closed channel's pipeline no longer holds its handlers.
    pipeline.channel().attr(PROBE_KEY).set(probe);
    pipeline.channel().attr(SSL_KEY).set(ssl);
    pipeline.addLast(PROBE, probe);
    pipeline.addLast(HANDLER, ssl);
  }

  private static final io.netty.util.AttributeKey<FirstByteProbe> PROBE_KEY =
      io.netty.util.AttributeKey.valueOf("ferry.tls-probe");
  private static final io.netty.util.AttributeKey<SslHandler> SSL_KEY = io.netty.util.AttributeKey.valueOf("ferry.tls");

  /**
   * Waits for the handshake of {@code channel} and checks the peer's host id against
   * {@code expectedHost} (null: any host with a certificate of the cluster CA, e.g. a tool that
   * reaches an agent by address). {@code what} names the peer in reasons ("target agent at ...").
   */
  static Outcome handshake(Channel channel, String expectedHost, String what) {
    SslHandler ssl = channel.attr(SSL_KEY).get();
    Future<Channel> done = ssl.handshakeFuture().awaitUninterruptibly();
    if (!done.isSuccess()) {
      int first = channel.attr(PROBE_KEY).get().firstByte;
      if (first == FirstByteProbe.NOTHING || (first >= 0 && first != RECORD_HANDSHAKE && first != RECORD_ALERT)) {
        return new Outcome(false, true, what + " does not speak TLS"
            + (first == FirstByteProbe.NOTHING ? " (it closed the connection at the TLS handshake)" : ""));
      }
      return new Outcome(false, false, "TLS handshake with " + what + " failed: "
          + MigrationTls.rootMessage(done.cause()));
    }
    String peerHost;
    try {
      peerHost = MigrationTls.peerHostId(ssl.engine().getSession());
    } catch (javax.net.ssl.SSLPeerUnverifiedException e) {
      return new Outcome(false, false, what + " presented no certificate");
    }
    if (expectedHost != null && !expectedHost.equals(peerHost)) {
      return new Outcome(false, false, what + " presented a certificate for host " + peerHost
          + ", not for " + expectedHost + " (refused: a certificate of another host)");
    }
    return Outcome.OK;
  }

  /**
   * Stays in the pipeline (its single field check per read costs nothing next to decryption):
   * the handshake's outcome is read after the connection may already be closed.
   *
   * Remembers the first byte the peer sends, before TLS reads it: a TLS server starts with a
   * handshake or alert record; anything else, or a close without a word, means the peer speaks
   * no TLS (then an opportunistic client may fall back; a failed certificate check never does).
   */
  static final class FirstByteProbe extends ChannelInboundHandlerAdapter {
    static final int NOTHING = -1;
    volatile int firstByte = NOTHING;

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (firstByte == NOTHING && msg instanceof ByteBuf buf && buf.isReadable()) {
        firstByte = buf.getUnsignedByte(buf.readerIndex());
      }
      ctx.fireChannelRead(msg);
    }
  }
}
