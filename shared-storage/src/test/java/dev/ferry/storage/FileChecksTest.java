package dev.ferry.storage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.storage.StorageException.Problem;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * Damaged and foreign files: a flipped byte, a truncation, an oversized file or length, a newer
 * format, the wrong kind of file. Each is refused with a {@link StorageException} that names the
 * file and says what is wrong, and nothing of it is returned.
 */
class FileChecksTest {
  @TempDir
  Path root;
  private VmDirectory vm;
  private LeasedWriter writer;
  private Path config;

  @BeforeEach
  void setUp() {
    vm = Datastore.open(root).create("web-1");
    vm.lease().acquire("h1", 1);
    writer = vm.openWriter("h1", 1);
    writer.writeConfig(Patterns.config(1));
    config = vm.configPath();
  }

  @AfterEach
  void tearDown() {
    writer.close();
  }

  // --- vm.conf ---------------------------------------------------------------------------------

  @Test
  void aFlippedPayloadByteIsCorrupt() throws IOException {
    flip(config, Envelope.HEADER_BYTES + 100);
    StorageException e = refused(Problem.CORRUPT, () -> vm.readConfig());
    assertTrue(e.getMessage().startsWith("vms/web-1/vm.conf: checksum mismatch (stored 0x"), e.getMessage());
  }

  @Test
  void aFlippedHeaderByteIsCorrupt() throws IOException {
    flip(config, 7);
    assertEquals("vms/web-1/vm.conf: header checksum mismatch", refused(Problem.CORRUPT, () -> vm.readConfig()).getMessage());
  }

  @Test
  void aTruncatedConfigIsRefused() throws IOException {
    long size = Files.size(config);
    truncate(config, size - 10);
    assertEquals("vms/web-1/vm.conf: is " + (size - 10) + " bytes; its header says " + size,
        refused(Problem.TRUNCATED, () -> vm.readConfig()).getMessage());
    truncate(config, 5);
    assertEquals("vms/web-1/vm.conf: is 5 bytes, shorter than the 20-byte header",
        refused(Problem.TRUNCATED, () -> vm.readConfig()).getMessage());
    truncate(config, 0);
    assertEquals("vms/web-1/vm.conf: is empty", refused(Problem.TRUNCATED, () -> vm.readConfig()).getMessage());
  }

  @Test
  void anOversizedConfigIsRefusedBeforeItIsRead() throws IOException {
    long size = Files.size(config);
    Files.write(config, new byte[] {1, 2, 3}, java.nio.file.StandardOpenOption.APPEND);
    assertEquals("vms/web-1/vm.conf: is " + (size + 3) + " bytes; its header says " + size,
        refused(Problem.OVERSIZED, () -> vm.readConfig()).getMessage());
    // A well-formed envelope whose length is over the bound: refused from the header alone.
    forge(config, FileKind.CONFIG.magic, 1, new byte[(1 << 20) + 1]);
    assertEquals("vms/web-1/vm.conf: header says the payload is 1048577 bytes; a VM config is at most 1048576",
        refused(Problem.OVERSIZED, () -> vm.readConfig()).getMessage());
  }

  @Test
  void aNewerFormatIsRefusedByName() throws IOException {
    forge(config, FileKind.CONFIG.magic, 3, "from the future".getBytes());
    assertEquals("vms/web-1/vm.conf: written by format 3; this Ferry reads up to 1",
        refused(Problem.NEWER_FORMAT, () -> vm.readConfig()).getMessage());
  }

  @Test
  void anotherKindOfFileIsNotReadAsAConfig() throws IOException {
    vm.lease().renew("h1", 1);
    Files.copy(vm.path().resolve(VmDirectory.LEASE_FILE), config, StandardCopyOption.REPLACE_EXISTING);
    assertEquals("vms/web-1/vm.conf: is not a Ferry VM config (magic 0x464c5345, expected 0x46434647)",
        refused(Problem.NOT_A_FERRY_FILE, () -> vm.readConfig()).getMessage());
  }

  // --- lease -----------------------------------------------------------------------------------

