package dev.ferry.agent;

import dev.ferry.engine.guest.Guest;
import dev.ferry.engine.precopy.TargetMigration;
import dev.ferry.proto.GuestSpec;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The migrations this host receives, one record each from admission (after the source's proof) to
 * commit or failure: one connection per id, and at most {@code limit} at once.
 */
final class IncomingMigrations {
  /**
   * One admitted incoming migration. {@code spec} is the one it was admitted for (in a cluster the
   * VM record's, never the peer's): its lease is taken for this spec.
   */
  record Incoming(String id, GuestSpec spec, Guest guest) {
  }

  private final String hostId;
  private final int limit;
  private final Map<String, Incoming> admitted = new ConcurrentHashMap<>();

  IncomingMigrations(String hostId, int limit) {
    this.hostId = hostId;
    this.limit = limit;
  }

  /** Whether migration {@code id} may be admitted now (without reserving anything). */
  void checkRoom(String id) {
    if (admitted.containsKey(id)) {
      throw new TargetMigration.Refused("migration " + id + " already has its connection to " + hostId);
    }
    int now = admitted.size();
    if (now >= limit) {
      throw new TargetMigration.Refused("host " + hostId + " already receives " + now + " migrations (limit "
          + limit + ")");
    }
  }

  void add(Incoming incoming) {
    admitted.put(incoming.id(), incoming);
  }

  /** The admitted migration {@code id}, or null. */
  Incoming get(String id) {
    return admitted.get(id);
  }

  /** Forgets migration {@code id} (it committed or failed); whether it was here. */
  boolean remove(String id) {
    return admitted.remove(id) != null;
  }
}
