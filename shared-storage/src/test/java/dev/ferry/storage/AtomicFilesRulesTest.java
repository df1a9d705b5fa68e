package dev.ferry.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.storage.StorageException.Problem;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What {@link AtomicFiles} promises besides the happy path: one commit, clean-up on failure, bounded scans. */
class AtomicFilesRulesTest {
  @TempDir
  Path dir;

  private List<String> names() throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void aStagedFileIsCommittedOnce() throws IOException {
    Path target = dir.resolve("f");
    AtomicFiles.Staged staged = AtomicFiles.stage(target);
    staged.channel().write(ByteBuffer.wrap("one".getBytes()));
    staged.force();
    staged.commit();
    IllegalStateException again = assertThrows(IllegalStateException.class, staged::commit);
    assertEquals(target + ": already committed or abandoned", again.getMessage());
    staged.close();
    assertArrayEquals("one".getBytes(), Files.readAllBytes(target), "closing after the commit keeps it");
    assertEquals(List.of("f"), names());
  }

  @Test
  void anAbandonedStagedFileCannotBeCommittedLater() throws IOException {
    Path target = dir.resolve("f");
    AtomicFiles.Staged staged = AtomicFiles.stage(target);
    staged.close();
    assertThrows(IllegalStateException.class, staged::commit);
    assertFalse(Files.exists(target));
    assertEquals(List.of(), names());
    staged.close();
  }

  @Test
  void aStagedFileIsATemporaryNameNextToTheTarget() throws IOException {
    try (AtomicFiles.Staged staged = AtomicFiles.stage(dir.resolve("vm.conf"))) {
      List<String> names = names();
      assertEquals(1, names.size());
      assertTrue(names.get(0).matches("\\.vm\\.conf\\.[0-9a-f]+\\.tmp"), names.get(0));
      assertTrue(AtomicFiles.isTemp(dir.resolve(names.get(0))));
    }
    assertFalse(AtomicFiles.isTemp(dir.resolve("vm.conf")));
    assertFalse(AtomicFiles.isTemp(dir.resolve(".vm.conf")));
    assertFalse(AtomicFiles.isTemp(dir.resolve("vm.conf.tmp")));
  }

  /** A rename that fails (here: the target is a directory with something in it) leaves no temporary file. */
  @Test
  void aFailedRenameRemovesTheTemporaryFile() throws IOException {
    Path target = Files.createDirectory(dir.resolve("f"));
    Files.write(target.resolve("inside"), new byte[1]);
    StorageException e = assertThrows(StorageException.class, () -> AtomicFiles.write(target, "new".getBytes()));
    assertEquals(Problem.IO, e.problem());
    assertTrue(e.getMessage().startsWith(target + ": cannot be replaced: "), e.getMessage());
    assertEquals(List.of("f"), names());
    assertTrue(Files.isDirectory(target), "the target is untouched");
  }

  @Test
  void aTargetInAMissingDirectoryCannotBeStaged() {
    StorageException e = assertThrows(StorageException.class, () -> AtomicFiles.stage(dir.resolve("none/f")));
    assertEquals(Problem.IO, e.problem());
    assertTrue(e.getMessage().contains("cannot create a temporary file next to it"), e.getMessage());
  }

  /** One pass examines a bounded number of temporary files; the next pass goes on with the rest. */
  @Test
  void oneCleanUpPassExaminesABoundedNumberOfEntries() throws IOException {
    for (int i = 0; i < 6; i++) {
      Path stale = Files.write(dir.resolve(".f." + i + ".tmp"), new byte[1]);
      Files.setLastModifiedTime(stale, FileTime.from(Instant.now().minus(Duration.ofHours(1))));
    }
    long cutoff = Instant.now().minus(AtomicFiles.STALE_TEMP_AGE).toEpochMilli();
    assertEquals(4, AtomicFiles.removeStaleTemps(dir, cutoff, 4));
    assertEquals(2, names().size());
    assertEquals(2, AtomicFiles.removeStaleTemps(dir, cutoff, 4));
    assertEquals(List.of(), names());
  }

