package dev.ferry.agent.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.wire.PageBatchWriter;
import dev.ferry.engine.wire.PageStreamReader;
import dev.ferry.engine.wire.ProtocolException;
import dev.ferry.engine.wire.Wire;
import dev.ferry.proto.Abort;
import dev.ferry.proto.Control;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.Hello;
import dev.ferry.proto.RoundEnd;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.EncoderException;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.timeout.ReadTimeoutException;
import io.netty.util.ReferenceCountUtil;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The frame layer through {@link EmbeddedChannel}: control messages round-trip; a page frame
 * streams as a {@link PageBatchStart} and {@link PageBytes} slices that add up to its body, however
 * the bytes arrive; a hostile byte stream yields only protocol errors; every buffer is released.
 */
class FramesTest {
  private static final Control HELLO = Control.newBuilder().setHello(Hello.newBuilder()
      .setProtocolVersion(Wire.PROTOCOL_VERSION).setMigrationId("m-42").setSourceHost("host-a:7000")
      .setGuest(GuestSpec.newBuilder().setName("vm-1").setMemoryBytes(16L << 20).setVcpus(2))
      .setPageSize(4096).setDigest(true)).build();
  private static final Control ROUND_END = Control.newBuilder()
      .setRoundEnd(RoundEnd.newBuilder().setRound(3).setPages(12345)).build();

  private final List<EmbeddedChannel> channels = new ArrayList<>();
  private final List<ByteBuf> created = new ArrayList<>();
  private final List<GuestMemory> memories = new ArrayList<>();

  @AfterEach
  void releaseEverything() {
    for (EmbeddedChannel channel : channels) {
      channel.finishAndReleaseAll();
    }
    for (GuestMemory memory : memories) {
      memory.release();
    }
    for (ByteBuf buf : created) {
      assertEquals(0, buf.refCnt(), "a buffer handed to the pipeline was not released");
    }
  }

  private EmbeddedChannel channel() {
    EmbeddedChannel channel = new EmbeddedChannel();
    Frames.install(channel.pipeline());
    channels.add(channel);
    return channel;
  }

  /** A buffer this test creates and hands to the pipeline, which must release it. */
  private ByteBuf buffer(byte[] bytes) {
    return buffer(bytes, 0, bytes.length);
  }

  private ByteBuf buffer(byte[] bytes, int from, int to) {
    ByteBuf buf = Unpooled.directBuffer(Math.max(1, to - from)).writeBytes(bytes, from, to - from);
    created.add(buf);
    return buf;
  }

  // --- Decoded messages -----------------------------------------------------------------------

  /** A page frame as the test sees it once its {@link PageBytes} are collected. */
  private record PageBody(byte[] bytes) {
    @Override
    public boolean equals(Object o) {
      return o instanceof PageBody other && Arrays.equals(bytes, other.bytes);
    }

    @Override
    public int hashCode() {
      return Arrays.hashCode(bytes);
    }

    @Override
    public String toString() {
      return "PageBody(" + bytes.length + " bytes)";
    }
  }

  /**
   * Collects what a channel decoded since the last call, releasing every {@link PageBytes}: each
   * page frame becomes one {@link PageBody} once its bytes are complete, and the bytes must come
   * right after their start and add up to exactly its length.
   */
  private static final class Collector {
    private ByteArrayOutputStream pending;
    private int pendingBytes;
    final List<Object> frames = new ArrayList<>();
    int pageBytesMessages;

    void drain(EmbeddedChannel channel) {
      for (Object message = channel.readInbound(); message != null; message = channel.readInbound()) {
        try {
          accept(message);
        } finally {
          ReferenceCountUtil.release(message);
        }
      }
    }

