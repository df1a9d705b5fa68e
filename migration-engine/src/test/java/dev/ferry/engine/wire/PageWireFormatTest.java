package dev.ferry.engine.wire;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ferry.engine.guest.GuestMemory;
import java.nio.ByteBuffer;
import java.util.HexFormat;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

/**
 * Known answers that pin the wire format, so that a change which alters sender and receiver alike
 * (and so passes every round trip) still fails here. The values were computed outside Ferry, by
 * a separate CRC32C (Castagnoli, reflected, polynomial 0x82F63B78) over the bytes that
 * {@link Wire}'s comment describes.
 */
class PageWireFormatTest {
  private static final int PAGE = GuestMemory.PAGE_BYTES;

  /** Page content: byte i is (7 i + 3) mod 256. */
  private static byte[] pattern() {
    byte[] bytes = new byte[PAGE];
    for (int i = 0; i < PAGE; i++) {
      bytes[i] = (byte) (i * 7 + 3);
    }
    return bytes;
  }

  @Test
  void aPageChecksumIsCrc32cOfTheContentThenTheBigEndianPageNumber() {
    CRC32C crc = new CRC32C();
    ByteBuffer content = ByteBuffer.wrap(pattern());
    assertEquals(0xda15e363, PageChecksums.crc(crc, content, 0, 0x01020304));
    assertEquals(0x6f8840bb, PageChecksums.crc(crc, content, 0, 7));
    assertEquals(0x6f8840bb, PageChecksums.crc(crc, ByteBuffer.wrap(pattern()), 7), "the consuming form agrees");
    ByteBuffer shifted = ByteBuffer.allocate(PAGE + 100).position(100).put(pattern()).flip();
    assertEquals(0x6f8840bb, PageChecksums.crc(crc, shifted, 100, 7), "content taken from its offset");
  }

  @Test
  void zeroPageChecksumsDependOnThePageNumber() {
    CRC32C crc = new CRC32C();
    assertEquals(0x81bf8868, PageChecksums.zeroPage(crc, 0));
    assertEquals(0xb44e9c74, PageChecksums.zeroPage(crc, 5));
    assertEquals(0xb44e9c74, PageChecksums.crc(crc, ByteBuffer.allocate(PAGE), 5), "the same as an explicit zero page");
  }

  /**
   * Round 3, a zero page 5 and a raw page 7: header {u32 round, u16 count, entries {u32 page, u8
   * encoding, u32 checksum, u16 length}, u32 header CRC32C}, then page 7's 4096 bytes.
   */
  @Test
  void aBatchIsExactlyTheDocumentedBytes() {
    GuestMemory memory = GuestMemory.allocate(GuestMemory.MEMORY_BYTES_MIN);
    GuestMemory target = GuestMemory.allocate(GuestMemory.MEMORY_BYTES_MIN);
    try {
      memory.pageView(7).put(pattern());
      PageBatchWriter writer = new PageBatchWriter(memory);
      writer.begin(ByteBuffer.allocateDirect(Wire.BATCH_HEADER_BYTES_MAX), () -> {
        throw new AssertionError("no page is compressed");
      }, 3);
      assertEquals(PageBatchWriter.Outcome.ZERO, writer.add(5, false, false));
      assertEquals(PageBatchWriter.Outcome.RAW, writer.add(7, false, false));
      writer.finish();
      writer.seal();
      ByteBuffer body = ByteBuffer.allocate(writer.bodyBytes());
      writer.copyBodyTo(body);
      byte[] header = HexFormat.of().parseHex("00000003" + "0002"
          + "00000005" + "00" + "b44e9c74" + "0000"
          + "00000007" + "01" + "6f8840bb" + "1000"
          + "fd3e92c6");
      byte[] expected = ByteBuffer.allocate(header.length + PAGE).put(header).put(pattern()).array();
      assertArrayEquals(expected, body.array());

      PageStreamReader reader = new PageStreamReader(target);
      reader.beginBatch(expected.length);
      reader.consume(ByteBuffer.wrap(expected));
      assertEquals(0, reader.suspectPages());
      assertEquals(ByteBuffer.wrap(pattern()), target.pageView(7));
    } finally {
      memory.release();
      target.release();
    }
  }
}
