package dev.ferry.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ferry.storage.StorageException.Problem;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * The envelope every Ferry file starts with, at its edges: an empty payload, a payload of exactly
 * the kind's bound and one byte over, version 0, lengths that only an unsigned reading makes
 * sense of. {@link FileChecksTest} covers damaged real files.
 */
class EnvelopeTest {
  @TempDir
  Path dir;

  private Path write(ByteBuffer bytes) throws IOException {
    Path file = dir.resolve("f");
    Files.write(file, Arrays.copyOfRange(bytes.array(), bytes.position(), bytes.limit()));
    return file;
  }

  private static StorageException refused(Problem problem, Executable op) {
    StorageException e = assertThrows(StorageException.class, op);
    assertEquals(problem, e.problem(), e.getMessage());
    return e;
  }

  /** A header with any fields, its header checksum right: for lengths {@link Envelope#encode} cannot state. */
  private static ByteBuffer header(int magic, int version, int length, int payloadCrc) {
    ByteBuffer b = ByteBuffer.allocate(Envelope.HEADER_BYTES);
    b.putInt(magic).putInt(version).putInt(length).putInt(payloadCrc);
    CRC32C crc = new CRC32C();
    crc.update(b.array(), 0, 16);
    return b.putInt((int) crc.getValue()).flip();
  }

  @Test
  void theHeaderIsTheDocumentedTwentyBytes() {
    ByteBuffer sealed = Envelope.seal(FileKind.LEASE, "f", new byte[] {1, 2, 3});
    assertEquals(Envelope.HEADER_BYTES + 3, sealed.remaining());
    CRC32C payloadCrc = new CRC32C();
    payloadCrc.update(new byte[] {1, 2, 3});
    ByteBuffer expected = ByteBuffer.allocate(23)
        .put(header(FileKind.magicOf("FLSE"), 1, 3, (int) payloadCrc.getValue())).put(new byte[] {1, 2, 3}).flip();
    assertEquals(expected, sealed);
    assertEquals("464c5345" + "00000001" + "00000003", HexFormat.of().formatHex(sealed.array(), 0, 12));
  }

  @Test
  void anEmptyPayloadRoundTrips() throws IOException {
    Path file = write(Envelope.seal(FileKind.CONFIG, "f", new byte[0]));
    assertEquals(Envelope.HEADER_BYTES, Files.size(file));
    assertArrayEquals(new byte[0], Envelope.readFile(file, "f", FileKind.CONFIG));
  }

  @Test
  void aPayloadOfExactlyTheBoundIsWrittenAndReadAndOneByteMoreIsNot() throws IOException {
    byte[] payload = new byte[FileKind.LEASE.payloadBytesMax];
    Arrays.fill(payload, (byte) 0x5a);
    Path file = write(Envelope.seal(FileKind.LEASE, "f", payload));
    assertArrayEquals(payload, Envelope.readFile(file, "f", FileKind.LEASE));

    byte[] over = new byte[FileKind.LEASE.payloadBytesMax + 1];
    assertEquals("f: a lease of 257 bytes is over the limit of 256 bytes",
        refused(Problem.OVERSIZED, () -> Envelope.seal(FileKind.LEASE, "f", over)).getMessage());
    write(Envelope.encode(FileKind.LEASE.magic, 1, over));
    assertEquals("f: header says the payload is 257 bytes; a lease is at most 256",
        refused(Problem.OVERSIZED, () -> Envelope.readFile(file, "f", FileKind.LEASE)).getMessage());
  }

  @Test
  void formatVersionZeroIsCorrupt() throws IOException {
    Path file = write(Envelope.encode(FileKind.CONFIG.magic, 0, new byte[] {1}));
    assertEquals("f: format version 0 is impossible",
        refused(Problem.CORRUPT, () -> Envelope.readFile(file, "f", FileKind.CONFIG)).getMessage());
  }

  @Test
  void versionsAndLengthsAreReadUnsigned() throws IOException {
    Path file = write(Envelope.encode(FileKind.CONFIG.magic, 0x80000000, new byte[] {1}));
    assertEquals("f: written by format 2147483648; this Ferry reads up to 1",
        refused(Problem.NEWER_FORMAT, () -> Envelope.readFile(file, "f", FileKind.CONFIG)).getMessage());
    write(header(FileKind.CONFIG.magic, 1, -1, 0));
    assertEquals("f: header says the payload is 4294967295 bytes; a VM config is at most 1048576",
        refused(Problem.OVERSIZED, () -> Envelope.readFile(file, "f", FileKind.CONFIG)).getMessage());
  }

  @Test
  void aPrefixMayBeFollowedByMoreButNotCutShort() throws IOException {
    ByteBuffer sealed = Envelope.seal(FileKind.CHECKPOINT, "f", new byte[] {9, 8, 7});
    ByteBuffer longer = ByteBuffer.allocate(sealed.remaining() + 100).put(sealed.duplicate());
    longer.position(longer.capacity()).flip();
    Path file = write(longer);
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      assertArrayEquals(new byte[] {9, 8, 7}, Envelope.readPrefix(channel, "f", FileKind.CHECKPOINT));
    }
    write(sealed.limit(sealed.limit() - 1));
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      assertEquals("f: is 22 bytes; its header says 23",
          refused(Problem.TRUNCATED, () -> Envelope.readPrefix(channel, "f", FileKind.CHECKPOINT)).getMessage());
    }
  }

  @Test
  void aPrefixThatIsTheWholeFileIsRead() throws IOException {
    Path file = write(Envelope.seal(FileKind.CHECKPOINT, "f", new byte[] {9, 8, 7}));
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      assertArrayEquals(new byte[] {9, 8, 7}, Envelope.readPrefix(channel, "f", FileKind.CHECKPOINT));
    }
  }

  /** A channel may return fewer bytes than asked (a network filesystem does): reading goes on from where it stopped. */
  @Test
  void shortReadsAreContinuedWhereTheyStopped() throws IOException {
    byte[] payload = new byte[200];
    for (int i = 0; i < payload.length; i++) {
      payload[i] = (byte) i;
    }
    Path file = write(Envelope.seal(FileKind.LEASE, "f", payload));
    try (FileChannel channel = new ShortReadChannel(FileChannel.open(file, StandardOpenOption.READ), 7)) {
      assertArrayEquals(payload, Envelope.readPrefix(channel, "f", FileKind.LEASE));
    }
  }

  @Test
  void aFileThatEndsInsideWhatWasAskedForIsTruncated() throws IOException {
    Path file = write(ByteBuffer.wrap(new byte[30]));
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      ByteBuffer into = ByteBuffer.allocate(20);
      assertEquals("f: ends at byte 30; 10 more bytes were expected",
          refused(Problem.TRUNCATED, () -> Envelope.readFully(channel, into, 20, "f")).getMessage());
    }
  }

  @Test
  void aMissingFileIsNotFound() {
    assertEquals("f: does not exist",
        refused(Problem.NOT_FOUND, () -> Envelope.readFile(dir.resolve("none"), "f", FileKind.CONFIG)).getMessage());
  }
}