    void accept(Object message) {
      if (message instanceof PageBytes bytes) {
        assertTrue(bytes.refCnt() > 0, "a PageBytes arrives alive, for the handler to release");
        if (pending == null) {
          fail("page bytes outside a page frame");
        }
        int n = bytes.content().readableBytes();
        assertTrue(n > 0 && n <= pendingBytes, n + " page bytes, " + pendingBytes + " expected at most");
        byte[] copy = new byte[n];
        bytes.content().getBytes(bytes.content().readerIndex(), copy);
        pending.writeBytes(copy);
        pendingBytes -= n;
        pageBytesMessages++;
        if (pendingBytes == 0) {
          frames.add(new PageBody(pending.toByteArray()));
          pending = null;
        }
        return;
      }
      if (pending != null) {
        fail(message + " arrived inside a page frame with " + pendingBytes + " bytes to go");
      }
      if (message instanceof PageBatchStart start) {
        assertTrue(start.bodyBytes() > 0 && start.bodyBytes() < Wire.FRAME_BYTES_MAX, start.toString());
        pending = new ByteArrayOutputStream();
        pendingBytes = start.bodyBytes();
      } else if (message instanceof Control control) {
        frames.add(control);
      } else {
        fail("decoded " + message.getClass().getName());
      }
    }

    boolean inPageFrame() {
      return pending != null;
    }
  }

  private static List<Object> decodeAll(EmbeddedChannel channel) {
    Collector collector = new Collector();
    collector.drain(channel);
    assertFalse(collector.inPageFrame(), "a page frame is incomplete");
    return collector.frames;
  }

  // --- Control frames -------------------------------------------------------------------------

  @Test
  void controlMessagesRoundTrip() {
    for (Control message : new Control[] {HELLO, ROUND_END,
        Control.newBuilder().setAbort(Abort.newBuilder().setReason("operator cancelled")).build()}) {
      byte[] wire = encode(message);
      assertEquals(4 + 1 + message.getSerializedSize(), wire.length, message.getBodyCase().toString());
      assertEquals(1 + message.getSerializedSize(), readInt(wire, 0), "the length counts kind and body");
      assertEquals(Wire.KIND_CONTROL, wire[4]);
      EmbeddedChannel in = channel();
      assertTrue(in.writeInbound(buffer(wire)), "a whole frame decodes at once");
      assertEquals(message, in.readInbound());
      assertNull(in.readInbound());
    }
  }

  @Test
  void theLargestControlMessageRoundTripsAndALargerOneIsNotSent() {
    Control largest = abortOfSize(Wire.FRAME_BYTES_MAX - 1);
    byte[] wire = encode(largest);
    assertEquals(Wire.FRAME_BYTES_MAX, readInt(wire, 0));
    EmbeddedChannel in = channel();
    in.writeInbound(buffer(wire));
    assertEquals(largest, in.readInbound());

    Control tooLarge = abortOfSize(Wire.FRAME_BYTES_MAX);
    EmbeddedChannel out = channel();
    EncoderException e = assertThrows(EncoderException.class, () -> out.writeOutbound(tooLarge));
    ProtocolException cause = assertInstanceOf(ProtocolException.class, e.getCause());
    assertTrue(cause.getMessage().contains("exceeds the frame limit of " + Wire.FRAME_BYTES_MAX), cause.getMessage());
    assertNull(out.readOutbound(), "nothing of the refused message is written");
  }

  @Test
  void aMalformedControlMessageIsAProtocolError() {
    byte[][] bodies = {{(byte) 0xFF}, {0x0A, 0x7F}, {0x0A, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, 0x0F}};
    for (byte[] body : bodies) {
      EmbeddedChannel in = channel();
      DecoderException e = assertThrows(DecoderException.class,
          () -> in.writeInbound(buffer(frame(Wire.KIND_CONTROL, body))), Arrays.toString(body));
      ProtocolException cause = assertInstanceOf(ProtocolException.class, e.getCause());
      assertTrue(cause.getMessage().startsWith("malformed control message"), cause.getMessage());
      assertTrue(Failures.isProtocolError(e));
      assertNull(in.readInbound());
    }
  }

  // --- Page frames ----------------------------------------------------------------------------

