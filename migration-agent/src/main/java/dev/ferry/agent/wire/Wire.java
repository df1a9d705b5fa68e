package dev.ferry.agent.wire;

import dev.ferry.agent.guest.GuestMemory;

/**
 * The agent-to-agent wire format's constants and bounds.
 *
 * <p>Frame: {@code [u32 length][u8 kind][body]}, length counting kind and body, at most
 * {@link #FRAME_BYTES_MAX}. Kind {@link #KIND_CONTROL}: the body is a protobuf {@code Control}.
 * Kind {@link #KIND_PAGES}: the body is a page batch:
 *
 * <pre>
 *   u32 round, u16 count (1..BATCH_PAGES_MAX), then count entries:
 *   u32 page, u8 encoding, u32 CRC32C of the 4096-byte page followed by its u32 number, then:
 *     ZERO: nothing    RAW: 4096 bytes    LZ4: u16 length (1..4095), length bytes
 * </pre>
 */
public final class Wire {
  public static final int PROTOCOL_VERSION = 1;
  public static final byte KIND_CONTROL = 1;
  public static final byte KIND_PAGES = 2;

  public static final byte ENCODING_ZERO = 0;
  public static final byte ENCODING_RAW = 1;
  public static final byte ENCODING_LZ4 = 2;

  public static final int BATCH_PAGES_MAX = 64;
  static final int BATCH_HEADER_BYTES = 6;
  static final int ENTRY_HEADER_BYTES = 9;
  static final int LZ4_LENGTH_BYTES = 2;
  /** lz4's worst case for one page (LZ4_compressBound(4096)). */
  static final int LZ4_BOUND_BYTES = GuestMemory.PAGE_BYTES + GuestMemory.PAGE_BYTES / 255 + 16;
  /** A compressed page must save at least 1/8 to be sent compressed. */
  static final int LZ4_WORTH_BYTES_MAX = GuestMemory.PAGE_BYTES * 7 / 8;
  static final int ENTRY_BYTES_MAX = ENTRY_HEADER_BYTES + LZ4_LENGTH_BYTES + LZ4_BOUND_BYTES;
  /** Room a batch buffer needs: header plus the worst case of every entry. */
  public static final int BATCH_BYTES_MAX = BATCH_HEADER_BYTES + BATCH_PAGES_MAX * ENTRY_BYTES_MAX;
  /** No frame is larger: bounds what a receiver ever buffers for one peer. */
  public static final int FRAME_BYTES_MAX = 1 << 20;

  private Wire() {}

  public static String encodingName(byte encoding) {
    return switch (encoding) {
      case ENCODING_ZERO -> "zero";
      case ENCODING_RAW -> "raw";
      case ENCODING_LZ4 -> "lz4";
      default -> "unknown(" + encoding + ")";
    };
  }
}
