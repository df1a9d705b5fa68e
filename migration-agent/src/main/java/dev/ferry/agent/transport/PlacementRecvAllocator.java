package dev.ferry.agent.transport;

import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.wire.PageStreamReader;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.RecvByteBufAllocator;
import java.nio.ByteBuffer;
import java.util.function.BooleanSupplier;

/**
 * Reads an incoming migration's raw pages from the socket straight into guest memory. Before
 * each read Netty asks this allocator for a buffer; when the next bytes on the wire are a run of
 * raw pages (the page stream reader knows from the batch header), the buffer it hands out is a
 * view of exactly that run of guest memory, so the kernel's copy is the only one. Otherwise it
 * reads only up to the end of the frame prefix or batch header, so that the payload after them
 * can be placed too; everything else reads as usual. Bytes placed this way still go through the
 * decoder and the reader, which checks them and skips the copy onto themselves.
 */
final class PlacementRecvAllocator implements RecvByteBufAllocator {
  /** Frame prefix (5) plus the batch header's fixed part (6): read before a frame's kind is known. */
  private static final int PREFIX_AND_FIXED_BYTES = 11;
  /** Runs shorter than this are cheaper copied than read by themselves. */
  private static final int PLACEMENT_BYTES_MIN = 16 * 1024;

  private final RecvByteBufAllocator usual;
  private Frames.FrameDecoder decoder;
  private PageStreamReader reader;
  private GuestMemory memory;
  private BooleanSupplier receiving = () -> false;

  /**
   * Installed on every accepted connection before its first read (Netty caches a channel's read
   * handle); it reads as usual until {@link #activate}. Only for transports that decode each read
   * before asking for the next buffer (epoll, NIO, io_uring without buffer rings): a buffer handed
   * out for stale state would put bytes in the wrong place. All calls happen on the channel's
   * event loop.
   */
  PlacementRecvAllocator(RecvByteBufAllocator usual) {
    this.usual = usual;
  }

  /** From now on, place the raw pages {@code reader} expects into {@code memory} while {@code receiving}. */
  void activate(Frames.FrameDecoder frames, PageStreamReader pages, GuestMemory target, BooleanSupplier active) {
    this.decoder = frames;
    this.reader = pages;
    this.memory = target;
    this.receiving = active;
  }

  @Override
  public Handle newHandle() {
    return new PlacingHandle((ExtendedHandle) usual.newHandle());
  }

  private final class PlacingHandle extends RecvByteBufAllocator.DelegatingHandle implements ExtendedHandle {
    private final ExtendedHandle extended;

    PlacingHandle(ExtendedHandle delegate) {
      super(delegate);
      this.extended = delegate;
    }

    @Override
    public boolean continueReading(io.netty.util.UncheckedBooleanSupplier maybeMoreDataSupplier) {
      return extended.continueReading(maybeMoreDataSupplier);
    }

    @Override
    public ByteBuf allocate(ByteBufAllocator alloc) {
      if (reader == null || !receiving.getAsBoolean()) {
        return delegate().allocate(alloc); // the migration is over (its memory may be gone)
      }
      int frameLeft = decoder.pageBytesLeft();
      if (frameLeft > 0) {
        long offset = reader.placementOffset();
        int length = Math.min(reader.placementLength(), frameLeft);
        if (offset >= 0 && length >= PLACEMENT_BYTES_MIN) {
          ByteBuffer run = memory.view(offset, length);
          return Unpooled.wrappedBuffer(run).clear();
        }
        int header = reader.headerBytesMissing();
        if (header > 0) {
          return alloc.directBuffer(header, header);
        }
      } else if (decoder.atFrameStart()) {
        return alloc.directBuffer(PREFIX_AND_FIXED_BYTES, PREFIX_AND_FIXED_BYTES);
      }
      return delegate().allocate(alloc);
    }
  }
}