  @Test
  void aPageFrameStreamsAsAStartAndSlicesOfTheReceiveBuffer() {
    byte[] body = new byte[10_000];
    new SplittableRandom(1).nextBytes(body);
    EmbeddedChannel in = channel();
    ByteBuf received = buffer(frame(Wire.KIND_PAGES, body));
    in.writeInbound(received);
    assertEquals(new PageBatchStart(body.length), in.readInbound());
    PageBytes bytes = assertInstanceOf(PageBytes.class, in.readInbound());
    assertNull(in.readInbound(), "one inbound buffer, one slice");
    try {
      assertEquals(Unpooled.wrappedBuffer(body), bytes.content());
      assertEquals(1, bytes.refCnt());
      assertTrue(received.refCnt() > 0, "the slice keeps the receive buffer alive");
      // A slice, not a copy: a change to the receive buffer shows through.
      received.setByte(5 + 1234, body[1234] ^ 0x55);
      assertEquals((byte) (body[1234] ^ 0x55), bytes.content().getByte(bytes.content().readerIndex() + 1234));
    } finally {
      assertTrue(bytes.release());
    }
    assertEquals(0, received.refCnt(), "released with the last slice");
  }

  @Test
  void aPageBodyArrivingOverSeveralReadsStreamsAPiecePerRead() {
    byte[] body = new byte[9_000];
    new SplittableRandom(2).nextBytes(body);
    byte[] stream = concat(concat(encode(HELLO), frame(Wire.KIND_PAGES, body)), encode(ROUND_END));
    int bodyAt = encode(HELLO).length + 5;
    int[] cuts = {0, bodyAt - 2, bodyAt + 1000, bodyAt + 5000, bodyAt + body.length + 3, stream.length};
    EmbeddedChannel in = channel();
    List<Object> messages = new ArrayList<>();
    List<ByteBuf> received = new ArrayList<>();
    for (int i = 0; i + 1 < cuts.length; i++) {
      ByteBuf chunk = buffer(stream, cuts[i], cuts[i + 1]);
      received.add(chunk);
      in.writeInbound(chunk);
      for (Object m = in.readInbound(); m != null; m = in.readInbound()) {
        messages.add(m);
      }
    }
    try {
      assertEquals(HELLO, messages.get(0));
      assertEquals(new PageBatchStart(body.length), messages.get(1));
      int[] expected = {1000, 4000, body.length - 5000};
      for (int i = 0; i < expected.length; i++) {
        PageBytes bytes = assertInstanceOf(PageBytes.class, messages.get(2 + i), "message " + (2 + i));
        assertEquals(expected[i], bytes.content().readableBytes(), "piece " + i);
      }
      assertEquals(ROUND_END, messages.get(5));
      assertEquals(6, messages.size(), messages.toString());
      Collector collector = new Collector();
      messages.forEach(collector::accept);
      assertEquals(List.of(HELLO, new PageBody(body), ROUND_END), collector.frames);
      // The third read starts inside the body with nothing buffered: its piece is that very buffer.
      PageBytes third = (PageBytes) messages.get(3);
      received.get(2).setByte(0, received.get(2).getByte(0) ^ 1);
      assertEquals(received.get(2).getByte(0), third.content().getByte(third.content().readerIndex()));
    } finally {
      messages.forEach(ReferenceCountUtil::release);
    }
  }

  @Test
  void framesSplitAnywhereOrSharingABufferAreReassembled() {
    byte[] pages = new byte[300];
    new SplittableRandom(3).nextBytes(pages);
    List<Object> expected = List.of(HELLO, new PageBody(pages), ROUND_END, new PageBody(new byte[] {7}));
    byte[] stream = concat(concat(encode(HELLO), frame(Wire.KIND_PAGES, pages)),
        concat(encode(ROUND_END), frame(Wire.KIND_PAGES, new byte[] {7})));
    for (int split = 0; split <= stream.length; split++) {
      EmbeddedChannel in = channel();
      in.writeInbound(buffer(stream, 0, split));
      in.writeInbound(buffer(stream, split, stream.length));
      assertEquals(expected, decodeAll(in), "split at " + split);
    }
    EmbeddedChannel byteByByte = channel();
    Collector collector = new Collector();
    for (int i = 0; i < stream.length; i++) {
      byteByByte.writeInbound(buffer(stream, i, i + 1));
      collector.drain(byteByByte);
    }
    assertEquals(expected, collector.frames, "byte by byte");
    assertEquals(pages.length + 1, collector.pageBytesMessages, "one PageBytes per body byte");
    SplittableRandom random = new SplittableRandom(4);
    for (int run = 0; run < 200; run++) {
      EmbeddedChannel in = channel();
      Collector c = new Collector();
      for (int at = 0; at < stream.length; ) {
        int n = Math.min(stream.length - at, 1 + random.nextInt(64));
        in.writeInbound(buffer(stream, at, at + n));
        c.drain(in);
        at += n;
      }
      assertEquals(expected, c.frames, "random chunks, run " + run);
    }
  }

