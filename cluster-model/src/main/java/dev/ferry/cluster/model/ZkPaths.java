package dev.ferry.cluster.model;

/** The one place that knows where Ferry keeps what in ZooKeeper. */
public final class ZkPaths {
  public static final String ROOT = "/ferry";
  public static final String HOSTS = ROOT + "/hosts";
  public static final String INVENTORY = ROOT + "/inventory";
  public static final String VMS = ROOT + "/vms";
  public static final String MIGRATIONS = ROOT + "/migrations";
  public static final String COORDINATOR = ROOT + "/coordinator";
  public static final String COORDINATOR_LEADER = COORDINATOR + "/leader";
  public static final String COORDINATOR_EPOCH = COORDINATOR + "/epoch";
  /** The last epoch of each deleted VM: a VM created again under its name continues above it. */
  public static final String RETIRED = ROOT + "/retired";
  /** The cluster's event log: one node per event, named by its sequence number. */
  public static final String EVENTS = ROOT + "/events";
  /** The cluster's settings, one node per feature. */
  public static final String SETTINGS = ROOT + "/settings";
  /** HA's settings ({@code HaSettings}): admission control's failover hosts. */
  public static final String HA_SETTINGS = SETTINGS + "/ha";
  public static final String DRS = ROOT + "/drs";
  /** DRS's settings (mode, threshold, interval): one record, absent until an operator sets them. */
  public static final String DRS_CONFIG = DRS + "/config";
  /** Placement rules: one node per rule, named by the rule. */
  public static final String RULES = ROOT + "/rules";

  private ZkPaths() {}

  public static String host(String hostId) {
    return HOSTS + "/" + hostId;
  }

  public static String inventory(String hostId) {
    return INVENTORY + "/" + hostId;
  }

  public static String vm(String name) {
    return VMS + "/" + name;
  }

  public static String retired(String name) {
    return RETIRED + "/" + name;
  }

  /** {@code name} must have been checked as a name (letters, digits, '.', '_', '-') by the caller. */
  public static String rule(String name) {
    return RULES + "/" + name;
  }

  /** Throws {@link dev.ferry.common.InvalidConfigException} unless {@code id} is a migration id: no path from a bad one. */
  public static String migration(String id) {
    return MIGRATIONS + "/" + dev.ferry.common.MigrationIds.check("migration id", id);
  }

  /** The event {@code seq}: zero-padded so names sort as numbers do. */
  public static String event(long seq) {
    return EVENTS + "/" + String.format(java.util.Locale.ROOT, "%019d", seq);
  }

  /** The last path element. */
  public static String name(String path) {
    return path.substring(path.lastIndexOf('/') + 1);
  }
}
