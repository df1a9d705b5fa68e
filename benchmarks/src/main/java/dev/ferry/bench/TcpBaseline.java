package dev.ferry.bench;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

/**
 * The yardstick: a plain single-stream loopback TCP transfer between two off-heap buffers,
 * blocking NIO, {@value #CHUNK_BYTES}-byte writes and reads, nothing else — what the machine's
 * loopback moves right now. Buffers are allocated and touched once, outside the timing; a
 * transfer larger than the buffer cycles through it.
 */
final class TcpBaseline implements AutoCloseable {
  static final int CHUNK_BYTES = 256 * 1024;
  private static final long BUFFER_BYTES_MAX = 1L << 30;
  private final ByteBuffer source;
  private final ByteBuffer destination;
  private long lastCpuNanos;

  TcpBaseline(long bytes) {
    int size = (int) Math.min(bytes, BUFFER_BYTES_MAX);
    size -= size % CHUNK_BYTES;
    source = ByteBuffer.allocateDirect(size);
    destination = ByteBuffer.allocateDirect(size);
    long x = 0x9E3779B97F4A7C15L;
    for (int i = 0; i + 8 <= size; i += 8) {
      x ^= x << 13;
      x ^= x >>> 7;
      x ^= x << 17;
      source.putLong(i, x);
    }
  }

  /** Moves {@code bytes} (rounded down to whole chunks) and returns bytes per second. */
  double measure(long bytes) throws IOException {
    long chunks = bytes / CHUNK_BYTES;
    try (ServerSocketChannel server = ServerSocketChannel.open()) {
      server.bind(new InetSocketAddress("127.0.0.1", 0));
      long cpuStart = dev.ferry.engine.clock.CpuTime.PROCESS.processNanos();
      long start = System.nanoTime();
      CompletableFuture<Void> sender = CompletableFuture.runAsync(() -> send(server, chunks));
      try (SocketChannel in = server.accept()) {
        int slots = source.capacity() / CHUNK_BYTES;
        for (long c = 0; c < chunks; c++) {
          ByteBuffer b = destination.slice((int) (c % slots) * CHUNK_BYTES, CHUNK_BYTES);
          while (b.hasRemaining()) {
            if (in.read(b) < 0) {
              throw new IOException("baseline sender closed early");
            }
          }
        }
      }
      sender.get();
      lastCpuNanos = dev.ferry.engine.clock.CpuTime.PROCESS.processNanos() - cpuStart;
      return chunks * (double) CHUNK_BYTES * 1e9 / (System.nanoTime() - start);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    } catch (ExecutionException e) {
      throw new IOException("baseline sender failed: " + e.getCause(), e.getCause());
    }
  }

  /** CPU time (both ends, this process) the last {@link #measure} took. */
  long lastCpuNanos() {
    return lastCpuNanos;
  }

  private void send(ServerSocketChannel server, long chunks) {
    try (SocketChannel out = SocketChannel.open(server.getLocalAddress())) {
      int slots = source.capacity() / CHUNK_BYTES;
      for (long c = 0; c < chunks; c++) {
        ByteBuffer b = source.slice((int) (c % slots) * CHUNK_BYTES, CHUNK_BYTES);
        while (b.hasRemaining()) {
          out.write(b);
        }
      }
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  @Override
  public void close() {
    // direct buffers are freed by the GC; nothing to do
  }
}
