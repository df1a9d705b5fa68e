package dev.ferry.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * kill -9 for real: a child JVM ({@link CrashWriterMain}) rewrites the config or the checkpoint in
 * a loop and is killed after a seeded random delay. Each time, the file must load, checksums and
 * every byte intact, and hold either the last version the child reported committed or the one it
 * was writing (renamed into place, not yet reported). Stray temporary files are then ignored and
 * cleaned up.
 *
 * <p>This covers the process dying at any instruction; the page cache survives it, so a power cut
 * (what the forces guard against) is not simulated here.
 */
class CrashSafetyTest {
  private static final int ROUNDS = Integer.getInteger("ferry.storage.crashRounds", 4);

  @TempDir
  Path root;

  @Test
  void killedWhileRewritingTheConfigLeavesTheOldOrTheNewOne() throws Exception {
    long seed = Seeds.seed("killedWhileRewritingTheConfigLeavesTheOldOrTheNewOne");
    VmDirectory vm = setUp();
    try (LeasedWriter writer = vm.openWriter(CrashWriterMain.HOST, CrashWriterMain.EPOCH)) {
      writer.writeConfig(Patterns.config(1));
    }
    Random random = new Random(seed);
    for (int round = 1; round <= ROUNDS; round++) {
      long committed = killMidWrite("config", TimeUnit.MILLISECONDS.toNanos(random.nextInt(60)));
      String context = Seeds.replay(seed) + ", round " + round + ", last committed " + committed;
      byte[] config = vm.readConfig();
      long version = Patterns.configVersion(config);
      assertTrue(version == committed || version == committed + 1, context + ": found version " + version);
      assertArrayEquals(Patterns.config(version), config, context);
      report(round, committed, version, vm.path());
    }
    assertStrayTempsAreCleaned(vm, vm.path(), () -> vm.readConfig());
  }

  @Test
  void killedWhileWritingACheckpointLeavesTheOldOrTheNewOne() throws Exception {
    long seed = Seeds.seed("killedWhileWritingACheckpointLeavesTheOldOrTheNewOne");
    VmDirectory vm = setUp();
    try (LeasedWriter writer = vm.openWriter(CrashWriterMain.HOST, CrashWriterMain.EPOCH)) {
      Patterns.writeCheckpoint(writer, CrashWriterMain.CHECKPOINT, 1, CrashWriterMain.CHECKPOINT_MEMORY_BYTES,
          CrashWriterMain.CHECKPOINT_CHUNK_BYTES);
    }
    Random random = new Random(seed);
    for (int round = 1; round <= ROUNDS; round++) {
      long committed = killMidWrite("checkpoint", TimeUnit.MILLISECONDS.toNanos(random.nextInt(150)));
      String context = Seeds.replay(seed) + ", round " + round + ", last committed " + committed;
      long version;
      try {
        version = Patterns.verifyCheckpoint(vm, CrashWriterMain.CHECKPOINT);
      } catch (RuntimeException | AssertionError e) {
        throw new AssertionError(context + ": " + e, e);
      }
      assertTrue(version == committed || version == committed + 1, context + ": found version " + version);
      report(round, committed, version, vm.path().resolve(VmDirectory.CHECKPOINT_DIR));
    }
    Path dir = vm.path().resolve(VmDirectory.CHECKPOINT_DIR);
    assertStrayTempsAreCleaned(vm, dir, () -> Patterns.verifyCheckpoint(vm, CrashWriterMain.CHECKPOINT));
  }

  private VmDirectory setUp() {
    VmDirectory vm = Datastore.open(root).create(CrashWriterMain.VM);
    vm.lease().acquire(CrashWriterMain.HOST, CrashWriterMain.EPOCH);
    return vm;
  }

  /**
   * Starts the writer, waits for its first commit (so the kill lands in the loop, not in start-up),
   * waits {@code delayNanos} more and kills it; returns the last version it reported committed.
   */
  private long killMidWrite(String mode, long delayNanos) throws Exception {
    try (ChildJvm child = ChildJvm.startToFile(CrashWriterMain.class, root, List.of("-Xmx64m"), root.toString(), mode)) {
      child.awaitOutput("committed ");
      LockSupport.parkNanos(delayNanos);
      child.kill();
      List<String> lines = child.output();
      String last = lines.get(lines.size() - 1);
      if (!last.startsWith("committed ")) {
        throw new AssertionError("unexpected line from the writer: " + last + "\n" + child.stderrText());
      }
      return Long.parseLong(last.substring("committed ".length()));
    }
  }

  private static void report(int round, long committed, long found, Path dir) throws IOException {
    System.out.println("round " + round + ": last committed " + committed + ", found " + found + ", "
        + temps(dir).size() + " temporary files left by the killed writer");
  }

  private static void assertStrayTempsAreCleaned(VmDirectory vm, Path dir, Runnable read) throws IOException {
    for (Path temp : temps(dir)) {
      Files.setLastModifiedTime(temp, FileTime.from(Instant.now().minus(Duration.ofHours(1))));
    }
    read.run();
    assertTrue(temps(dir).isEmpty(), "stale temporary files are removed on read: " + temps(dir));
  }

  private static List<Path> temps(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.filter(AtomicFiles::isTemp).toList();
    }
  }
}
