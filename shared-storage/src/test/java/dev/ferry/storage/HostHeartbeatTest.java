package dev.ferry.storage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HostHeartbeatTest {
  @TempDir
  Path root;

  @Test
  void aHeartbeatIsReadBackAndReplacedByTheNextOne() {
    HostHeartbeat beats = Datastore.open(root).heartbeats();
    assertTrue(beats.read("host-a").isEmpty(), "no heartbeat before the first write");
    beats.write("host-a", 1, 1000);
    beats.write("host-a", 2, 3000);
    assertEquals(new HostHeartbeat.Beat("host-a", 2, 3000), beats.read("host-a").orElseThrow());
    assertTrue(beats.read("host-b").isEmpty(), "each host has its own file");
  }

  @Test
  void aDamagedHeartbeatFailsNamingItsFile() throws Exception {
    HostHeartbeat beats = Datastore.open(root).heartbeats();
    beats.write("host-a", 1, 1000);
    Path file = root.resolve("hosts/host-a.heartbeat");
    byte[] bytes = Files.readAllBytes(file);
    bytes[bytes.length - 1] ^= 1;
    Files.write(file, bytes);
    StorageException e = assertThrows(StorageException.class, () -> beats.read("host-a"));
    assertTrue(e.getMessage().contains("hosts/host-a.heartbeat"), e.getMessage());
  }
}
