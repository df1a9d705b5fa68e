package dev.ferry.cluster.coordinator;

import dev.ferry.cluster.model.RecordException;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.proto.DrsConfig;
import dev.ferry.proto.DrsConfigRequest;
import dev.ferry.proto.DrsMode;
import dev.ferry.proto.PlacementRule;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.curator.framework.CuratorFramework;
import org.apache.zookeeper.KeeperException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * DRS's settings in ZooKeeper ({@code /ferry/drs/config}): their bounds and defaults, how an
 * operator's change applies, and the read the API and the DRS loop share. Without a record the
 * defaults hold: fully automated, threshold 3, a run every 60 s — vSphere's defaults for a DRS
 * cluster (its default automation level is fully automated, its migration threshold the middle
 * of five).
 */
public final class DrsSettings {
  private static final Logger LOG = LoggerFactory.getLogger(DrsSettings.class);

  public static final int THRESHOLD_MIN = 1;
  public static final int THRESHOLD_MAX = 5;
  public static final int INTERVAL_SECONDS_MIN = 5;
  public static final int INTERVAL_SECONDS_MAX = 3600;
  public static final DrsConfig DEFAULT = DrsConfig.newBuilder().setFormatVersion(Records.FORMAT)
      .setMode(DrsMode.DRS_FULL).setThreshold(3).setIntervalSeconds(60).build();

  private DrsSettings() {}

  /** The settings in force: the record, or {@link #DEFAULT} while there is none. Blocks on ZooKeeper. */
  public static DrsConfig read(CuratorFramework zk) throws Exception {
    try {
      return Records.drsConfig(ZkPaths.DRS_CONFIG, zk.getData().forPath(ZkPaths.DRS_CONFIG));
    } catch (KeeperException.NoNodeException e) {
      return DEFAULT;
    }
  }

  /** {@code current} with the request's fields applied, each checked; a field out of bounds is refused by name. */
  static DrsConfig apply(DrsConfig current, DrsConfigRequest request) throws Refused {
    DrsConfig.Builder next = current.toBuilder().setFormatVersion(Records.FORMAT);
    if (request.hasMode()) {
      DrsMode mode = request.getMode();
      if (mode != DrsMode.DRS_MANUAL && mode != DrsMode.DRS_PARTIAL && mode != DrsMode.DRS_FULL) {
        throw new Refused(400, "mode: must be DRS_MANUAL, DRS_PARTIAL or DRS_FULL, not "
            + (mode == DrsMode.UNRECOGNIZED ? String.valueOf(request.getModeValue()) : mode.name()));
      }
      next.setMode(mode);
    }
    if (request.hasThreshold()) {
      next.setThreshold(check("threshold", request.getThreshold(), THRESHOLD_MIN, THRESHOLD_MAX));
    }
    if (request.hasIntervalSeconds()) {
      next.setIntervalSeconds(check("interval_seconds", request.getIntervalSeconds(), INTERVAL_SECONDS_MIN,
          INTERVAL_SECONDS_MAX));
    }
    return next.build();
  }

  private static int check(String field, int value, int min, int max) throws Refused {
    // uint32 arrives as a Java int: above 2^31 it is negative here, and out of range all the same.
    if (value < min || value > max) {
      throw new Refused(400, field + ": must be " + min + " to " + max + ", not " + Integer.toUnsignedString(value));
    }
    return value;
  }

  /** DRS_FULL -> full. */
  public static String mode(DrsMode mode) {
    return mode.name().replaceFirst("^DRS_", "").toLowerCase(Locale.ROOT);
  }

  /**
   * Every rule on record, by name; a record this coordinator cannot read is logged and left out
   * (the rest still apply). Blocks on ZooKeeper.
   */
  public static List<PlacementRule> readRules(CuratorFramework zk) throws Exception {
    List<String> names;
    try {
      names = new ArrayList<>(zk.getChildren().forPath(ZkPaths.RULES));
    } catch (KeeperException.NoNodeException e) {
      return List.of();
    }
    names.sort(null);
    List<PlacementRule> rules = new ArrayList<>();
    for (String name : names) {
      String path = ZkPaths.rule(name);
      try {
        rules.add(Records.rule(path, zk.getData().forPath(path)));
      } catch (KeeperException.NoNodeException e) {
        // removed meanwhile
      } catch (RecordException e) {
        LOG.warn("rule skipped: {}", e.getMessage());
      }
    }
    return rules;
  }
}
