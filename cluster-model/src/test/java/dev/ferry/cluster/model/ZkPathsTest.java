package dev.ferry.cluster.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.common.InvalidConfigException;
import dev.ferry.common.MigrationIds;
import java.util.List;
import org.junit.jupiter.api.Test;

/** No ZooKeeper path is built from an id that is not a migration id. */
class ZkPathsTest {
  @Test
  void migrationIdsAre128RandomBitsAndBuildPaths() {
    String id = MigrationIds.random();
    assertTrue(id.matches("m-[0-9a-f]{32}"), id);
    assertNotEquals(id, MigrationIds.random());
    assertEquals("/ferry/migrations/" + id, ZkPaths.migration(id));
    assertEquals("/ferry/migrations/m-0a1b2c3d", ZkPaths.migration("m-0a1b2c3d"), "ids of older records still work");
  }

  @Test
  void eventPathsSortAsTheirSeqsDo() {
    assertEquals("/ferry/events/0000000000000000009", ZkPaths.event(9));
    assertTrue(ZkPaths.event(9).compareTo(ZkPaths.event(10)) < 0);
    assertEquals("/ferry/events/" + Long.MAX_VALUE, ZkPaths.event(Long.MAX_VALUE));
  }

  @Test
  void badIdsBuildNoPath() {
    for (String id : List.of("", "..", "m\u0000x", "m-1\n", "m-0A1B2C3D", "m-0a1b2c3d/../../hosts", "m-" + "0".repeat(31))) {
      InvalidConfigException e = assertThrows(InvalidConfigException.class, () -> ZkPaths.migration(id));
      assertEquals("migration id", e.field());
      assertTrue(!e.getMessage().contains("\n") && !e.getMessage().contains("\u0000"), "quoted escaped: " + e.getMessage());
    }
  }
}
