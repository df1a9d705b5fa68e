package dev.ferry.cluster.coordinator;

import dev.ferry.proto.VmRecord;
import dev.ferry.storage.HostHeartbeat;
import dev.ferry.storage.StorageException;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Measures, on the leader's thread, how long each host that is not live in ZooKeeper has been
 * silent: since this coordinator first saw its node gone, and since its datastore heartbeat last
 * changed. Both are timed by this coordinator's monotonic clock (no comparison of hosts' wall
 * clocks), from what it has itself observed: a leader that has just taken over starts counting
 * afresh, so a failover delays HA restarts by up to one timeout and never hastens one.
 */
final class HaWatch {
  private static final Logger LOG = LoggerFactory.getLogger(HaWatch.class);

  private final HostHeartbeat heartbeats;
  /** Host to when this coordinator first saw it not live. */
  private final Map<String, Long> goneSinceNanos = new HashMap<>();
  /** Host to its last heartbeat seen (sequence, or -1 for none) and since when it has not changed. */
  private final Map<String, long[]> lastBeat = new HashMap<>();
  private final Set<String> unreadable = new TreeSet<>();

  HaWatch(HostHeartbeat heartbeats) {
    this.heartbeats = heartbeats;
  }

  /** The silences of the hosts that are not live now (their VMs are HA's concern). */
  Map<String, HaPlanner.Silence> observe(ClusterView view, long nowNanos) {
    Set<String> hosts = new TreeSet<>(view.inventory().keySet());
    view.vms().values().stream().map(VmRecord::getOwnerHost).filter(h -> !h.isEmpty()).forEach(hosts::add);
    Map<String, HaPlanner.Silence> out = new HashMap<>();
    for (String host : hosts) {
      if (view.isUp(host)) {
        goneSinceNanos.remove(host);
        lastBeat.remove(host);
        continue;
      }
      long gone = goneSinceNanos.computeIfAbsent(host, h -> nowNanos);
      long sequence = read(host).map(HostHeartbeat.Beat::sequence).orElse(-1L);
      long[] seen = lastBeat.get(host);
      if (seen == null || seen[0] != sequence) {
        seen = new long[] {sequence, nowNanos};
        lastBeat.put(host, seen);
      }
      out.put(host, new HaPlanner.Silence((nowNanos - gone) / 1_000_000L, (nowNanos - seen[1]) / 1_000_000L));
    }
    goneSinceNanos.keySet().retainAll(hosts);
    lastBeat.keySet().retainAll(hosts);
    return out;
  }

  /** A heartbeat that cannot be read counts as unchanged (logged once per host): it proves nothing. */
  private Optional<HostHeartbeat.Beat> read(String host) {
    try {
      Optional<HostHeartbeat.Beat> beat = heartbeats.read(host);
      unreadable.remove(host);
      return beat;
    } catch (StorageException | IllegalArgumentException e) {
      if (unreadable.add(host)) {
        LOG.warn("HA: the datastore heartbeat of {} cannot be read: {}", host, e.getMessage());
      }
      return Optional.empty();
    }
  }
}
