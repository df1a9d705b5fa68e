package dev.ferry.cluster.model;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import dev.ferry.proto.CoordinatorEpoch;
import dev.ferry.proto.HostInventory;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.VmRecord;
import java.util.function.ToIntFunction;

/**
 * Reads and writes the cluster's records. Every record carries a format version: one written by
 * a newer Ferry is refused with a message naming its path, never misread; every record is bounded
 * in size before it is parsed.
 */
public final class Records {
  /** The record format this Ferry writes and reads. */
  public static final int FORMAT = 1;
  /** Far above any real record; ZooKeeper's own limit is 1 MiB per node. */
  public static final int RECORD_BYTES_MAX = 64 * 1024;
  /** Usage entries in one host record: at ~90 bytes each the record stays well under its size limit. */
  public static final int VM_USAGE_MAX = 512;
  /** Far above any real machine: bounds CPU figures read from records. */
  public static final double CORES_MAX = 1 << 16;
  /** Far above any real dirty rate (1 TiB/s). */
  public static final long DIRTY_RATE_MAX = 1L << 40;
  private static final java.util.regex.Pattern VM_NAME = java.util.regex.Pattern.compile("[a-z0-9][a-z0-9-]{0,62}");

  private Records() {}

  public static byte[] bytes(Message record) {
    byte[] data = record.toByteArray();
    if (data.length > RECORD_BYTES_MAX) {
      throw new RecordException("record of " + data.length + " bytes exceeds " + RECORD_BYTES_MAX);
    }
    return data;
  }

  public static HostRecord host(String path, byte[] data) {
    HostRecord host = parse(path, data, HostRecord.parser(), HostRecord::getFormatVersion);
    checkUsage(path, host);
    return host;
  }

  /** The load figures are finite, non-negative and bounded; the usage list is bounded and names VMs. */
  private static void checkUsage(String path, HostRecord host) {
    requireCores(path, "load", host.getLoad());
    if (host.getVmUsageCount() > VM_USAGE_MAX) {
      throw new RecordException("record " + path + ": vm_usage has " + host.getVmUsageCount() + " entries, more than "
          + VM_USAGE_MAX);
    }
    for (int i = 0; i < host.getVmUsageCount(); i++) {
      dev.ferry.proto.VmUsage u = host.getVmUsage(i);
      if (!VM_NAME.matcher(u.getVm()).matches()) {
        throw new RecordException("record " + path + ": vm_usage[" + i + "].vm is not a VM name");
      }
      requireCores(path, "vm_usage[" + i + "].cpu_cores", u.getCpuCores());
      if (u.getDirtyRateBytesPerS() < 0 || u.getDirtyRateBytesPerS() > DIRTY_RATE_MAX) {
        throw new RecordException("record " + path + ": vm_usage[" + i + "].dirty_rate_bytes_per_s is out of range");
      }
    }
  }

  private static void requireCores(String path, String field, double value) {
    if (!Double.isFinite(value) || value < 0 || value > CORES_MAX) {
      throw new RecordException("record " + path + ": " + field + " must be a finite number of cores between 0 and "
          + CORES_MAX + ", got " + value);
    }
  }

  public static HostInventory inventory(String path, byte[] data) {
    return parse(path, data, HostInventory.parser(), HostInventory::getFormatVersion);
  }

  public static VmRecord vm(String path, byte[] data) {
    return parse(path, data, VmRecord.parser(), VmRecord::getFormatVersion);
  }

  public static MigrationRecord migration(String path, byte[] data) {
    return parse(path, data, MigrationRecord.parser(), MigrationRecord::getFormatVersion);
  }

  public static dev.ferry.proto.ClusterEvent event(String path, byte[] data) {
    return parse(path, data, dev.ferry.proto.ClusterEvent.parser(), dev.ferry.proto.ClusterEvent::getFormatVersion);
  }

  public static dev.ferry.proto.DrsConfig drsConfig(String path, byte[] data) {
    return parse(path, data, dev.ferry.proto.DrsConfig.parser(), dev.ferry.proto.DrsConfig::getFormatVersion);
  }

  public static dev.ferry.proto.PlacementRule rule(String path, byte[] data) {
    return parse(path, data, dev.ferry.proto.PlacementRule.parser(), dev.ferry.proto.PlacementRule::getFormatVersion);
  }

  public static CoordinatorEpoch epoch(String path, byte[] data) {
    return parse(path, data, CoordinatorEpoch.parser(), CoordinatorEpoch::getFormatVersion);
  }

  public static dev.ferry.proto.HaSettings haSettings(String path, byte[] data) {
    return parse(path, data, dev.ferry.proto.HaSettings.parser(), dev.ferry.proto.HaSettings::getFormatVersion);
  }

  private static <T extends Message> T parse(String path, byte[] data, Parser<T> parser, ToIntFunction<T> version) {
    if (data == null || data.length == 0) {
      throw new RecordException("record " + path + " is empty");
    }
    if (data.length > RECORD_BYTES_MAX) {
      throw new RecordException("record " + path + " is " + data.length + " bytes, more than " + RECORD_BYTES_MAX);
    }
    T record;
    try {
      record = parser.parseFrom(data);
    } catch (InvalidProtocolBufferException e) {
      throw new RecordException("record " + path + " is not readable: " + e.getMessage(), e);
    }
    int format = version.applyAsInt(record);
    if (format > FORMAT) {
      throw new RecordException("record " + path + " was written by a newer Ferry (format " + format
          + "; this one reads up to " + FORMAT + "): upgrade this daemon");
    }
    if (format < 1) {
      throw new RecordException("record " + path + " has no format version");
    }
    return record;
  }
}