  @Test
  void theLargestFrameDecodesAndOneByteMoreIsRefused() {
    byte[] body = new byte[Wire.FRAME_BYTES_MAX - 1]; // length field FRAME_BYTES_MAX: kind + body
    body[body.length - 1] = 42;
    EmbeddedChannel in = channel();
    in.writeInbound(buffer(frame(Wire.KIND_PAGES, body)));
    assertEquals(List.of(new PageBody(body)), decodeAll(in));

    EmbeddedChannel refused = channel();
    DecoderException e = assertThrows(DecoderException.class,
        () -> refused.writeInbound(buffer(frame(Wire.KIND_PAGES, new byte[Wire.FRAME_BYTES_MAX]))));
    assertEquals("frame length " + (Wire.FRAME_BYTES_MAX + 1) + " outside 1.." + Wire.FRAME_BYTES_MAX,
        assertInstanceOf(ProtocolException.class, e.getCause()).getMessage());
    assertNull(refused.readInbound(), "not even a PageBatchStart");
  }

  @Test
  void anOversizeOrZeroLengthIsRefusedFromThePrefixAlone() {
    for (long length : new long[] {0, Wire.FRAME_BYTES_MAX + 1L, 0x7FFF_FFFFL, 0x8000_0000L, 0xFFFF_FFFFL}) {
      for (byte kind : new byte[] {Wire.KIND_CONTROL, Wire.KIND_PAGES}) {
        String context = "length " + length + ", kind " + kind;
        EmbeddedChannel in = channel();
        byte[] prefix = {(byte) (length >>> 24), (byte) (length >>> 16), (byte) (length >>> 8), (byte) length,
            kind, 1, 2, 3};
        DecoderException e = assertThrows(DecoderException.class, () -> in.writeInbound(buffer(prefix)), context);
        ProtocolException cause = assertInstanceOf(ProtocolException.class, e.getCause(), context);
        assertEquals("frame length " + length + " outside 1.." + Wire.FRAME_BYTES_MAX, cause.getMessage(), context);
        assertTrue(Failures.isProtocolError(e), context);
        assertEquals("protocol error: " + cause.getMessage(), Failures.describe(e), context);
        assertNull(in.readInbound(), context);
      }
    }
  }

  @Test
  void anUnknownKindOrAnEmptyPageFrameIsAProtocolError() {
    for (byte kind : new byte[] {0, 3, 9, (byte) 0xFF}) {
      EmbeddedChannel in = channel();
      DecoderException e = assertThrows(DecoderException.class,
          () -> in.writeInbound(buffer(frame(kind, new byte[] {1, 2, 3}))), "kind " + kind);
      ProtocolException cause = assertInstanceOf(ProtocolException.class, e.getCause(), "kind " + kind);
      assertEquals("unknown frame kind " + Byte.toUnsignedInt(kind), cause.getMessage());
      assertEquals("protocol error: unknown frame kind " + Byte.toUnsignedInt(kind), Failures.describe(e));
      assertNull(in.readInbound());
    }
    EmbeddedChannel in = channel();
    DecoderException e = assertThrows(DecoderException.class,
        () -> in.writeInbound(buffer(frame(Wire.KIND_PAGES, new byte[0]))));
    assertEquals("empty page batch frame", assertInstanceOf(ProtocolException.class, e.getCause()).getMessage());
    EmbeddedChannel control = channel();
    DecoderException empty = assertThrows(DecoderException.class,
        () -> control.writeInbound(buffer(new byte[] {0, 0, 0, 1, Wire.KIND_CONTROL})));
    assertEquals("empty control frame", assertInstanceOf(ProtocolException.class, empty.getCause()).getMessage());
    assertNull(in.readInbound());
  }

