package dev.ferry.storage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ferry.storage.StorageException.Problem;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The lease file's payload as written, and forged payloads the decoder must refuse rather than
 * trust: a negative epoch, bytes after the last field.
 */
class LeaseFileTest {
  @TempDir
  Path root;
  private final TestClock clock = new TestClock(1_700_000_000_000L);
  private VmDirectory vm;
  private Path file;

  @BeforeEach
  void setUp() {
    vm = Datastore.open(root, clock).create("web-1");
    file = vm.path().resolve(VmDirectory.LEASE_FILE);
  }

  private static byte[] payload(String host, long epoch, long heartbeat, int extraBytes) {
    byte[] name = host.getBytes(StandardCharsets.US_ASCII);
    return ByteBuffer.allocate(1 + name.length + 16 + extraBytes)
        .put((byte) name.length).put(name).putLong(epoch).putLong(heartbeat).array();
  }

  private void forge(byte[] payload) throws IOException {
    ByteBuffer bytes = Envelope.encode(FileKind.LEASE.magic, 1, payload);
    Files.write(file, Arrays.copyOf(bytes.array(), bytes.remaining()));
  }

  private StorageException corrupt() {
    StorageException e = assertThrows(StorageException.class, () -> vm.lease().read());
    assertEquals(Problem.CORRUPT, e.problem(), e.getMessage());
    return e;
  }

  @Test
  void theLeaseIsWrittenAsHostEpochAndHeartbeat() {
    vm.lease().acquire("h1", 7);
    byte[] stored = Envelope.readFile(file, "lease", FileKind.LEASE);
    assertEquals(ByteBuffer.wrap(payload("h1", 7, clock.millis(), 0)), ByteBuffer.wrap(stored));
  }

  @Test
  void aForgedLeaseReadsBackWithItsHeartbeatAge() throws IOException {
    forge(payload("h2", 9, clock.millis() - 250, 0));
    assertEquals(new LeaseStatus("h2", 9, clock.millis() - 250, 250), vm.lease().read().orElseThrow());
    forge(payload("h2", 9, clock.millis() + 5_000, 0));
    assertEquals(0, vm.lease().read().orElseThrow().heartbeatAgeMillis(), "a clock ahead of ours is no negative age");
  }

  @Test
  void aNegativeEpochIsCorrupt() throws IOException {
    forge(payload("h1", -1, clock.millis(), 0));
    assertEquals("vms/web-1/lease: field epoch is negative (-1)", corrupt().getMessage());
    forge(payload("h1", 0, clock.millis(), 0));
    assertEquals(0, vm.lease().read().orElseThrow().epoch(), "epoch 0 is a real epoch");
  }

  @Test
  void bytesAfterTheLastFieldAreCorrupt() throws IOException {
    forge(payload("h1", 3, clock.millis(), 1));
    assertEquals("vms/web-1/lease: 1 unexpected bytes after the last field", corrupt().getMessage());
  }

  @Test
  void aMissingFieldIsCorrupt() throws IOException {
    byte[] full = payload("h1", 3, clock.millis(), 0);
    forge(Arrays.copyOf(full, full.length - 1));
    assertEquals("vms/web-1/lease: field heartbeat is missing", corrupt().getMessage());
    forge(Arrays.copyOf(full, 3 + 7));
    assertEquals("vms/web-1/lease: field epoch is missing", corrupt().getMessage());
  }

  @Test
  void theLeaseNamesItsFileRelativeToTheDatastore() {
    assertEquals("vms/web-1/lease", vm.lease().file());
  }

  @Test
  void refusalsSayWhyTheEpochLoses() {
    vm.lease().acquire("h1", 5);
    assertEquals("vms/web-1/lease: held by h1 at epoch 5 (heartbeat 0 ms ago); h2 has the same epoch and only a newer "
        + "epoch can take the lease", assertThrows(LeaseException.class, () -> vm.lease().acquire("h2", 5)).getMessage());
    assertEquals("vms/web-1/lease: held by h1 at epoch 5 (heartbeat 0 ms ago); h2's epoch 4 is older, so it cannot "
        + "take the lease", assertThrows(LeaseException.class, () -> vm.lease().acquire("h2", 4)).getMessage());
  }

  @Test
  void aNegativeEpochIsRefusedBeforeAnythingIsWritten() {
    for (Runnable op : new Runnable[] {
        () -> vm.lease().acquire("h1", -1), () -> vm.lease().renew("h1", -1), () -> vm.lease().check("h1", -1)}) {
      StorageException e = assertThrows(StorageException.class, op::run);
      assertEquals(Problem.OUT_OF_BOUNDS, e.problem());
      assertEquals("epoch -1 is negative", e.getMessage());
    }
    assertEquals(false, Files.exists(file));
    vm.lease().acquire("h1", 0);
    vm.lease().check("h1", 0);
  }
}
