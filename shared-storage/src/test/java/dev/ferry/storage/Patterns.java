package dev.ferry.storage;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Random;

/**
 * Content that says what it is: configs and memory generated from a version number, so a test
 * can tell exactly which version a file holds and that every byte of it is right.
 */
final class Patterns {
  static final int PAGE_BYTES = 4096;

  private Patterns() {}

  /** Version {@code version}'s config: the version, then 0 to 256 KiB of bytes seeded by it. */
  static byte[] config(long version) {
    Random random = new Random(version);
    byte[] bytes = new byte[8 + random.nextInt(256 << 10)];
    random.nextBytes(bytes);
    ByteBuffer.wrap(bytes).putLong(0, version);
    return bytes;
  }

  static long configVersion(byte[] config) {
    return ByteBuffer.wrap(config).getLong(0);
  }

  /** The memory word at {@code byteOffset} (a multiple of 8) in version {@code version}. */
  static long word(long version, long byteOffset) {
    long x = version * 0x9E3779B97F4A7C15L ^ byteOffset;
    x ^= x >>> 33;
    x *= 0xff51afd7ed558ccdL;
    x ^= x >>> 33;
    return x;
  }

  /** Fills {@code buffer}'s remaining bytes (a multiple of 8) with the memory from {@code memoryOffset}. */
  static void fill(ByteBuffer buffer, long version, long memoryOffset) {
    int start = buffer.position();
    for (int i = 0; i < buffer.remaining(); i += 8) {
      buffer.putLong(start + i, word(version, memoryOffset + i));
    }
  }

  /** The memory offset of the first byte of {@code pages} that is not version {@code version}'s, or -1. */
  static long firstMismatch(ByteBuffer pages, long version, long memoryOffset) {
    int start = pages.position();
    for (int i = 0; i < pages.remaining(); i += 8) {
      if (pages.getLong(start + i) != word(version, memoryOffset + i)) {
        return memoryOffset + i;
      }
    }
    return -1;
  }

  static byte[] machineState(long version) {
    return ("vcpu and devices of version " + version).getBytes(StandardCharsets.US_ASCII);
  }

  /** Writes version {@code version} of checkpoint {@code name} through a 256 KiB buffer. */
  static void writeCheckpoint(LeasedWriter writer, String name, long version, long memoryBytes, int chunkBytes) {
    ByteBuffer buffer = ByteBuffer.allocateDirect(256 << 10);
    try (CheckpointWriter checkpoint = writer.beginCheckpoint(name, memoryBytes, PAGE_BYTES, chunkBytes)) {
      for (long offset = 0; offset < memoryBytes; offset += buffer.capacity()) {
        buffer.clear().limit((int) Math.min(buffer.capacity(), memoryBytes - offset));
        fill(buffer, version, offset);
        checkpoint.writeMemory(buffer);
      }
      checkpoint.finish(machineState(version));
    }
  }

  /**
   * Reads checkpoint {@code name} in full, checking every byte against the version its machine
   * state names; returns that version. Fails on any checksum or pattern mismatch.
   */
  static long verifyCheckpoint(VmDirectory vm, String name) {
    long version;
    try (CheckpointReader reader = vm.openCheckpoint(name)) {
      String state = new String(reader.verify(), StandardCharsets.US_ASCII);
      version = Long.parseLong(state.substring(state.lastIndexOf(' ') + 1));
      long[] delivered = {0};
      reader.read((offset, pages) -> {
        if (offset != delivered[0]) {
          throw new AssertionError("pages at " + offset + " delivered after " + delivered[0] + " bytes");
        }
        long bad = firstMismatch(pages, version, offset);
        if (bad >= 0) {
          throw new AssertionError("memory byte " + bad + " is not version " + version + "'s");
        }
        delivered[0] += pages.remaining();
      });
      if (delivered[0] != reader.header().memoryBytes()) {
        throw new AssertionError(delivered[0] + " of " + reader.header().memoryBytes() + " bytes delivered");
      }
    }
    return version;
  }
}