  @Test
  void afterAnErrorTheDecoderDropsEverythingThatFollows() {
    byte[] pages = new byte[100];
    byte[] stream = concat(concat(encode(HELLO), frame(Wire.KIND_PAGES, pages)),
        concat(frame((byte) 7, new byte[] {1}), encode(ROUND_END)));
    EmbeddedChannel in = channel();
    assertThrows(DecoderException.class, () -> in.writeInbound(buffer(stream)));
    assertEquals(List.of(HELLO, new PageBody(pages)), decodeAll(in), "what preceded the error is delivered");
    // Valid frames afterwards, in new reads: dropped without another error.
    in.writeInbound(buffer(encode(ROUND_END)));
    in.writeInbound(buffer(frame(Wire.KIND_PAGES, pages)));
    assertNull(in.readInbound());
    in.checkException();
  }

  @Test
  void aTruncatedFrameYieldsWhatArrivedAndIsReleasedOnClose() {
    byte[] control = encode(ROUND_END);
    for (int length : new int[] {1, 3, 4, 5, control.length - 1}) {
      EmbeddedChannel in = channel();
      assertFalse(in.writeInbound(buffer(control, 0, length)), "control, length " + length);
      assertFalse(in.finishAndReleaseAll(), "control, length " + length + ": nothing decodes at close either");
    }
    byte[] pages = frame(Wire.KIND_PAGES, new byte[100]);
    for (int length : new int[] {1, 4}) {
      EmbeddedChannel in = channel();
      assertFalse(in.writeInbound(buffer(pages, 0, length)), "pages, length " + length);
      assertFalse(in.finishAndReleaseAll(), "pages, length " + length);
    }
    for (int length : new int[] {5, 6, 50, pages.length - 1}) {
      EmbeddedChannel in = channel();
      in.writeInbound(buffer(pages, 0, length));
      Collector collector = new Collector();
      collector.drain(in);
      assertTrue(collector.inPageFrame(), "pages, length " + length + ": the frame is open");
      assertEquals(length == 5 ? 0 : 1, collector.pageBytesMessages, "pages, length " + length);
      assertFalse(in.finishAndReleaseAll(), "pages, length " + length);
    }
  }

  @Test
  void failuresDescribeCausesForTheAbortReason() {
    assertEquals("protocol error: bad", Failures.describe(new ProtocolException("bad")));
    assertEquals("protocol error: bad", Failures.describe(new DecoderException(new ProtocolException("bad"))));
    assertEquals("protocol error: oversize frame (big)", Failures.describe(new TooLongFrameException("big")));
    assertEquals("peer sent nothing in time", Failures.describe(ReadTimeoutException.INSTANCE));
    assertEquals("IOException: reset", Failures.describe(new IOException("reset")));
    assertEquals("IllegalStateException", Failures.describe(new IllegalStateException()));
    assertTrue(Failures.isProtocolError(new ProtocolException("x")));
    assertTrue(Failures.isProtocolError(new DecoderException(new ProtocolException("x"))));
    assertTrue(Failures.isProtocolError(new TooLongFrameException("x")));
    assertFalse(Failures.isProtocolError(new IOException("x")));
    assertFalse(Failures.isProtocolError(ReadTimeoutException.INSTANCE));
  }

  // --- End to end -----------------------------------------------------------------------------

