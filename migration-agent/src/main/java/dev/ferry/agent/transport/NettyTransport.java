package dev.ferry.agent.transport;

import io.netty.buffer.AdaptiveByteBufAllocator;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringServerSocketChannel;
import io.netty.channel.uring.IoUringSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Netty event loops and channel types: io_uring, else epoll, else NIO, chosen at start-up
 * (or forced with {@code --transport}); the choice and the reason for it are logged.
 */
public final class NettyTransport implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(NettyTransport.class);

  public enum Kind {
    AUTO, IO_URING, EPOLL, NIO;

    public static Kind parse(String text) {
      try {
        return valueOf(text.trim().toUpperCase(Locale.ROOT).replace('-', '_'));
      } catch (IllegalArgumentException e) {
        throw new dev.ferry.common.InvalidConfigException("transport",
            "'" + text + "' is not one of auto, io_uring, epoll, nio");
      }
    }
  }

  /** Which Netty buffer allocator the agent's channels use. */
  public enum Allocator {
    /** The classic pooled arenas: predictable memory, the default. */
    POOLED,
    /** Netty 4.2's adaptive allocator (open reports of direct-memory growth; see STACK.md). */
    ADAPTIVE;

    public static Allocator parse(String text) {
      try {
        return valueOf(text.trim().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new dev.ferry.common.InvalidConfigException("netty-allocator",
            "'" + text + "' is not one of pooled, adaptive");
      }
    }

    ByteBufAllocator instance() {
      return this == POOLED ? PooledByteBufAllocator.DEFAULT : new AdaptiveByteBufAllocator();
    }
  }

  private final Kind kind;
  private final ByteBufAllocator allocator;
  private final EventLoopGroup group;
  private final Class<? extends ServerChannel> serverChannel;
  private final Class<? extends Channel> channel;
  private final String reason;

  private NettyTransport(Kind kind, Allocator allocator, IoHandlerFactory factory,
      Class<? extends ServerChannel> serverChannel, Class<? extends Channel> channel, int threads, String name,
      String reason) {
    this.kind = kind;
    this.allocator = allocator.instance();
    this.group = new MultiThreadIoEventLoopGroup(threads, new DefaultThreadFactory(name, true), factory);
    this.serverChannel = serverChannel;
    this.channel = channel;
    this.reason = reason;
  }

  /** Builds the transport {@code requested} (AUTO picks the best available) with {@code threads} loops. */
  public static NettyTransport create(Kind requested, int threads, String name) {
    return create(requested, Allocator.POOLED, threads, name);
  }

  /** As above with a chosen buffer allocator. */
  public static NettyTransport create(Kind requested, Allocator allocator, int threads, String name) {
    boolean uring = IoUring.isAvailable();
    boolean epoll = Epoll.isAvailable();
    String why;
    Kind chosen;
    switch (requested) {
      case IO_URING -> {
        require(uring, "io_uring", IoUring.unavailabilityCause());
        chosen = Kind.IO_URING;
        why = "requested";
      }
      case EPOLL -> {
        require(epoll, "epoll", Epoll.unavailabilityCause());
        chosen = Kind.EPOLL;
        why = "requested";
      }
      case NIO -> {
        chosen = Kind.NIO;
        why = "requested";
      }
      default -> {
        if (uring) {
          chosen = Kind.IO_URING;
          why = "io_uring is available";
        } else if (epoll) {
          chosen = Kind.EPOLL;
          why = "io_uring unavailable (" + cause(IoUring.unavailabilityCause()) + ")";
        } else {
          chosen = Kind.NIO;
          why = "io_uring and epoll unavailable (" + cause(Epoll.unavailabilityCause()) + ")";
        }
      }
    }
    NettyTransport t = switch (chosen) {
      case IO_URING -> new NettyTransport(chosen, allocator, IoUringIoHandler.newFactory(),
          IoUringServerSocketChannel.class, IoUringSocketChannel.class, threads, name, why);
      case EPOLL -> new NettyTransport(chosen, allocator, EpollIoHandler.newFactory(), EpollServerSocketChannel.class,
          EpollSocketChannel.class, threads, name, why);
      default -> new NettyTransport(chosen, allocator, NioIoHandler.newFactory(), NioServerSocketChannel.class,
          NioSocketChannel.class, threads, name, why);
    };
    LOG.info("transport {}: {}; buffers: {} allocator", t.describe(), why, allocator.name().toLowerCase(Locale.ROOT));
    return t;
  }

  private static void require(boolean available, String name, Throwable cause) {
    if (!available) {
      throw new IllegalStateException(name + " transport requested but unavailable: " + cause(cause));
    }
  }

  private static String cause(Throwable t) {
    if (t == null) {
      return "unknown reason";
    }
    Throwable root = t;
    while (root.getCause() != null) {
      root = root.getCause();
    }
    return root.getMessage() != null ? root.getMessage() : root.toString();
  }

  public Kind kind() {
    return kind;
  }

  public String describe() {
    return kind.name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  public String reason() {
    return reason;
  }

  public ByteBufAllocator allocator() {
    return allocator;
  }

  public EventLoopGroup group() {
    return group;
  }

  public Class<? extends ServerChannel> serverChannel() {
    return serverChannel;
  }

  public Class<? extends Channel> channel() {
    return channel;
  }

  @Override
  public void close() {
    group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
  }
}
