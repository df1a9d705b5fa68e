package dev.ferry.cluster.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.ByteString;
import dev.ferry.proto.CoordinatorEpoch;
import dev.ferry.proto.HostInventory;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.VmRecord;
import org.junit.jupiter.api.Test;

/** Every kind of record reads back as written, and the size bound holds at exactly its limit. */
class RecordKindsTest {
  @Test
  void everyKindOfRecordRoundTrips() {
    HostRecord host = HostRecord.newBuilder().setFormatVersion(Records.FORMAT).setHostId("h1").setCpuCores(8).build();
    assertEquals(host, Records.host("/ferry/hosts/h1", Records.bytes(host)));
    HostInventory inventory = HostInventory.newBuilder().setFormatVersion(Records.FORMAT).setHostId("h1").setUp(true).build();
    assertEquals(inventory, Records.inventory("/ferry/inventory/h1", Records.bytes(inventory)));
    MigrationRecord migration = MigrationRecord.newBuilder().setFormatVersion(Records.FORMAT).setId("m-1").setVm("web-1")
        .build();
    assertEquals(migration, Records.migration("/ferry/migrations/m-1", Records.bytes(migration)));
    CoordinatorEpoch epoch = CoordinatorEpoch.newBuilder().setFormatVersion(Records.FORMAT).setEpoch(4).build();
    assertEquals(epoch, Records.epoch("/ferry/coordinator/epoch", Records.bytes(epoch)));
    dev.ferry.proto.ClusterEvent event = dev.ferry.proto.ClusterEvent.newBuilder().setFormatVersion(Records.FORMAT)
        .setSeq(7).setKind(dev.ferry.proto.EventKind.EVENT_HOST_LOST).setHost("h1").setMessage("host h1 was lost").build();
    assertEquals(event, Records.event(ZkPaths.event(7), Records.bytes(event)));
    dev.ferry.proto.DrsConfig drs = dev.ferry.proto.DrsConfig.newBuilder().setFormatVersion(Records.FORMAT)
        .setMode(dev.ferry.proto.DrsMode.DRS_PARTIAL).setThreshold(4).setIntervalSeconds(30).build();
    assertEquals(drs, Records.drsConfig(ZkPaths.DRS_CONFIG, Records.bytes(drs)));
    dev.ferry.proto.PlacementRule rule = dev.ferry.proto.PlacementRule.newBuilder().setFormatVersion(Records.FORMAT)
        .setName("apart").setKind(dev.ferry.proto.RuleKind.RULE_ANTI_AFFINITY).addVms("web-1").addVms("web-2").build();
    assertEquals(rule, Records.rule(ZkPaths.rule("apart"), Records.bytes(rule)));
    HostInventory draining = inventory.toBuilder().setMaintenance(dev.ferry.proto.MaintenanceState.MAINTENANCE_ENTERING)
        .setMaintenanceSinceMs(5).addBlocked(dev.ferry.proto.MaintenanceBlock.newBuilder().setVm("db-1").setReason("must rule"))
        .build();
    assertEquals(draining, Records.inventory("/ferry/inventory/h1", Records.bytes(draining)));
    byte[] newer = rule.toBuilder().setFormatVersion(Records.FORMAT + 1).build().toByteArray();
    assertThrows(RecordException.class, () -> Records.rule(ZkPaths.rule("apart"), newer));
  }

  /** A VM record of exactly {@code bytes} bytes (its owner field padded). */
  private static VmRecord vmOf(int bytes) {
    VmRecord small = VmRecord.newBuilder().setFormatVersion(Records.FORMAT).setOwnerHost("").build();
    int owner = bytes - small.getSerializedSize() - 4; // tag (1) + length varint (3 bytes at this size)
    VmRecord record = VmRecord.newBuilder().setFormatVersion(Records.FORMAT)
        .setOwnerHostBytes(ByteString.copyFrom(new byte[owner])).build();
    assertEquals(bytes, record.getSerializedSize());
    return record;
  }

  @Test
  void aRecordOfExactlyTheBoundIsWrittenAndReadAndOneByteMoreIsNot() {
    VmRecord atBound = vmOf(Records.RECORD_BYTES_MAX);
    assertEquals(atBound, Records.vm("/ferry/vms/big", Records.bytes(atBound)));
    VmRecord over = vmOf(Records.RECORD_BYTES_MAX + 1);
    RecordException e = assertThrows(RecordException.class, () -> Records.bytes(over));
    assertEquals("record of 65537 bytes exceeds 65536", e.getMessage());
    assertEquals("record /ferry/vms/big is 65537 bytes, more than 65536",
        assertThrows(RecordException.class, () -> Records.vm("/ferry/vms/big", over.toByteArray())).getMessage());
  }

  @Test
  void theCurrentFormatIsReadAndTheNextIsNot() {
    byte[] current = VmRecord.newBuilder().setFormatVersion(Records.FORMAT).build().toByteArray();
    assertEquals(Records.FORMAT, Records.vm("/ferry/vms/a", current).getFormatVersion());
    byte[] next = VmRecord.newBuilder().setFormatVersion(Records.FORMAT + 1).build().toByteArray();
    assertEquals("record /ferry/vms/a was written by a newer Ferry (format 2; this one reads up to 1): upgrade this daemon",
        assertThrows(RecordException.class, () -> Records.vm("/ferry/vms/a", next)).getMessage());
  }
}