  @Test
  void pageBatchesSentLikeTheSourceArriveInGuestMemoryThroughAnyChunking() {
    GuestMemory source = memory();
    SplittableRandom fill = new SplittableRandom(6);
    byte[] page = new byte[GuestMemory.PAGE_BYTES];
    int pages = 8 * Wire.BATCH_PAGES_MAX;
    for (int p = 0; p < pages; p++) {
      switch (fill.nextInt(3)) {
        case 0 -> { }
        case 1 -> {
          fill.nextBytes(page);
          source.pageView(p).put(page);
        }
        default -> {
          Arrays.fill(page, (byte) ('a' + fill.nextInt(26)));
          page[fill.nextInt(page.length)] = 0;
          source.pageView(p).put(page);
        }
      }
    }
    // The source's pipeline: page frames as the link builds them (kind byte and header, then
    // guest memory and payload ranges, no copy), control messages in between.
    EmbeddedChannel out = channel();
    PageBatchWriter writer = new PageBatchWriter(source);
    List<Control> controls = new ArrayList<>();
    int batches = 0;
    for (int first = 0; first < pages; first += Wire.BATCH_PAGES_MAX) {
      ByteBuf header = Unpooled.directBuffer(1 + Wire.BATCH_HEADER_BYTES_MAX).writeByte(Wire.KIND_PAGES);
      ByteBuf payload = Unpooled.directBuffer(Wire.BATCH_PAYLOAD_BYTES_MAX);
      ByteBuffer headerView = header.nioBuffer(1, Wire.BATCH_HEADER_BYTES_MAX);
      writer.begin(headerView, () -> payload.nioBuffer(0, Wire.BATCH_PAYLOAD_BYTES_MAX), batches);
      for (int p = first; p < first + Wire.BATCH_PAGES_MAX; p++) {
        writer.add(p, batches % 2 == 0, batches % 3 != 0);
      }
      writer.finish();
      writer.seal();
      CompositeByteBuf frame = Unpooled.compositeBuffer(writer.segmentCount() + 1);
      header.writerIndex(1 + headerView.limit());
      frame.addComponent(true, header);
      for (int i = 0; i < writer.segmentCount(); i++) {
        frame.addComponent(true, writer.segmentInGuest(i)
            ? Unpooled.wrappedBuffer(source.view(writer.segmentStart(i), writer.segmentLength(i)))
            : payload.retainedSlice((int) writer.segmentStart(i), writer.segmentLength(i)));
      }
      payload.release();
      assertEquals(1 + writer.bodyBytes(), frame.readableBytes());
      out.writeOutbound(frame);
      Control roundEnd = Control.newBuilder().setRoundEnd(RoundEnd.newBuilder().setRound(batches)).build();
      out.writeOutbound(roundEnd);
      controls.add(roundEnd);
      batches++;
    }
    byte[] stream = drainOutbound(out);

    for (long seed = 0; seed < 6; seed++) {
      SplittableRandom random = new SplittableRandom(seed);
      GuestMemory target = memory();
      PageStreamReader reader = new PageStreamReader(target);
      List<Control> received = new ArrayList<>();
      EmbeddedChannel in = channel();
      // Tiny chunks over the first 12 KB (a frame prefix, its header, the first payloads), then
      // chunks of up to chunkMax: every kind of boundary without a buffer per byte (each buffer
      // costs the paranoid leak detector stack traces).
      int tinyBytes = seed < 3 ? 12_000 : 0;
      int chunkMax = seed < 2 ? 1_000 : 100_000;
      List<ByteBuf> live = new ArrayList<>();
      for (int at = 0; at < stream.length; ) {
        int n = Math.min(stream.length - at, 1 + random.nextInt(at < tinyBytes ? 8 : chunkMax));
        ByteBuf chunk = Unpooled.directBuffer(n).writeBytes(stream, at, n);
        live.add(chunk);
        in.writeInbound(chunk);
        at += n;
        // What the agent's target handler does with each message.
        for (Object m = in.readInbound(); m != null; m = in.readInbound()) {
          try {
            if (m instanceof PageBatchStart start) {
              reader.beginBatch(start.bodyBytes());
            } else if (m instanceof PageBytes bytes) {
              for (ByteBuffer piece : bytes.content().nioBuffers()) {
                reader.consume(piece);
              }
            } else {
              assertFalse(reader.inBatch(), "seed " + seed + ": control inside a page frame");
              received.add((Control) m);
            }
          } finally {
            ReferenceCountUtil.release(m);
          }
        }
        live.removeIf(b -> b.refCnt() == 0);
        assertTrue(live.size() <= 2, "seed " + seed + ": " + live.size() + " inbound buffers still held");
      }
      in.finishAndReleaseAll();
      for (ByteBuf chunk : live) {
        assertEquals(0, chunk.refCnt(), "seed " + seed + ": an inbound buffer was not released");
      }
      String context = "seed " + seed + ", chunks of up to " + chunkMax;
      assertEquals(controls, received, context);
      assertFalse(reader.inBatch(), context);
      assertEquals(0, reader.suspectPages(), context);
      for (int p = 0; p < source.pageCount(); p++) {
        if (!source.pageView(p).equals(target.pageView(p))) {
          fail(context + ": page " + p + " differs");
        }
      }
      assertTrue(reader.pagesRaw() > 0 && reader.pagesLz4() > 0 && reader.pagesZero() > 0, context);
    }
  }