  @Test
  void aCorruptLeaseStopsEveryLeaseOperation() throws IOException {
    Path lease = vm.path().resolve(VmDirectory.LEASE_FILE);
    flip(lease, Envelope.HEADER_BYTES + 2);
    for (Executable op : new Executable[] {
        () -> vm.lease().acquire("h2", 9), () -> vm.lease().check("h1", 1), () -> vm.lease().read(),
        () -> writer.writeConfig(Patterns.config(2))}) {
      StorageException e = refused(Problem.CORRUPT, op);
      assertTrue(e.getMessage().startsWith("vms/web-1/lease: checksum mismatch"), e.getMessage());
    }
    assertEquals(1, Patterns.configVersion(vm.readConfig()));
    String listed = Datastore.open(root).list().get(0).leaseProblem().orElseThrow();
    assertTrue(listed.startsWith("vms/web-1/lease: checksum mismatch"), listed);
  }

  @Test
  void aLeaseFromANewerFormatIsNotOverwritten() throws IOException {
    Path lease = vm.path().resolve(VmDirectory.LEASE_FILE);
    forge(lease, FileKind.LEASE.magic, 2, new byte[40]);
    assertEquals("vms/web-1/lease: written by format 2; this Ferry reads up to 1",
        refused(Problem.NEWER_FORMAT, () -> vm.lease().acquire("h2", 99)).getMessage());
  }

  @Test
  void aLeaseWithImpossibleFieldsNamesTheField() throws IOException {
    Path lease = vm.path().resolve(VmDirectory.LEASE_FILE);
    ByteBuffer payload = ByteBuffer.allocate(1 + 4 + 16).put((byte) 4).put("../x".getBytes()).putLong(1).putLong(0);
    forge(lease, FileKind.LEASE.magic, 1, payload.array());
    assertEquals("vms/web-1/lease: field host '../x' is not a valid name",
        refused(Problem.CORRUPT, () -> vm.lease().read()).getMessage());
  }

  // --- disk images -----------------------------------------------------------------------------

  @Test
  void aDiskImageOfTheWrongSizeOrFormatIsRefused() throws IOException {
    writer.createDisk(0, 1 << 20);
    Path disk = vm.diskPath(0);
    truncate(disk, DiskImage.DATA_OFFSET + 4096);
    assertEquals("vms/web-1/disk-0.img: is 8192 bytes; a 1048576-byte disk's image is 1052672",
        refused(Problem.TRUNCATED, () -> writer.writeDiskBlock(0, ByteBuffer.allocate(512))).getMessage());
    ByteBuffer header = ByteBuffer.allocate(12).putLong(1 << 20).putInt(0);
    forge(disk, FileKind.DISK.magic, 4, header.array());
    assertEquals("vms/web-1/disk-0.img: written by format 4; this Ferry reads up to 1",
        refused(Problem.NEWER_FORMAT, () -> vm.diskCapacityBytes(0)).getMessage());
  }

  // --- checkpoints -----------------------------------------------------------------------------

  @Test
  void aFlippedMemoryByteFailsItsChunk() throws IOException {
    Path file = checkpoint();
    // Chunk 3's data: after the envelope, three whole chunks and chunk 3's own 8-byte header.
    long chunk3 = dataOffset() + 3L * (8 + (64 << 10)) + 8;
    flip(file, chunk3 + 1000);
    AtomicLong delivered = new AtomicLong();
    try (CheckpointReader reader = vm.openCheckpoint("mem")) {
      StorageException e = refused(Problem.CORRUPT,
          () -> reader.read((offset, pages) -> delivered.addAndGet(pages.remaining())));
      assertEquals("vms/web-1/checkpoint/mem.ckpt: chunk 3 (memory bytes 196608..262144) checksum mismatch", e.getMessage());
      assertEquals(3L * (64 << 10), delivered.get(), "chunks before the bad one were delivered, not it");
    }
  }

  @Test
  void aFlippedTrailerByteFailsTheWholeFileChecksum() throws IOException {
    Path file = checkpoint();
    flip(file, Files.size(file) - 6);
    try (CheckpointReader reader = vm.openCheckpoint("mem")) {
      assertEquals("vms/web-1/checkpoint/mem.ckpt: whole-file checksum mismatch",
          refused(Problem.CORRUPT, reader::verify).getMessage());
    }
  }

