package dev.ferry.storage;

import java.nio.file.Path;

/**
 * A child process for {@link CheckpointTest}: writes and reads back a checkpoint far larger than
 * its heap (run with {@code -Xmx16m}), checking every byte; prints "ok VERSION". Holding the
 * memory anywhere would fail with an OutOfMemoryError.
 *
 * <p>Arguments: datastore root, memory bytes.
 */
public final class CheckpointHeapMain {
  private CheckpointHeapMain() {}

  public static void main(String[] args) {
    long memoryBytes = Long.parseLong(args[1]);
    VmDirectory vm = Datastore.open(Path.of(args[0])).create("big");
    vm.lease().acquire("h1", 1);
    try (LeasedWriter writer = vm.openWriter("h1", 1)) {
      Patterns.writeCheckpoint(writer, "mem", 42, memoryBytes, CheckpointHeader.CHUNK_BYTES_DEFAULT);
    }
    System.out.println("ok " + Patterns.verifyCheckpoint(vm, "mem"));
  }
}
