package dev.ferry.cluster.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.VmRecord;
import org.junit.jupiter.api.Test;

/** Records from ZooKeeper are bounded, versioned and refused by name when they cannot be read. */
class RecordsTest {
  @Test
  void aRecordRoundTrips() {
    VmRecord vm = VmRecord.newBuilder().setFormatVersion(Records.FORMAT).setOwnerHost("h1").setEpoch(7).build();
    assertEquals(vm, Records.vm("/ferry/vms/web-1", Records.bytes(vm)));
  }

  @Test
  void aRecordFromANewerFerryIsRefusedNotMisread() {
    byte[] newer = VmRecord.newBuilder().setFormatVersion(Records.FORMAT + 1).setOwnerHost("h1").build().toByteArray();
    RecordException e = assertThrows(RecordException.class, () -> Records.vm("/ferry/vms/web-1", newer));
    assertTrue(e.getMessage().contains("/ferry/vms/web-1") && e.getMessage().contains("newer Ferry"), e.getMessage());
  }

  @Test
  void emptyUnversionedGarbledAndOversizedRecordsAreRefusedByPath() {
    String path = "/ferry/migrations/m-1";
    assertThrows(RecordException.class, () -> Records.migration(path, new byte[0]));
    assertThrows(RecordException.class, () -> Records.migration(path, null));
    byte[] unversioned = MigrationRecord.newBuilder().setId("m-1").build().toByteArray();
    assertTrue(assertThrows(RecordException.class, () -> Records.migration(path, unversioned)).getMessage()
        .contains("no format version"));
    byte[] garbled = {(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x01, 0x02};
    assertTrue(assertThrows(RecordException.class, () -> Records.migration(path, garbled)).getMessage().contains(path));
    byte[] huge = new byte[Records.RECORD_BYTES_MAX + 1];
    assertTrue(assertThrows(RecordException.class, () -> Records.migration(path, huge)).getMessage().contains(path));
  }
}