  @Test
  void aTruncatedOrPaddedCheckpointIsRefusedBeforeAnyPage() throws IOException {
    Path file = checkpoint();
    long size = Files.size(file);
    Files.write(file, new byte[1], java.nio.file.StandardOpenOption.APPEND);
    assertEquals("vms/web-1/checkpoint/mem.ckpt: is " + (size + 1) + " bytes; its header and trailer say " + size,
        refused(Problem.OVERSIZED, () -> vm.openCheckpoint("mem")).getMessage());
    truncate(file, size - 1);
    refused(Problem.TRUNCATED, () -> vm.openCheckpoint("mem"));
    truncate(file, size / 2);
    StorageException half = refused(Problem.TRUNCATED, () -> vm.openCheckpoint("mem"));
    assertTrue(half.getMessage().startsWith("vms/web-1/checkpoint/mem.ckpt: is " + size / 2 + " bytes; 1048576 bytes"
        + " of memory need at least "), half.getMessage());
  }

  @Test
  void aNewerFormatCheckpointIsRefused() throws IOException {
    Path file = checkpoint();
    CheckpointHeader header = new CheckpointHeader("web-1", 1 << 20, 4096, 64 << 10, 0);
    rewritePrefix(file, Envelope.encode(FileKind.CHECKPOINT.magic, 2, header.encode()));
    assertEquals("vms/web-1/checkpoint/mem.ckpt: written by format 2; this Ferry reads up to 1",
        refused(Problem.NEWER_FORMAT, () -> vm.openCheckpoint("mem")).getMessage());
  }

  @Test
  void untrustedLengthsAreBoundedBeforeAnythingIsAllocated() throws IOException {
    Path file = checkpoint();
    CheckpointHeader huge = new CheckpointHeader("web-1", 1 << 20, 4096, 1 << 30, 0);
    rewritePrefix(file, Envelope.encode(FileKind.CHECKPOINT.magic, 1, huge.encode()));
    assertEquals("vms/web-1/checkpoint/mem.ckpt: field chunk bytes 1073741824 is not a whole number of pages from "
        + "65536 to 4194304", refused(Problem.CORRUPT, () -> vm.openCheckpoint("mem")).getMessage());

    file = checkpoint();
    long stateLengthAt = header().trailerOffset() + 8;
    try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
      raf.seek(stateLengthAt);
      raf.writeInt(1 << 30);
    }
    assertEquals("vms/web-1/checkpoint/mem.ckpt: trailer says the machine state is 1073741824 bytes; the limit is "
        + CheckpointHeader.MACHINE_STATE_BYTES_MAX, refused(Problem.OVERSIZED, () -> vm.openCheckpoint("mem")).getMessage());
  }

  @Test
  void anotherVmsCheckpointIsRefused() throws IOException {
    Path file = checkpoint();
    VmDirectory other = Datastore.open(root).create("web-2");
    Files.createDirectories(other.checkpointPath("mem").getParent());
    Files.copy(file, other.checkpointPath("mem"));
    assertEquals("vms/web-2/checkpoint/mem.ckpt: holds VM web-1's memory, not web-2's",
        refused(Problem.CORRUPT, () -> other.openCheckpoint("mem")).getMessage());
  }

  // --- helpers ---------------------------------------------------------------------------------

  private Path checkpoint() {
    Patterns.writeCheckpoint(writer, "mem", 1, 1 << 20, 64 << 10);
    return vm.checkpointPath("mem");
  }

  private static CheckpointHeader header() {
    return new CheckpointHeader("web-1", 1 << 20, 4096, 64 << 10, 0);
  }

  private static long dataOffset() {
    return Envelope.HEADER_BYTES + header().encode().length;
  }

  private static StorageException refused(Problem problem, Executable op) {
    StorageException e = assertThrows(StorageException.class, op);
    assertEquals(problem, e.problem(), e.getMessage());
    return e;
  }

  private static void flip(Path file, long at) throws IOException {
    try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
      raf.seek(at);
      int b = raf.read();
      raf.seek(at);
      raf.write(b ^ 0x10);
    }
  }

  private static void truncate(Path file, long size) throws IOException {
    try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
      raf.setLength(size);
    }
  }

  /** Replaces {@code file} with one envelope of any magic and version. */
  private static void forge(Path file, int magic, int version, byte[] payload) throws IOException {
    ByteBuffer bytes = Envelope.encode(magic, version, payload);
    Files.write(file, java.util.Arrays.copyOf(bytes.array(), bytes.remaining()));
  }

  /** Overwrites the start of {@code file} in place. */
  private static void rewritePrefix(Path file, ByteBuffer prefix) throws IOException {
    try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
      raf.write(prefix.array(), 0, prefix.remaining());
    }
  }
}
