package dev.ferry.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ferry.storage.StorageException.Problem;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Memory checkpoints: streamed out and back byte for byte, replaced only when complete. */
class CheckpointTest {
  @TempDir
  Path root;
  private VmDirectory vm;
  private LeasedWriter writer;

  @BeforeEach
  void setUp() {
    vm = Datastore.open(root).create("web-1");
    vm.lease().acquire("h1", 1);
    writer = vm.openWriter("h1", 1);
  }

  @AfterEach
  void tearDown() {
    writer.close();
  }

  @Test
  void sixtyFourMebibytesComeBackIdentical() {
    long memoryBytes = 64L << 20;
    Patterns.writeCheckpoint(writer, "mem", 7, memoryBytes, CheckpointHeader.CHUNK_BYTES_DEFAULT);
    assertEquals(7, Patterns.verifyCheckpoint(vm, "mem"));
    try (CheckpointReader reader = vm.openCheckpoint("mem")) {
      CheckpointHeader header = reader.header();
      assertEquals("web-1", header.vmName());
      assertEquals(memoryBytes, header.memoryBytes());
      assertEquals(4096, header.pageBytes());
      assertEquals(64, header.chunkCount());
      assertArrayEquals(Patterns.machineState(7), reader.verify());
    }
    long expectedBytes = header().trailerOffset() + 12 + Patterns.machineState(7).length + 4;
    assertEquals(expectedBytes, vm.checkpointPath("mem").toFile().length());
  }

  @Test
  void aShortLastChunkAndAnySplitOfTheInput() {
    long memoryBytes = (1 << 20) + 3 * 4096;
    ByteBuffer memory = ByteBuffer.allocateDirect((int) memoryBytes);
    Patterns.fill(memory, 3, 0);
    try (CheckpointWriter checkpoint = writer.beginCheckpoint("odd", memoryBytes, 4096, 64 << 10)) {
      // Pieces that straddle chunks and pages.
      int[] pieces = {1, 4095, 70_000, 8, 500_000};
      for (int piece : pieces) {
        checkpoint.writeMemory(memory.slice(memory.position(), piece));
        memory.position(memory.position() + piece);
      }
      checkpoint.writeMemory(memory);
      checkpoint.finish(Patterns.machineState(3));
    }
    assertEquals(3, Patterns.verifyCheckpoint(vm, "odd"));
    try (CheckpointReader reader = vm.openCheckpoint("odd")) {
      assertEquals(17, reader.header().chunkCount());
    }
  }

  @Test
  void anAbandonedCheckpointLeavesThePreviousOne() throws Exception {
    Patterns.writeCheckpoint(writer, "mem", 1, 2 << 20, 64 << 10);
    try (CheckpointWriter next = writer.beginCheckpoint("mem", 2 << 20, 4096, 64 << 10)) {
      ByteBuffer half = ByteBuffer.allocateDirect(1 << 20);
      Patterns.fill(half, 2, 0);
      next.writeMemory(half);
    }
    assertEquals(1, Patterns.verifyCheckpoint(vm, "mem"));
    try (Stream<Path> files = Files.list(vm.path().resolve(VmDirectory.CHECKPOINT_DIR))) {
      assertEquals(List.of("mem.ckpt"), files.map(p -> p.getFileName().toString()).toList());
    }
    Patterns.writeCheckpoint(writer, "mem", 2, 2 << 20, 64 << 10);
    assertEquals(2, Patterns.verifyCheckpoint(vm, "mem"));
  }

  @Test
  void theMemoryWrittenMustMatchTheHeader() {
    try (CheckpointWriter checkpoint = writer.beginCheckpoint("mem", 1 << 20, 4096)) {
      checkpoint.writeMemory(ByteBuffer.allocate(4096));
      StorageException early = assertThrows(StorageException.class, () -> checkpoint.finish(new byte[0]));
      assertEquals("vms/web-1/checkpoint/mem.ckpt: only 4096 of 1048576 bytes of memory were written", early.getMessage());
      StorageException over = assertThrows(StorageException.class, () -> checkpoint.writeMemory(ByteBuffer.allocate(1 << 20)));
      assertEquals(Problem.OUT_OF_BOUNDS, over.problem());
      checkpoint.writeMemory(ByteBuffer.allocate((1 << 20) - 4096));
      StorageException state = assertThrows(StorageException.class,
          () -> checkpoint.finish(new byte[CheckpointHeader.MACHINE_STATE_BYTES_MAX + 1]));
      assertEquals(Problem.OVERSIZED, state.problem());
    }
    assertEquals(List.of(), vm.checkpoints());
  }

  @Test
  void impossibleGeometriesAreRefused() {
    assertEquals("vms/web-1/checkpoint/mem.ckpt: page bytes 1000 is not a power of two from 4096 to 2097152",
        assertThrows(StorageException.class, () -> writer.beginCheckpoint("mem", 1 << 20, 1000)).getMessage());
    assertEquals(Problem.OUT_OF_BOUNDS,
        assertThrows(StorageException.class, () -> writer.beginCheckpoint("mem", 4097, 4096)).problem());
    assertEquals(Problem.OUT_OF_BOUNDS,
        assertThrows(StorageException.class, () -> writer.beginCheckpoint("mem", 0, 4096)).problem());
    assertEquals(Problem.INVALID_NAME,
        assertThrows(StorageException.class, () -> writer.beginCheckpoint("../mem", 4096, 4096)).problem());
    assertEquals(Problem.NOT_FOUND, assertThrows(StorageException.class, () -> vm.openCheckpoint("none")).problem());
  }

  @Test
  void checkpointsAreListedByName() {
    Patterns.writeCheckpoint(writer, "b", 1, 64 << 10, 64 << 10);
    Patterns.writeCheckpoint(writer, "a", 1, 64 << 10, 64 << 10);
    assertEquals(List.of("a", "b"), vm.checkpoints());
  }

  /** The heap-budget proof: a child JVM with a 16 MiB heap writes and reads back 64 MiB. */
  @Test
  void aCheckpointFourTimesTheHeapStreamsThrough() throws Exception {
    try (ChildJvm child = ChildJvm.start(CheckpointHeapMain.class, root,
        List.of("-Xmx16m", "-XX:MaxDirectMemorySize=16m"), root.toString(), Long.toString(64L << 20))) {
      assertEquals("ok 42", child.nextLine());
      assertEquals(0, child.awaitExit(), child.stderrText());
    }
  }

  private static CheckpointHeader header() {
    return new CheckpointHeader("web-1", 64L << 20, 4096, 1 << 20, 0);
  }
}
