package dev.ferry.agent.app;

import dev.ferry.storage.LeasedWriter;
import dev.ferry.storage.StorageException;
import dev.ferry.storage.VmDirectory;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.LineBasedFrameDecoder;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.string.StringDecoder;
import io.netty.handler.codec.string.StringEncoder;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedTransferQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The built-in guest's application profile: a small key-value service at the guest's address
 * (127.0.0.1:kv_port of the host it runs on; the port moves with the guest, as its IP would).
 * Lines in, lines out: {@code PUT key value} answers {@code OK} only once the write is on the
 * guest's disk on the datastore (appended through the lease-checked writer and forced), so an
 * acknowledged write survives migrations, suspend/resume and crashes; {@code GET key} answers
 * {@code VALUE v} or {@code NONE}; anything else {@code ERR reason}. After a cutover the old
 * owner's appends are fenced and answer {@code ERR}, so a client retries against the new owner.
 * When the guest leaves the host (cutover, stop, suspend) {@link #close()} closes every client's
 * connection at once: a request in flight is answered or sees the close, never silence.
 */
public final class KvService implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(KvService.class);
  private static final int LINE_BYTES_MAX = 8192;
  private static final long BIND_RETRY_NANOS = TimeUnit.SECONDS.toNanos(15);
  /** A client pipelining more requests than this is not read until its answers catch up. */
  private static final int PENDING_PER_CLIENT_MAX = 64;
  /** How long close waits for an append already on the disk (a suspend checkpoints right after). */
  private static final long DISK_DRAIN_SECONDS = 30;

  private final String vm;
  private final LeasedWriter writer;
  private final KvLog log;
  private final Map<String, String> data = new ConcurrentHashMap<>();
  private final EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
  /**
   * Appends block on the disk: one thread answers every request, so they land and are answered
   * in order, never on the event loop. Not part of the pipeline: closing never hands it events.
   * A plain thread, not Netty's FastThreadLocalThread, which BlockHound takes for an event loop.
   * Its queue is lock-free and its thread started up front: handing over a request never parks
   * the event loop (a LinkedBlockingQueue's locks did, when the disk thread held them).
   */
  private final ExecutorService disk = startDiskThread();
  /** Every open client connection, so that close reaches them all. */
  private final ChannelGroup clients = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
  private volatile boolean closing;
  private Channel server;

  private static ExecutorService startDiskThread() {
    ThreadPoolExecutor executor = new ThreadPoolExecutor(1, 1, 0, TimeUnit.MILLISECONDS, new LinkedTransferQueue<>(),
        r -> {
          Thread t = new Thread(r, "kv-disk");
          t.setDaemon(true);
          return t;
        });
    executor.prestartAllCoreThreads();
    return executor;
  }

  private KvService(String vm, LeasedWriter writer, VmDirectory dir) {
    this.vm = vm;
    this.writer = writer;
    this.log = KvLog.replay(dir, data);
  }

  /**
   * Replays the guest's disk, then listens on 127.0.0.1:{@code port} (retrying while the previous
   * host of the guest still holds the port, as an address moves between switch ports).
   */
  public static KvService start(String vm, int port, LeasedWriter writer, VmDirectory dir) {
    KvService service = new KvService(vm, writer, dir);
    try {
      service.bind(port);
    } catch (RuntimeException e) {
      service.close();
      throw e;
    }
    LOG.info("VM {}: key-value service on 127.0.0.1:{} ({} keys, {} bytes of log replayed)", vm, port,
        service.data.size(), service.log.sizeBytes());
    return service;
  }

  private void bind(int port) {
    long deadline = System.nanoTime() + BIND_RETRY_NANOS;
    while (true) {
      try {
        server = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
            .childHandler(new ChannelInitializer<SocketChannel>() {
              @Override
              protected void initChannel(SocketChannel ch) {
                ch.pipeline().addLast(new LineBasedFrameDecoder(LINE_BYTES_MAX))
                    .addLast(new StringDecoder(StandardCharsets.UTF_8))
                    .addLast(new StringEncoder(StandardCharsets.UTF_8))
                    .addLast(new Handler());
              }
            })
            .bind(new InetSocketAddress("127.0.0.1", port)).syncUninterruptibly().channel();
        return;
      } catch (Exception e) {
        if (!(e instanceof BindException) || System.nanoTime() > deadline) {
          throw new IllegalStateException("VM " + vm + ": cannot listen on 127.0.0.1:" + port + ": " + e.getMessage(), e);
        }
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
      }
    }
  }

  /** One per connection, on the event loop: hands each line to the disk thread, in order. */
  private final class Handler extends SimpleChannelInboundHandler<String> {
    private int pending; // touched on the event loop only

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      clients.add(ctx.channel());
      ctx.fireChannelActive();
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, String line) {
      Channel channel = ctx.channel();
      try {
        disk.execute(() -> reply(channel, line));
      } catch (RejectedExecutionException e) {
        ctx.close(); // closing: the client learns at once to go elsewhere
        return;
      }
      if (++pending >= PENDING_PER_CLIENT_MAX) {
        channel.config().setAutoRead(false);
      }
    }

    /** After an answer went out: reads resume once the client has few requests pending. */
    private void answered(Channel channel) {
      if (--pending < PENDING_PER_CLIENT_MAX && !channel.config().isAutoRead()) {
        channel.config().setAutoRead(true);
      }
    }

    /** On the disk thread: a closed client gets no answer and, above all, no append. */
    private void reply(Channel channel, String line) {
      if (closing || !channel.isActive()) {
        return;
      }
      channel.writeAndFlush(answer(line.strip()) + "\n")
          .addListener(f -> answered(channel)); // listeners run on the event loop
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      if (cause instanceof TooLongFrameException) {
        ctx.writeAndFlush("ERR line longer than " + LINE_BYTES_MAX + " bytes\n");
      }
      ctx.close();
    }
  }

  String answer(String line) {
    String[] words = line.split(" ", 3);
    try {
      switch (words[0]) {
        case "PUT" -> {
          if (words.length != 3 || words[1].isEmpty()) {
            return "ERR usage: PUT key value";
          }
          log.append(writer, words[1], words[2]);
          data.put(words[1], words[2]);
          return "OK";
        }
        case "GET" -> {
          if (words.length != 2) {
            return "ERR usage: GET key";
          }
          String value = data.get(words[1]);
          return value == null ? "NONE" : "VALUE " + value;
        }
        default -> {
          return "ERR unknown command (PUT key value | GET key)";
        }
      }
    } catch (StorageException e) {
      return "ERR not stored: " + e.getMessage();
    } catch (RuntimeException e) {
      return "ERR " + e.getMessage();
    }
  }

  /**
   * Stops accepting, closes every client connection at once, waits for an append already on the
   * disk (its answer meets a closed connection; queued requests are dropped unapplied), then
   * stops the event loop, which by then has nothing left to hand to the disk thread.
   */
  @Override
  public void close() {
    closing = true;
    if (server != null) {
      server.close().syncUninterruptibly();
    }
    clients.close().awaitUninterruptibly();
    disk.shutdown();
    try {
      if (!disk.awaitTermination(DISK_DRAIN_SECONDS, TimeUnit.SECONDS)) {
        LOG.warn("VM {}: a key-value append still runs {} s after close", vm, DISK_DRAIN_SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }
}
