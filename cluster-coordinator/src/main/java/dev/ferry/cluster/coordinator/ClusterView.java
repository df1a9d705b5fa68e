package dev.ferry.cluster.coordinator;

import dev.ferry.cluster.model.MigrationStates;
import dev.ferry.proto.HostInventory;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import dev.ferry.proto.VmRecord;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * One consistent-enough snapshot of the cluster's records, as the coordinator's caches hold
 * them: live hosts (their ephemeral nodes), every host ever seen, VMs and migrations. Pure data;
 * the planning functions take it as input.
 */
public record ClusterView(Map<String, HostRecord> liveHosts, Map<String, HostInventory> inventory,
    Map<String, VmRecord> vms, Map<String, MigrationRecord> migrations, long nowMillis) {

  /**
   * A live host whose heartbeat (its record's updated_ms, rewritten every ~2 s) is older than this
   * gets no new work: killed or frozen, it keeps its live node until its ZooKeeper session expires.
   * Three missed heartbeats; hosts' clocks are assumed NTP-close (well under a second).
   */
  public static final long HEARTBEAT_STALE_MILLIS = 6_000;

  public boolean isUp(String hostId) {
    return liveHosts.containsKey(hostId);
  }

  /**
   * "host-b has not reported for 7 s" if {@code hostId} is live but its heartbeat is stale; empty
   * if it reports (or is not live, or its record carries no heartbeat time).
   */
  public Optional<String> silence(String hostId) {
    HostRecord host = liveHosts.get(hostId);
    if (host == null || host.getUpdatedMs() == 0) {
      return Optional.empty();
    }
    long ageMillis = nowMillis - host.getUpdatedMs();
    return ageMillis > HEARTBEAT_STALE_MILLIS
        ? Optional.of(hostId + " has not reported for " + ageMillis / 1000 + " s") : Optional.empty();
  }

  /**
   * "host-b is in maintenance (...)" if the operator put {@code hostId} in maintenance, entering
   * or in (the coordinator's inventory): it takes no new VMs. Empty otherwise.
   */
  public Optional<String> maintenance(String hostId) {
    HostInventory known = inventory.get(hostId);
    if (known == null) {
      return Optional.empty();
    }
    return switch (known.getMaintenance()) {
      case MAINTENANCE_ENTERING -> Optional.of(hostId + " is entering maintenance: it takes no new VMs");
      case MAINTENANCE_IN -> Optional.of(hostId + " is in maintenance: it takes no new VMs");
      default -> Optional.empty();
    };
  }

  public Optional<VmRecord> vm(String name) {
    return Optional.ofNullable(vms.get(name));
  }

  /** The record's state machine decides (one definition: {@link MigrationStates#isActive}). */
  public static boolean isActive(MigrationRecord m) {
    return MigrationStates.isActive(m.getState());
  }

  public List<MigrationRecord> running() {
    return migrations.values().stream().filter(m -> m.getState() == MigrationState.MIGRATION_RUNNING).toList();
  }

  /**
   * Memory promised on {@code hostId}: the VMs it owns, plus those on their way to it (their
   * room is reserved from the moment the migration is accepted).
   */
  public long memoryCommittedBytes(String hostId) {
    long owned = vms.values().stream().filter(v -> v.getOwnerHost().equals(hostId))
        .filter(v -> v.getDesiredPower() != dev.ferry.proto.PowerState.POWER_SUSPENDED)
        .mapToLong(v -> v.getSpec().getMemoryBytes()).sum();
    long incoming = migrations.values().stream()
        .filter(m -> isActive(m) && m.getTargetHost().equals(hostId) && m.getCommitOpId().isEmpty())
        .mapToLong(m -> vms.containsKey(m.getVm()) ? vms.get(m.getVm()).getSpec().getMemoryBytes() : 0).sum();
    return owned + incoming;
  }

  public long memoryFreeBytes(String hostId) {
    HostRecord h = liveHosts.get(hostId);
    return h == null ? 0 : Math.max(0, h.getMemoryBytes() - memoryCommittedBytes(hostId));
  }

  public List<String> vmsOn(String hostId) {
    return vms.values().stream().filter(v -> v.getOwnerHost().equals(hostId)).map(v -> v.getSpec().getName())
        .sorted().collect(Collectors.toList());
  }
}
