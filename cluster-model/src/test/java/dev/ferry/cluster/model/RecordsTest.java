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

  @Test
  void aHostRecordsLoadFiguresAreBoundedFiniteAndNamed() {
    String path = "/ferry/hosts/h1";
    dev.ferry.proto.HostRecord good = dev.ferry.proto.HostRecord.newBuilder().setFormatVersion(Records.FORMAT)
        .setHostId("h1").setLoad(1.5).addVmUsage(usage("web-1", 0.5, 1 << 20)).build();
    assertEquals(good, Records.host(path, Records.bytes(good)));
    java.util.Map<String, dev.ferry.proto.HostRecord> bad = new java.util.LinkedHashMap<>();
    bad.put("load", good.toBuilder().setLoad(Double.NaN).build());
    bad.put("load ", good.toBuilder().setLoad(-1).build());
    bad.put("vm_usage[0].cpu_cores", good.toBuilder().setVmUsage(0, usage("web-1", Double.POSITIVE_INFINITY, 0)).build());
    bad.put("vm_usage[0].vm", good.toBuilder().setVmUsage(0, usage("../x", 0.1, 0)).build());
    bad.put("vm_usage[0].dirty_rate_bytes_per_s", good.toBuilder().setVmUsage(0, usage("web-1", 0.1, -5)).build());
    dev.ferry.proto.HostRecord.Builder many = good.toBuilder().clearVmUsage();
    for (int i = 0; i <= Records.VM_USAGE_MAX; i++) {
      many.addVmUsage(usage("v" + i, 0, 0));
    }
    bad.put("vm_usage has", many.build());
    bad.forEach((field, record) -> {
      RecordException e = assertThrows(RecordException.class, () -> Records.host(path, record.toByteArray()), field);
      assertTrue(e.getMessage().contains(path) && e.getMessage().contains(field.trim()), e.getMessage());
    });
  }

  private static dev.ferry.proto.VmUsage usage(String vm, double cores, long dirty) {
    return dev.ferry.proto.VmUsage.newBuilder().setVm(vm).setCpuCores(cores).setDirtyRateBytesPerS(dirty).build();
  }
}
