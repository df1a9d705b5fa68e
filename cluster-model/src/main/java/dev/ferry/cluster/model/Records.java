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

  private Records() {}

  public static byte[] bytes(Message record) {
    byte[] data = record.toByteArray();
    if (data.length > RECORD_BYTES_MAX) {
      throw new RecordException("record of " + data.length + " bytes exceeds " + RECORD_BYTES_MAX);
    }
    return data;
  }

  public static HostRecord host(String path, byte[] data) {
    return parse(path, data, HostRecord.parser(), HostRecord::getFormatVersion);
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
