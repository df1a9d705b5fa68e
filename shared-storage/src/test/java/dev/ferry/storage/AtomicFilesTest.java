package dev.ferry.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

/** Whole-file replacement and the temporary files it may leave (kill -9 is in {@link CrashSafetyTest}). */
class AtomicFilesTest {
  @TempDir
  Path dir;

  @Test
  void writeCreatesAndReplacesLeavingNoTemporaryFile() throws IOException {
    Path target = dir.resolve("f");
    AtomicFiles.write(target, "one".getBytes());
    AtomicFiles.write(target, "two, longer".getBytes());
    assertArrayEquals("two, longer".getBytes(), Files.readAllBytes(target));
    assertEquals(List.of("f"), names());
  }

  @Test
  void anUncommittedStagedFileIsDiscarded() throws IOException {
    Path target = dir.resolve("f");
    AtomicFiles.write(target, "old".getBytes());
    try (AtomicFiles.Staged staged = AtomicFiles.stage(target)) {
      staged.channel().write(ByteBuffer.wrap("new".getBytes()));
      assertEquals(2, names().size());
    }
    assertArrayEquals("old".getBytes(), Files.readAllBytes(target));
    assertEquals(List.of("f"), names());
  }

  @Test
  void onlyStaleTemporaryFilesAreRemoved() throws IOException {
    Path stale = Files.write(dir.resolve(".vm.conf.1234.tmp"), new byte[10]);
    Path fresh = Files.write(dir.resolve(".vm.conf.5678.tmp"), new byte[10]);
    Path other = Files.write(dir.resolve("vm.conf.tmp"), new byte[10]);
    Files.setLastModifiedTime(stale, FileTime.from(Instant.now().minus(Duration.ofHours(1))));
    Files.setLastModifiedTime(other, FileTime.from(Instant.now().minus(Duration.ofHours(1))));
    assertEquals(1, AtomicFiles.removeStaleTemps(dir, AtomicFiles.STALE_TEMP_AGE));
    assertFalse(Files.exists(stale));
    assertTrue(Files.exists(fresh));
    assertTrue(Files.exists(other), "not one of ours: no leading dot");
  }

  @Test
  void readingAConfigIgnoresAndCleansUpAStaleTemporaryFile() throws IOException {
    VmDirectory vm = Datastore.open(dir).create("web-1");
    vm.lease().acquire("h1", 1);
    try (LeasedWriter writer = vm.openWriter("h1", 1)) {
      writer.writeConfig(Patterns.config(5));
    }
    Path torn = Files.write(vm.path().resolve(".vm.conf.dead.tmp"), new byte[] {'F', 'C'});
    assertEquals(5, Patterns.configVersion(vm.readConfig()));
    assertTrue(Files.exists(torn), "a young temporary file may belong to a live writer");
    Files.setLastModifiedTime(torn, FileTime.from(Instant.now().minus(Duration.ofHours(1))));
    assertEquals(5, Patterns.configVersion(vm.readConfig()));
    assertFalse(Files.exists(torn));
  }

  private List<String> names() throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }
}