  @Test
  void cleaningUpAMissingDirectoryRemovesNothing() {
    assertEquals(0, AtomicFiles.removeStaleTemps(dir.resolve("none"), AtomicFiles.STALE_TEMP_AGE));
  }

  /** Stale means modified before the cutoff; a file modified at the cutoff itself may still be written to. */
  @Test
  void aTemporaryFileIsStaleOnlyBeforeTheCutoff() throws IOException {
    long cutoff = 1_700_000_000_000L;
    Path atCutoff = Files.write(dir.resolve(".f.1.tmp"), new byte[1]);
    Files.setLastModifiedTime(atCutoff, FileTime.fromMillis(cutoff));
    Path before = Files.write(dir.resolve(".f.2.tmp"), new byte[1]);
    Files.setLastModifiedTime(before, FileTime.fromMillis(cutoff - 1));
    assertEquals(1, AtomicFiles.removeStaleTemps(dir, cutoff, 100));
    assertEquals(List.of(".f.1.tmp"), names());
  }

  /** Temporary names are random: a taken one is retried with another, a few times. */
  @Test
  void aTakenTemporaryNameIsRetriedWithAnother() throws IOException {
    Path target = dir.resolve("f");
    Files.write(dir.resolve(".f.1.tmp"), new byte[1]);
    long[] names = {1, 1, 1, 2};
    int[] next = {0};
    try (AtomicFiles.Staged staged = AtomicFiles.stage(target, "f", () -> names[next[0]++])) {
      assertEquals(List.of(".f.1.tmp", ".f.2.tmp"), names());
    }
    next[0] = 0;
    long[] taken = {1, 1, 1, 1, 2};
    StorageException e = assertThrows(StorageException.class,
        () -> AtomicFiles.stage(target, "f", () -> taken[next[0]++]));
    assertEquals(Problem.IO, e.problem());
    assertEquals("f: cannot create a temporary file next to it", e.getMessage());
    assertEquals(4, next[0], "four attempts, then it gives up");
  }

  @Test
  void twoWritersOfOneFileStageSeparately() throws IOException {
    Path target = dir.resolve("f");
    try (AtomicFiles.Staged first = AtomicFiles.stage(target); AtomicFiles.Staged second = AtomicFiles.stage(target)) {
      first.channel().write(ByteBuffer.wrap("first".getBytes()));
      second.channel().write(ByteBuffer.wrap("second".getBytes()));
      assertEquals(2, names().size());
      second.commit();
      first.commit();
    }
    assertArrayEquals("first".getBytes(), Files.readAllBytes(target), "the last commit wins, whole");
    assertEquals(List.of("f"), names());
  }

  @Test
  void aTemporaryFileYoungerThanTheLimitIsKept() throws IOException {
    Path young = Files.write(dir.resolve(".f.1.tmp"), new byte[1]);
    Files.setLastModifiedTime(young, FileTime.from(Instant.now().plus(Duration.ofMinutes(1))));
    assertEquals(0, AtomicFiles.removeStaleTemps(dir, Duration.ZERO), "a file from the future is not stale");
    assertTrue(Files.exists(young));
  }

  @Test
  void directoriesAreCreatedOnceAndNeedTheirParent() {
    Path child = dir.resolve("child");
    AtomicFiles.createDirectory(child, "child");
    assertTrue(Files.isDirectory(child));
    assertEquals(Problem.ALREADY_EXISTS,
        assertThrows(StorageException.class, () -> AtomicFiles.createDirectory(child, "child")).problem());
    assertEquals(Problem.NOT_FOUND,
        assertThrows(StorageException.class, () -> AtomicFiles.createDirectory(dir.resolve("a/b"), "a/b")).problem());
  }
}
