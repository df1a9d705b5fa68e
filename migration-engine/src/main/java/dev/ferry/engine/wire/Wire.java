package dev.ferry.engine.wire;

import dev.ferry.engine.guest.GuestMemory;

/**
 * The agent-to-agent wire format's constants and bounds.
 *
 * <p>Frame: {@code [u32 length][u8 kind][body]}, length counting kind and body, at most
 * {@link #FRAME_BYTES_MAX}. Kind {@link #KIND_CONTROL}: the body is a protobuf {@code Control}.
 * Kind {@link #KIND_PAGES}: the body is a page batch, its header first, then the payloads:
 *
 * <pre>
 *   header:   u32 round, u16 count (1..BATCH_PAGES_MAX),
 *             count entries of { u32 page, u8 encoding, u32 page checksum, u16 payload length },
 *             u32 CRC32C of the header bytes before it
 *   payloads: in entry order; ZERO: none, RAW: the 4096 bytes, LZ4: 1..4095 bytes
 * </pre>
 *
 * The page checksum is CRC32C over the page's 4096 bytes followed by its u32 number. Payloads
 * follow the header so that the sender can hand guest memory to the socket without copying it
 * and the receiver can copy each page straight to its place.
 */
public final class Wire {
  /** 2: the target commits the move itself once the last pages check out (1: the source sent Commit). */
  public static final int PROTOCOL_VERSION = 2;
  public static final byte KIND_CONTROL = 1;
  public static final byte KIND_PAGES = 2;

  public static final byte ENCODING_ZERO = 0;
  public static final byte ENCODING_RAW = 1;
  public static final byte ENCODING_LZ4 = 2;

  public static final int BATCH_PAGES_MAX = 64;
  static final int BATCH_FIXED_BYTES = 6;
  static final int ENTRY_BYTES = 11;
  static final int HEADER_CRC_BYTES = 4;
  /** The largest batch header. */
  public static final int BATCH_HEADER_BYTES_MAX = BATCH_FIXED_BYTES + BATCH_PAGES_MAX * ENTRY_BYTES + HEADER_CRC_BYTES;
  /** lz4's worst case for one page (LZ4_compressBound(4096)). */
  static final int LZ4_BOUND_BYTES = GuestMemory.PAGE_BYTES + GuestMemory.PAGE_BYTES / 255 + 16;
  /** A compressed page must save at least 1/8 to be sent compressed. */
  static final int LZ4_WORTH_BYTES_MAX = GuestMemory.PAGE_BYTES * 7 / 8;
  /** Room for the compressed payloads of one batch, with slack for one failed attempt. */
  public static final int BATCH_PAYLOAD_BYTES_MAX = BATCH_PAGES_MAX * LZ4_WORTH_BYTES_MAX + LZ4_BOUND_BYTES;
  /** The largest batch body: header plus every page raw. */
  public static final int BATCH_BODY_BYTES_MAX = BATCH_HEADER_BYTES_MAX + BATCH_PAGES_MAX * GuestMemory.PAGE_BYTES;
  /** No frame is larger: bounds what a receiver ever buffers for one peer. */
  public static final int FRAME_BYTES_MAX = 1 << 20;

  private Wire() {}

  static int headerBytes(int count) {
    return BATCH_FIXED_BYTES + count * ENTRY_BYTES + HEADER_CRC_BYTES;
  }

  public static String encodingName(byte encoding) {
    return switch (encoding) {
      case ENCODING_ZERO -> "zero";
      case ENCODING_RAW -> "raw";
      case ENCODING_LZ4 -> "lz4";
      default -> "unknown(" + encoding + ")";
    };
  }
}
