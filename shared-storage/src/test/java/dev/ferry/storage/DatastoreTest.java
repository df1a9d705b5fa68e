package dev.ferry.storage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.storage.StorageException.Problem;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The directory layout and {@code ferry datastore ls}. */
class DatastoreTest {
  @TempDir
  Path root;
  private final TestClock clock = new TestClock(1_700_000_000_000L);

  @Test
  void aVmsFilesLiveInItsDirectory() throws IOException {
    VmDirectory vm = Datastore.open(root, clock).create("web-1");
    vm.lease().acquire("h1", 3);
    try (LeasedWriter writer = vm.openWriter("h1", 3)) {
      writer.writeConfig("cfg".getBytes());
      writer.createDisk(0, 1 << 20);
      Patterns.writeCheckpoint(writer, "mem", 1, 64 << 10, 64 << 10);
    }
    assertEquals(List.of("vms/web-1/checkpoint/mem.ckpt", "vms/web-1/disk-0.img", "vms/web-1/lease",
        "vms/web-1/lease.lock", "vms/web-1/vm.conf"), files());
    assertTrue(vm.hasConfig());
  }

  @Test
  void vmsAreCreatedOnceAndFoundByValidNamesOnly() {
    Datastore datastore = Datastore.open(root, clock);
    datastore.create("web-1");
    assertEquals("vms/web-1: exists already",
        assertThrows(StorageException.class, () -> datastore.create("web-1")).getMessage());
    assertEquals("vms/web-2: no such VM on this datastore",
        assertThrows(StorageException.class, () -> datastore.vm("web-2")).getMessage());
    assertEquals(Problem.INVALID_NAME, assertThrows(StorageException.class, () -> datastore.create("../web-1")).problem());
    assertEquals(Problem.INVALID_NAME, assertThrows(StorageException.class, () -> datastore.vm("..")).problem());
    assertTrue(datastore.contains("web-1"));
    assertEquals(Problem.NOT_FOUND,
        assertThrows(StorageException.class, () -> Datastore.open(root.resolve("missing"))).problem());
  }

  @Test
  void listShowsEachVmsSizeLeaseAndHeartbeatAge() throws IOException {
    Datastore datastore = Datastore.open(root, clock);
    VmDirectory web = datastore.create("web-1");
    web.lease().acquire("h1", 4);
    try (LeasedWriter writer = web.openWriter("h1", 4)) {
      writer.writeConfig(new byte[1000]);
      writer.createDisk(0, 1 << 20);
    }
    datastore.create("db-1");
    Files.createDirectory(root.resolve("vms/.junk"));
    Files.write(root.resolve("vms/stray-file"), new byte[1]);
    clock.advanceMillis(2500);

    List<VmSummary> list = datastore.list();
    assertEquals(List.of("db-1", "web-1"), list.stream().map(VmSummary::name).toList());
    VmSummary db = list.get(0);
    assertEquals(0, db.sizeBytes());
    assertTrue(db.lease().isEmpty() && db.leaseProblem().isEmpty());
    VmSummary summary = list.get(1);
    assertEquals(new LeaseStatus("h1", 4, clock.millis() - 2500, 2500), summary.lease().orElseThrow());
    long expected = Files.size(web.configPath()) + Files.size(web.diskPath(0))
        + Files.size(web.path().resolve(VmDirectory.LEASE_FILE));
    assertEquals(expected, summary.sizeBytes());
    assertTrue(summary.sizeBytes() > (1 << 20));
  }

  private List<String> files() throws IOException {
    try (Stream<Path> walk = Files.walk(root)) {
      return walk.filter(Files::isRegularFile).map(p -> root.relativize(p).toString()).sorted().toList();
    }
  }
}
