package dev.ferry.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.storage.StorageException.Problem;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Writes through the lease: fenced after a cutover, bounded, and durable. */
class LeasedWriterTest {
  private static final long DISK_BYTES = 1 << 20;

  @TempDir
  Path root;
  private VmDirectory vm;
  private LeasedWriter old;
  private final byte[] configA = "config A".getBytes();
  private final byte[] blockA = filled(64 << 10, (byte) 0xA1);

  @BeforeEach
  void setUp() {
    vm = Datastore.open(root).create("web-1");
    vm.lease().acquire("h1", 7);
    old = vm.openWriter("h1", 7);
    old.writeConfig(configA);
    old.createDisk(0, DISK_BYTES);
    old.writeDiskBlock(0, ByteBuffer.wrap(blockA));
    old.force();
  }

  @AfterEach
  void tearDown() {
    old.close();
  }

  @Test
  void afterACutoverTheOldOwnersWritesAreRefusedAndChangeNothing() {
    vm.lease().acquire("h2", 8);

    LeaseException config = assertThrows(LeaseException.class, () -> old.writeConfig("config B".getBytes()));
    assertEquals(Problem.FENCED, config.problem());
    assertEquals("vms/web-1/lease: h1 at epoch 7 is fenced: the lease is held by h2 at epoch 8 (heartbeat 0 ms ago)",
        config.getMessage().replaceAll("heartbeat \\d+ ms", "heartbeat 0 ms"));
    assertArrayEquals(configA, vm.readConfig());

    ByteBuffer blockB = ByteBuffer.wrap(filled(64 << 10, (byte) 0xB2));
    assertEquals(Problem.FENCED, assertThrows(LeaseException.class, () -> old.writeDiskBlock(0, blockB)).problem());
    assertEquals(Problem.FENCED, assertThrows(LeaseException.class, () -> old.writeDiskBlock(4096, blockB)).problem());
    assertArrayEquals(blockA, readDisk(0, blockA.length));
    assertArrayEquals(new byte[4096], readDisk(blockA.length, 4096));

    assertEquals(Problem.FENCED, assertThrows(LeaseException.class, () -> old.createDisk(1, DISK_BYTES)).problem());
    assertFalse(Files.exists(vm.diskPath(1)));
    assertEquals(Problem.FENCED, assertThrows(LeaseException.class,
        () -> old.beginCheckpoint("mem", 1 << 20, 4096)).problem());

    try (LeasedWriter current = vm.openWriter("h2", 8)) {
      current.writeConfig("config C".getBytes());
      current.writeDiskBlock(0, blockB);
    }
    assertArrayEquals("config C".getBytes(), vm.readConfig());
    assertArrayEquals(filled(64 << 10, (byte) 0xB2), readDisk(0, 64 << 10));
  }

  @Test
  void aCheckpointFinishedAfterACutoverIsNotPublished() throws Exception {
    Patterns.writeCheckpoint(old, "mem", 1, 1 << 20, 64 << 10);
    CheckpointWriter second = old.beginCheckpoint("mem", 1 << 20, 4096, 64 << 10);
    ByteBuffer memory = ByteBuffer.allocateDirect(1 << 20);
    Patterns.fill(memory, 2, 0);
    second.writeMemory(memory);
    vm.lease().acquire("h2", 8);
    assertEquals(Problem.FENCED, assertThrows(LeaseException.class, () -> second.finish(new byte[0])).problem());
    assertEquals(1, Patterns.verifyCheckpoint(vm, "mem"));
    try (Stream<Path> files = Files.list(vm.path().resolve(VmDirectory.CHECKPOINT_DIR))) {
      assertEquals(1, files.count(), "the fenced checkpoint's temporary file is gone");
    }
  }

  @Test
  void aWriterNeedsTheLeaseToOpen() {
    assertEquals(Problem.FENCED, assertThrows(LeaseException.class, () -> vm.openWriter("h2", 7)).problem());
    assertEquals(Problem.FENCED, assertThrows(LeaseException.class, () -> vm.openWriter("h1", 6)).problem());
  }