  // --- Fuzz -----------------------------------------------------------------------------------

  @Test
  void hostileStreamsYieldOnlyProtocolErrorsAndLeakNothing() {
    byte[][] valid = {encode(HELLO), encode(ROUND_END), frame(Wire.KIND_PAGES, new byte[300]),
        frame(Wire.KIND_PAGES, new byte[] {1})};
    int errors = 0;
    int decoded = 0;
    for (long seed = 0; seed < 1_000; seed++) {
      SplittableRandom random = new SplittableRandom(seed);
      byte[] stream = random.nextInt(4) == 0 ? randomBytes(random) : mutatedStream(valid, random);
      EmbeddedChannel in = new EmbeddedChannel();
      Frames.install(in.pipeline());
      // One chunk can hold several bad frames; the channel would rethrow only the first.
      List<Throwable> raised = new ArrayList<>();
      in.pipeline().addLast("catch-all", new ChannelInboundHandlerAdapter() {
        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
          raised.add(cause);
        }
      });
      List<ByteBuf> chunks = new ArrayList<>();
      Collector collector = new Collector();
      boolean failed = false;
      try {
        int at = 0;
        while (at < stream.length) {
          int length = Math.min(stream.length - at, 1 + random.nextInt(random.nextBoolean() ? 8 : 2_000));
          ByteBuf chunk = Unpooled.directBuffer(length).writeBytes(stream, at, length);
          chunks.add(chunk);
          at += length;
          in.writeInbound(chunk);
          int before = collector.frames.size() + collector.pageBytesMessages;
          try {
            collector.drain(in);
          } catch (AssertionError e) {
            throw new AssertionError("seed " + seed + ": " + e.getMessage(), e);
          }
          if (failed && collector.frames.size() + collector.pageBytesMessages != before) {
            fail("seed " + seed + ": messages decoded after a protocol error");
          }
          for (Throwable t : raised) {
            if (!(t instanceof DecoderException && t.getCause() instanceof ProtocolException)) {
              throw new AssertionError("seed " + seed + ": " + t + " escaped the pipeline", t);
            }
            assertTrue(Failures.isProtocolError(t), "seed " + seed);
          }
          if (!raised.isEmpty()) {
            if (failed || raised.size() > 1) {
              fail("seed " + seed + ": one error per connection, then silence; got another: " + raised);
            }
            failed = true;
            errors++;
            raised.clear();
          }
        }
        decoded += collector.frames.size();
      } finally {
        in.finishAndReleaseAll();
      }
      for (ByteBuf chunk : chunks) {
        if (chunk.refCnt() != 0) {
          fail("seed " + seed + ": an inbound chunk of " + chunk.capacity() + " bytes was not released");
        }
      }
    }
    assertTrue(errors > 100, "the fuzz should hit protocol errors: " + errors);
    assertTrue(decoded > 100, "the fuzz should also decode frames: " + decoded);
  }

  private static byte[] randomBytes(SplittableRandom random) {
    byte[] bytes = new byte[random.nextInt(3_000)];
    random.nextBytes(bytes);
    if (bytes.length >= 5 && random.nextBoolean()) {
      // A believable length and kind, so that protobuf and the page streaming see the random body.
      int length = random.nextInt(bytes.length - 3);
      bytes[0] = 0;
      bytes[1] = 0;
      bytes[2] = (byte) (length >>> 8);
      bytes[3] = (byte) length;
      bytes[4] = (byte) (1 + random.nextInt(2));
    }
    return bytes;
  }

  private static byte[] mutatedStream(byte[][] valid, SplittableRandom random) {
    byte[] stream = new byte[0];
    int frames = 1 + random.nextInt(5);
    for (int i = 0; i < frames; i++) {
      stream = concat(stream, valid[random.nextInt(valid.length)]);
    }
    int mutations = random.nextInt(4);
    for (int i = 0; i < mutations && stream.length > 0; i++) {
      int at = random.nextInt(stream.length);
      switch (random.nextInt(3)) {
        case 0 -> stream[at] ^= (byte) (1 << random.nextInt(8));
        case 1 -> stream = Arrays.copyOf(stream, at);
        default -> {
          byte[] inserted = new byte[1 + random.nextInt(8)];
          random.nextBytes(inserted);
          stream = concat(concat(Arrays.copyOf(stream, at), inserted), Arrays.copyOfRange(stream, at, stream.length));
        }
      }
    }
    return stream;
  }

  // --- Helpers --------------------------------------------------------------------------------

  private GuestMemory memory() {
    GuestMemory memory = GuestMemory.allocate(GuestMemory.MEMORY_BYTES_MIN);
    memories.add(memory);
    return memory;
  }

  /** What the pipeline writes for {@code message}: every outbound buffer, concatenated and released. */
  private byte[] encode(Control message) {
    EmbeddedChannel out = channel();
    assertTrue(out.writeOutbound(message));
    return drainOutbound(out);
  }

  private static byte[] drainOutbound(EmbeddedChannel out) {
    ByteArrayOutputStream wire = new ByteArrayOutputStream();
    for (ByteBuf buf = out.readOutbound(); buf != null; buf = out.readOutbound()) {
      byte[] bytes = new byte[buf.readableBytes()];
      buf.readBytes(bytes);
      assertTrue(buf.release(), "the outbound buffer is ours to release");
      wire.writeBytes(bytes);
    }
    assertTrue(wire.size() > 0);
    return wire.toByteArray();
  }

  /** An Abort whose serialized Control is exactly {@code size} bytes. */
  private static Control abortOfSize(int size) {
    int reason = size - 8;
    while (true) {
      Control c = Control.newBuilder().setAbort(Abort.newBuilder().setReason("x".repeat(reason))).build();
      int actual = c.getSerializedSize();
      if (actual == size) {
        return c;
      }
      reason += size - actual;
    }
  }

  private static byte[] frame(byte kind, byte[] body) {
    byte[] frame = new byte[5 + body.length];
    int length = 1 + body.length;
    frame[0] = (byte) (length >>> 24);
    frame[1] = (byte) (length >>> 16);
    frame[2] = (byte) (length >>> 8);
    frame[3] = (byte) length;
    frame[4] = kind;
    System.arraycopy(body, 0, frame, 5, body.length);
    return frame;
  }

  private static int readInt(byte[] bytes, int at) {
    return ((bytes[at] & 0xFF) << 24) | ((bytes[at + 1] & 0xFF) << 16) | ((bytes[at + 2] & 0xFF) << 8) | (bytes[at + 3] & 0xFF);
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] both = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, both, a.length, b.length);
    return both;
  }

  @org.junit.jupiter.api.AfterAll
  static void noBufferLeaked() {
    dev.ferry.agent.testing.LeakRecorder.assertNoLeaks();
  }
}
