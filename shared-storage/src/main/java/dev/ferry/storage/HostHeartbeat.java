package dev.ferry.storage;

import dev.ferry.storage.StorageException.Problem;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A host's heartbeat on the datastore: one small file per host, {@code hosts/ID.heartbeat},
 * rewritten crash-safely ({@link AtomicFiles}) by the host's agent with its lease renewals. It is
 * HA's second witness besides ZooKeeper: a host whose ZooKeeper session is gone but which still
 * writes here is alive (cut off from ZooKeeper only), and its VMs are not restarted elsewhere.
 *
 * <p>The sequence number grows with every write, so a reader judges silence by its own clock (how
 * long the number has not changed), not by comparing the writer's clock with its own. The
 * wall-clock time is there for people.
 *
 * <p>File payload (format 1): host id length (1 byte), host id (ASCII), sequence (8 bytes),
 * wall-clock millis (8 bytes).
 */
public final class HostHeartbeat {
  public static final String HOSTS_DIR = "hosts";
  private static final String SUFFIX = ".heartbeat";

  /** A heartbeat as read. */
  public record Beat(String host, long sequence, long wallMillis) {}

  private final Path dir;

  HostHeartbeat(Path root) {
    this.dir = root.resolve(HOSTS_DIR);
  }

  /** Writes {@code host}'s heartbeat number {@code sequence}, crash-safely; creates {@code hosts/} if needed. */
  public void write(String host, long sequence, long wallMillis) {
    Names.require("host id", host);
    if (sequence < 0) {
      throw new StorageException(Problem.OUT_OF_BOUNDS, null, "heartbeat sequence " + sequence + " is negative");
    }
    if (!Files.isDirectory(dir)) {
      try {
        AtomicFiles.createDirectory(dir, HOSTS_DIR);
      } catch (StorageException e) {
        if (e.problem() != Problem.ALREADY_EXISTS) {
          throw e;
        }
      }
    }
    byte[] hostBytes = host.getBytes(StandardCharsets.US_ASCII);
    ByteBuffer payload = ByteBuffer.allocate(1 + hostBytes.length + 16);
    payload.put((byte) hostBytes.length).put(hostBytes).putLong(sequence).putLong(wallMillis);
    String file = file(host);
    AtomicFiles.write(dir.resolve(host + SUFFIX), file, Envelope.seal(FileKind.HEARTBEAT, file, payload.array()));
  }

  /** {@code host}'s last heartbeat; empty if it never wrote one. A file that does not decode fails, naming it. */
  public Optional<Beat> read(String host) {
    Names.require("host id", host);
    Path path = dir.resolve(host + SUFFIX);
    String file = file(host);
    if (!Files.exists(path)) {
      return Optional.empty();
    }
    byte[] payload;
    try {
      payload = Envelope.readFile(path, file, FileKind.HEARTBEAT);
    } catch (StorageException e) {
      if (e.problem() == Problem.NOT_FOUND) {
        return Optional.empty();
      }
      throw e;
    }
    Fields in = new Fields(file, payload);
    String named = in.name("host");
    long sequence = in.i64("sequence");
    long wallMillis = in.i64("wall-clock time");
    in.end();
    if (!named.equals(host)) {
      throw in.corrupt("host", "names " + named + ", not " + host);
    }
    if (sequence < 0) {
      throw in.corrupt("sequence", "is negative (" + sequence + ")");
    }
    return Optional.of(new Beat(named, sequence, wallMillis));
  }

  private static String file(String host) {
    return HOSTS_DIR + "/" + host + SUFFIX;
  }
}
