package dev.ferry.agent;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.guest.Guest;
import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.guest.MemoryDigest;
import dev.ferry.engine.guest.MemoryPool;
import dev.ferry.proto.CheckpointState;
import dev.ferry.proto.GuestSpec;
import dev.ferry.storage.CheckpointHeader;
import dev.ferry.storage.CheckpointReader;
import dev.ferry.storage.CheckpointWriter;
import dev.ferry.storage.Datastore;
import dev.ferry.storage.LeasedWriter;
import dev.ferry.storage.StorageException;
import dev.ferry.storage.VmDirectory;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's side of the datastore: a VM this host owns has its directory there, its lease
 * (owner host and the ownership epoch from ZooKeeper) and its config, written through the
 * lease-checked writer; the lease's heartbeat is renewed while the VM runs here. Suspending
 * streams the guest's memory, vCPU state and memory digest into a checkpoint; resuming streams
 * it back on any host and refuses to run a guest whose restored memory does not match.
 */
final class VmStorage implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(VmStorage.class);
  /** The built-in guest's disk: fixed size, sparse on the datastore. */
  static final long DISK_BYTES = 64L << 20;
  static final String SUSPEND_CHECKPOINT = "suspend";
  private static final int CHUNK_BYTES = 1 << 20;

  private final Datastore datastore;
  private final String hostId;
  private final Map<String, LeasedWriter> writers = new ConcurrentHashMap<>();
  /** This host's heartbeat number: starts at the wall clock so a restarted agent's numbers differ. */
  private long heartbeatSequence = System.currentTimeMillis();

  VmStorage(Datastore datastore, String hostId) {
    this.datastore = datastore;
    this.hostId = hostId;
  }

  /**
   * Takes the VM's lease with {@code epoch} (the epoch ZooKeeper gave this host) and makes sure
   * its directory holds its config and disk. Throws if a newer owner holds the lease.
   */
  void attach(GuestSpec spec, long epoch) {
    String name = spec.getName();
    long start = System.nanoTime();
    VmDirectory dir = datastore.contains(name) ? datastore.vm(name) : datastore.create(name);
    dir.lease().acquire(hostId, epoch);
    LeasedWriter writer = dir.openWriter(hostId, epoch);
    byte[] config = spec.toByteArray();
    if (!dir.hasConfig() || !Arrays.equals(dir.readConfig(), config)) {
      writer.writeConfig(config);
    }
    if (!java.nio.file.Files.exists(dir.diskPath(0))) {
      writer.createDisk(0, DISK_BYTES);
    }
    LeasedWriter old = writers.put(name, writer);
    if (old != null && old != writer) {
      old.close();
    }
    LOG.info("VM {}: lease taken by {} at epoch {} ({}, {} us)", name, hostId, epoch, dir.lease().file(),
        (System.nanoTime() - start) / 1000);
  }

  /** The lease-checked writer of a VM attached here, or null. */
  LeasedWriter writer(String name) {
    return writers.get(name);
  }

  VmDirectory directory(String name) {
    return datastore.vm(name);
  }

  /** Stops writing for {@code name} here (it left, or was stopped). */
  void detach(String name) {
    LeasedWriter writer = writers.remove(name);
    if (writer != null) {
      writer.close();
    }
  }

  /**
   * Writes this host's datastore heartbeat (HA's evidence that the host is alive even when its
   * ZooKeeper session is gone), then renews the leases; true if the heartbeat was written.
   */
  boolean heartbeat() {
    boolean written;
    try {
      datastore.heartbeats().write(hostId, ++heartbeatSequence, System.currentTimeMillis());
      written = true;
    } catch (StorageException e) {
      LOG.warn("host {}: datastore heartbeat not written: {}", hostId, e.getMessage());
      written = false;
    }
    renewAll();
    return written;
  }

  /** Renews the heartbeat of every lease this host holds; one that was taken over is dropped. */
  void renewAll() {
    writers.forEach((name, writer) -> {
      try {
        datastore.vm(name).lease().renew(hostId, writer.epoch());
      } catch (StorageException e) {
        LOG.warn("VM {}: lease not renewed: {}", name, e.getMessage());
        if (e.problem() == StorageException.Problem.FENCED) {
          detach(name);
        }
      }
    });
  }

  /**
   * Writes the paused guest's memory and state to the VM's suspend checkpoint (streamed; the heap
   * holds one chunk view at a time). The checkpoint appears only once complete and only if the
   * lease still holds.
   */
  CheckpointState suspend(Guest guest, long epoch) {
    String name = guest.name();
    LeasedWriter writer = writers.get(name);
    if (writer == null || writer.epoch() != epoch) {
      attach(guest.spec(), epoch);
      writer = writers.get(name);
    }
    GuestMemory memory = guest.memory();
    CheckpointState state = CheckpointState.newBuilder().setFormatVersion(1).setSpec(guest.spec())
        .setVcpuState(guest.saveState()).setMemoryDigest(ByteString.copyFrom(MemoryDigest.of(memory)))
        .setHost(hostId).setEpoch(epoch).setSuspendedMs(System.currentTimeMillis()).build();
    try (CheckpointWriter checkpoint = writer.beginCheckpoint(SUSPEND_CHECKPOINT, memory.sizeBytes(),
        GuestMemory.PAGE_BYTES)) {
      for (long offset = 0; offset < memory.sizeBytes(); offset += CHUNK_BYTES) {
        int length = (int) Math.min(CHUNK_BYTES, memory.sizeBytes() - offset);
        checkpoint.writeMemory(memory.view(offset, length));
      }
      checkpoint.finish(state.toByteArray());
    }
    LOG.info("VM {}: suspended to the datastore ({} bytes of memory, digest {})", name, memory.sizeBytes(),
        MemoryDigest.hex(state.getMemoryDigest().toByteArray()));
    return state;
  }

  /**
   * A paused guest rebuilt from the VM's suspend checkpoint, its memory checked against the
   * digest taken at suspend and its vCPUs at the exact step they stopped at; the caller resumes it.
   */
  Restored restore(GuestSpec spec, long epoch, Clock clock, MemoryPool pool) {
    attach(spec, epoch);
    VmDirectory dir = datastore.vm(spec.getName());
    Guest guest = Guest.incoming(spec, clock, pool);
    try (CheckpointReader reader = dir.openCheckpoint(SUSPEND_CHECKPOINT)) {
      CheckpointHeader header = reader.header();
      if (header.memoryBytes() != spec.getMemoryBytes() || header.pageBytes() != GuestMemory.PAGE_BYTES) {
        throw new IllegalStateException("checkpoint of " + spec.getName() + " holds " + header.memoryBytes()
            + " bytes in pages of " + header.pageBytes() + "; the VM has " + spec.getMemoryBytes());
      }
      GuestMemory memory = guest.memory();
      byte[] trailer = reader.read((offset, pages) -> {
        ByteBuffer target = memory.view(offset, pages.remaining());
        target.put(pages);
      });
      CheckpointState state = CheckpointState.parseFrom(trailer);
      byte[] digest = MemoryDigest.of(memory);
      if (!Arrays.equals(digest, state.getMemoryDigest().toByteArray())) {
        throw new IllegalStateException("checkpoint of " + spec.getName() + ": the restored memory does not match"
            + " the digest taken at suspend");
      }
      guest.restoreState(state.getVcpuState());
      LOG.info("VM {}: restored from the datastore (suspended on {} at epoch {})", spec.getName(), state.getHost(),
          state.getEpoch());
      return new Restored(guest, state, digest);
    } catch (InvalidProtocolBufferException e) {
      guest.destroy();
      throw new IllegalStateException("checkpoint of " + spec.getName() + ": unreadable machine state", e);
    } catch (RuntimeException e) {
      guest.destroy();
      throw e;
    }
  }

  /** A restored guest (paused) with the state it continues from and its memory's digest. */
  record Restored(Guest guest, CheckpointState state, byte[] digest) {}

  @Override
  public void close() {
    writers.keySet().forEach(this::detach);
  }
}
