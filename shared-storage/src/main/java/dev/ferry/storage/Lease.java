package dev.ferry.storage;

import dev.ferry.storage.StorageException.Problem;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Optional;

/**
 * A VM's on-disk lease, in the manner of VMFS locks: the file {@code lease} in the VM's directory
 * names the owner host, its ownership epoch (handed out by ZooKeeper, larger for every new owner)
 * and a heartbeat the owner renews. Every write to the VM's files checks it first (see
 * {@link LeasedWriter}), so once a new owner has taken the lease with a newer epoch, the old
 * owner's writes are refused: it is fenced, whatever it still believes.
 *
 * <p>Rules: {@link #acquire} succeeds if there is no lease, if the lease's epoch is older than the
 * new one, or if the same (host, epoch) takes it again; otherwise it fails naming the holder. So
 * an owner with an older epoch can never take the lease back, and of two hosts with the same
 * epoch exactly one wins. The heartbeat does not decide ownership (ZooKeeper's epoch does); it is
 * there for operators and for HA to judge whether the owner is alive.
 *
 * <p>Every operation reads, checks and writes under {@link LeaseLock}, so it is atomic against
 * other threads and processes on this machine (and across hosts where the filesystem's
 * {@code fcntl} locks span hosts, as NFSv4's do). {@link #read()} takes no lock: the file is
 * replaced atomically, so a reader sees the old or the new lease.
 *
 * <p>A lease file that does not decode (a bad disk, someone's editor) makes every operation fail
 * with a {@link StorageException} naming it; an operator who has checked that no host is using
 * the VM deletes it.
 *
 * <p>File payload (format 1): host id length (1 byte), host id (ASCII), epoch (8 bytes),
 * heartbeat wall-clock millis (8 bytes).
 */
public final class Lease {
  private final Path leaseFile;
  private final String file;
  private final LeaseLock lock;
  private final Clock clock;

  Lease(Path leaseFile, String file, LeaseLock lock, Clock clock) {
    this.leaseFile = leaseFile;
    this.file = file;
    this.lock = lock;
    this.clock = clock;
  }

  /**
   * Takes the lease for {@code host} at {@code epoch}, or fails with {@link Problem#LEASE_HELD}
   * naming the holder. Returns the lease as written.
   */
  public LeaseStatus acquire(String host, long epoch) {
    requireOwner(host, epoch);
    return lock.locked(() -> {
      LeaseStatus current = readCurrent();
      if (current != null && !mayTake(current, host, epoch)) {
        String why = epoch < current.epoch()
            ? host + "'s epoch " + epoch + " is older, so it cannot take the lease"
            : host + " has the same epoch and only a newer epoch can take the lease";
        throw new LeaseException(Problem.LEASE_HELD, file, "held by " + current.describe() + "; " + why, current);
      }
      return write(host, epoch);
    });
  }

  /** Renews the heartbeat if the lease is still ({@code host}, {@code epoch}); else {@link Problem#FENCED}. */
  public LeaseStatus renew(String host, long epoch) {
    requireOwner(host, epoch);
    return lock.locked(() -> {
      requireHeld(readCurrent(), host, epoch);
      return write(host, epoch);
    });
  }

  /** Fails with {@link Problem#FENCED} unless the lease is ({@code host}, {@code epoch}). */
  public void check(String host, long epoch) {
    requireOwner(host, epoch);
    lock.locked(() -> {
      requireHeld(readCurrent(), host, epoch);
      return null;
    });
  }

  /** The lease now, with its heartbeat's age by this host's clock; empty if there is none. */
  public Optional<LeaseStatus> read() {
    return Optional.ofNullable(readCurrent());
  }

  /** The lease file, relative to the datastore root. */
  public String file() {
    return file;
  }

  /**
   * Runs {@code body} only while ({@code host}, {@code epoch}) holds the lease, under the lease's
   * lock, so a new owner cannot take the lease between the check and the write.
   */
  <T> T whileHeld(String host, long epoch, LeaseLock.Body<T> body) {
    return lock.locked(() -> {
      requireHeld(readCurrent(), host, epoch);
      return body.run();
    });
  }

  /** Runs {@code body} under the lease's lock without checking the lease. */
  void locked(LeaseLock.Body<?> body) {
    lock.locked(body);
  }

  static void requireOwner(String host, long epoch) {
    Names.require("host id", host);
    if (epoch < 0) {
      throw new StorageException(Problem.OUT_OF_BOUNDS, null, "epoch " + epoch + " is negative");
    }
  }

  private static boolean mayTake(LeaseStatus current, String host, long epoch) {
    return epoch > current.epoch() || (epoch == current.epoch() && host.equals(current.host()));
  }

  private void requireHeld(LeaseStatus current, String host, long epoch) {
    if (current == null) {
      throw new LeaseException(Problem.FENCED, file,
          host + " at epoch " + epoch + " is fenced: nobody holds the lease", null);
    }
    if (!current.host().equals(host) || current.epoch() != epoch) {
      throw new LeaseException(Problem.FENCED, file, host + " at epoch " + epoch
          + " is fenced: the lease is held by " + current.describe(), current);
    }
  }

  private LeaseStatus readCurrent() {
    if (!Files.exists(leaseFile)) {
      return null;
    }
    byte[] payload;
    try {
      payload = Envelope.readFile(leaseFile, file, FileKind.LEASE);
    } catch (StorageException e) {
      if (e.problem() == Problem.NOT_FOUND) {
        return null;
      }
      throw e;
    }
    return decode(payload);
  }

  private LeaseStatus write(String host, long epoch) {
    long nowMillis = clock.millis();
    byte[] hostBytes = host.getBytes(StandardCharsets.US_ASCII);
    ByteBuffer payload = ByteBuffer.allocate(1 + hostBytes.length + 16);
    payload.put((byte) hostBytes.length).put(hostBytes).putLong(epoch).putLong(nowMillis);
    AtomicFiles.write(leaseFile, file, Envelope.seal(FileKind.LEASE, file, payload.array()));
    return new LeaseStatus(host, epoch, nowMillis, 0);
  }

  private LeaseStatus decode(byte[] payload) {
    Fields in = new Fields(file, payload);
    String host = in.name("host");
    long epoch = in.i64("epoch");
    if (epoch < 0) {
      throw in.corrupt("epoch", "is negative (" + epoch + ")");
    }
    long heartbeatMillis = in.i64("heartbeat");
    in.end();
    return new LeaseStatus(host, epoch, heartbeatMillis, Math.max(0, clock.millis() - heartbeatMillis));
  }
}