  @Test
  void diskWritesStayInsideTheDisk() {
    ByteBuffer sector = ByteBuffer.wrap(filled(512, (byte) 7));
    old.writeDiskBlock(DISK_BYTES - 512, sector);
    assertArrayEquals(filled(512, (byte) 7), readDisk(DISK_BYTES - 512, 512));
    StorageException past = assertThrows(StorageException.class,
        () -> old.writeDiskBlock(DISK_BYTES - 256, ByteBuffer.allocate(512)));
    assertEquals(Problem.OUT_OF_BOUNDS, past.problem());
    assertEquals("vms/web-1/disk-0.img: 512 bytes at offset 1048320 do not fit a 1048576-byte disk", past.getMessage());
    assertEquals(Problem.OUT_OF_BOUNDS, assertThrows(StorageException.class,
        () -> old.writeDiskBlock(-1, ByteBuffer.allocate(1))).problem());
    assertEquals(Problem.OUT_OF_BOUNDS, assertThrows(StorageException.class,
        () -> old.writeDiskBlock(Long.MAX_VALUE, ByteBuffer.allocate(1))).problem());
    assertEquals(Problem.OUT_OF_BOUNDS, assertThrows(StorageException.class,
        () -> old.writeDiskBlock(VmDirectory.DISKS_MAX, 0, ByteBuffer.allocate(1))).problem());
    assertEquals(Problem.NOT_FOUND, assertThrows(StorageException.class,
        () -> old.writeDiskBlock(3, 0, ByteBuffer.allocate(1))).problem());
    assertEquals(DiskImage.DATA_OFFSET + DISK_BYTES, vm.diskPath(0).toFile().length());
  }

  @Test
  void aDiskIsCreatedOnceWithAWholeNumberOfSectors() {
    assertEquals(DISK_BYTES, vm.diskCapacityBytes(0));
    assertEquals(Problem.ALREADY_EXISTS, assertThrows(StorageException.class, () -> old.createDisk(0, 2 * DISK_BYTES)).problem());
    assertEquals(Problem.OUT_OF_BOUNDS, assertThrows(StorageException.class, () -> old.createDisk(1, 1000)).problem());
    assertEquals(Problem.OUT_OF_BOUNDS, assertThrows(StorageException.class, () -> old.createDisk(1, 0)).problem());
    old.createDisk(1, 4096);
    assertEquals(4096, vm.diskCapacityBytes(1));
    assertArrayEquals(new byte[4096], readDisk(1, 0, 4096));
  }

  @Test
  void aConfigOverOneMebibyteIsRefused() {
    StorageException e = assertThrows(StorageException.class, () -> old.writeConfig(new byte[(1 << 20) + 1]));
    assertEquals(Problem.OVERSIZED, e.problem());
    assertEquals("vms/web-1/vm.conf: a VM config of 1048577 bytes is over the limit of 1048576 bytes", e.getMessage());
    old.writeConfig(new byte[1 << 20]);
    assertEquals(1 << 20, vm.readConfig().length);
  }

  @Test
  void writesSurviveReopening() {
    old.close();
    VmDirectory again = Datastore.open(root).vm("web-1");
    assertArrayEquals(configA, again.readConfig());
    assertArrayEquals(blockA, readDisk(0, blockA.length));
    assertThrows(IllegalStateException.class, () -> old.writeConfig(configA));
  }

  private byte[] readDisk(long offset, int length) {
    return readDisk(0, offset, length);
  }

  private byte[] readDisk(int disk, long offset, int length) {
    ByteBuffer into = ByteBuffer.allocate(length);
    vm.readDisk(disk, offset, into);
    assertTrue(!into.hasRemaining());
    return into.array();
  }

  private static byte[] filled(int length, byte value) {
    byte[] bytes = new byte[length];
    Arrays.fill(bytes, value);
    return bytes;
  }
}
