package dev.ferry.agent;

import dev.ferry.common.Sizes;
import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.guest.Guest;
import dev.ferry.engine.guest.MemoryPool;
import dev.ferry.engine.precopy.TargetMigration;
import dev.ferry.proto.GuestList;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.GuestStatus;
import java.util.Comparator;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The guests on this host, one entry each from admission (its memory counts from then on) until it
 * leaves, each with its {@link GuestLifecycle} state. Admission checks the name and the capacity
 * under this object's monitor; a caller that admits together with other checks (an incoming
 * migration's limit) holds the same monitor around both.
 */
final class Guests {
  /** What this host knows about one guest. */
  static final class Entry {
    /** Null while the guest boots or resumes; {@link #spec} is known from the start. */
    final Guest guest;
    final GuestSpec spec;
    volatile GuestLifecycle state;
    volatile CompletableFuture<byte[]> digestAtResume;
    volatile dev.ferry.proto.GuestState stateAtResume;
    /** The migration whose outcome this paused guest waits for, or null. */
    volatile String undecidedMigration;

    Entry(Guest guest, GuestLifecycle state) {
      this.guest = guest;
      this.spec = guest.spec();
      this.state = state;
    }

    /** A guest still booting or resuming: it has no Guest yet, but its memory is already taken. */
    Entry(GuestSpec spec, GuestLifecycle state) {
      this.guest = null;
      this.spec = spec;
      this.state = state;
    }

    void moveTo(GuestLifecycle next) {
      state = state.moveTo(next);
    }

    /** The state as listings show it: a paused guest names the migration it waits for. */
    String label() {
      GuestLifecycle now = state;
      String migration = undecidedMigration;
      return now == GuestLifecycle.PAUSED && migration != null
          ? now.label() + " (migration " + migration + " outcome unknown)" : now.label();
    }
  }

  private final String hostId;
  private final long capacityBytes;
  private final Map<String, Entry> entries = new ConcurrentHashMap<>();
  private volatile boolean closing;

  Guests(String hostId, long capacityBytes) {
    this.hostId = hostId;
    this.capacityBytes = capacityBytes;
  }

  /** Throws if {@code spec} cannot come here now: shutting down, name taken, not enough memory. */
  synchronized void admit(GuestSpec spec) {
    if (closing) {
      throw new TargetMigration.Refused("host " + hostId + " is shutting down");
    }
    Guest.validate(spec);
    if (entries.containsKey(spec.getName())) {
      throw new TargetMigration.Refused("host " + hostId + " already has a guest named " + spec.getName());
    }
    long free = capacityBytes - memoryBytes();
    if (spec.getMemoryBytes() > free) {
      throw new TargetMigration.Refused("host " + hostId + " has " + Sizes.formatBytes(free) + " free, "
          + spec.getName() + " needs " + Sizes.formatBytes(spec.getMemoryBytes()));
    }
  }

  /** Admits {@code spec} and holds its name and memory while it boots or resumes. */
  synchronized Entry reserve(GuestSpec spec, GuestLifecycle state) {
    admit(spec);
    Entry entry = new Entry(spec, state);
    entries.put(spec.getName(), entry);
    return entry;
  }

  /** Boots a new guest: reserved while it boots, running once booted, gone if booting fails. */
  Entry boot(GuestSpec spec, Clock clock, MemoryPool memoryPool) {
    Entry booting = reserve(spec, GuestLifecycle.BOOTING);
    try {
      Entry entry = new Entry(Guest.boot(spec, clock, memoryPool), booting.state.moveTo(GuestLifecycle.RUNNING));
      entries.put(spec.getName(), entry);
      return entry;
    } catch (RuntimeException e) {
      entries.remove(spec.getName());
      throw e;
    }
  }

  void put(Entry entry) {
    entries.put(entry.spec.getName(), entry);
  }

  /** The entry of {@code name}, or null. */
  Entry get(String name) {
    return entries.get(name);
  }

  /** The guest {@code name}, which must exist (not still booting). */
  Entry require(String name) {
    Entry entry = entries.get(name);
    if (entry == null || entry.guest == null) {
      throw new IllegalStateException("host " + hostId + " has no guest named " + name);
    }
    return entry;
  }

  boolean contains(String name) {
    return entries.containsKey(name);
  }

  void remove(String name) {
    entries.remove(name);
  }

  /** Removes {@code entry} only if it is still the one under its name. */
  void remove(Entry entry) {
    entries.remove(entry.spec.getName(), entry);
  }

  /** Guest name to the state listings show. */
  Map<String, String> states() {
    Map<String, String> states = new TreeMap<>();
    entries.forEach((name, entry) -> states.put(name, entry.label()));
    return states;
  }

  /** Memory taken by every guest here, booting and arriving ones included. */
  long memoryBytes() {
    return entries.values().stream().mapToLong(e -> e.spec.getMemoryBytes()).sum();
  }

  GuestList list() {
    GuestList.Builder list = GuestList.newBuilder();
    entries.values().stream().filter(e -> e.guest != null)
        .sorted(Comparator.comparing(e -> e.guest.name()))
        .forEach(e -> list.addGuests(statusOf(e)));
    return list.build();
  }

  /** CPU time and page writes of the guests that run here (booted or resumed, not incoming). */
  Map<String, dev.ferry.agent.cluster.LoadMeter.GuestCounters> counters() {
    Map<String, dev.ferry.agent.cluster.LoadMeter.GuestCounters> out = new TreeMap<>();
    for (Entry entry : entries.values()) {
      Guest guest = entry.guest;
      if (guest != null && entry.state != GuestLifecycle.INCOMING) {
        out.put(guest.name(), new dev.ferry.agent.cluster.LoadMeter.GuestCounters(guest.vcpuCpuNanos(), guest.steps()));
      }
    }
    return out;
  }

  static GuestStatus statusOf(Entry entry) {
    GuestStatus.Builder status = GuestStatus.newBuilder().setSpec(entry.guest.spec()).setState(entry.label())
        .setFirstStepNanosAfterResume(entry.guest.firstStepNanosAfterResume())
        .setSteps(entry.guest.steps());
    if (entry.stateAtResume != null) {
      status.setVcpuStateAtResume(entry.stateAtResume);
    }
    CompletableFuture<byte[]> digest = entry.digestAtResume;
    if (digest != null && digest.isDone() && !digest.isCompletedExceptionally()) {
      status.setDigestAtResume(com.google.protobuf.ByteString.copyFrom(digest.join()));
    }
    return status.build();
  }

  /** From now on nothing is admitted. */
  void shutDown() {
    closing = true;
  }

  boolean closing() {
    return closing;
  }

  /** Frees every guest (shutdown: their migrations have ended or been given up). */
  void destroyAll() {
    for (Entry entry : entries.values()) {
      if (entry.guest != null) {
        entry.guest.destroy();
      }
    }
    entries.clear();
  }
}
