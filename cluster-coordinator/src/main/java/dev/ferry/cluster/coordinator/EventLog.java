package dev.ferry.cluster.coordinator;

import dev.ferry.cluster.model.RecordException;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.proto.ClusterEvent;
import dev.ferry.proto.EventKind;
import dev.ferry.proto.EventList;
import dev.ferry.proto.MigrationRecord;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.zookeeper.KeeperException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cluster's event log: what happened, in order, kept in ZooKeeper as one small record per
 * event ({@code /ferry/events/<seq>}), the last {@code kept} of them. Only the leading coordinator
 * appends, each append one multi-op fenced by its epoch that also deletes the oldest events past
 * the bound, so the log never grows beyond it and a deposed leader's events never land. Any
 * coordinator reads it.
 *
 * <p>An event is written right after the change it tells of, not in the same multi-op: a leader
 * that dies between the two loses that one event (the records themselves stay true). Appends
 * block on ZooKeeper: callers are the leader's round and the API's workers, never an event loop.
 */
public final class EventLog {
  private static final Logger LOG = LoggerFactory.getLogger(EventLog.class);

  /** Longer messages are cut: an event is a line an operator reads, and records stay small. */
  public static final int MESSAGE_CHARS_MAX = 512;
  public static final int KEPT_DEFAULT = 1000;
  public static final int KEPT_MIN = 10;
  /** ZooKeeper lists a node's children in one answer (1 MiB by default): 10,000 names fit easily. */
  public static final int KEPT_MAX = 10_000;
  /** Events in one read. */
  public static final int READ_LIMIT_MAX = 1000;
  /** Old events deleted by one append at most (after the bound was lowered, the rest go with the next ones). */
  private static final int TRIM_PER_APPEND_MAX = 200;

  /** What an event is about: the VM, host and migration it names (empty where none). */
  public record Subject(String vm, String host, String migration) {
    public static final Subject NONE = new Subject("", "", "");

    public static Subject vm(String vm, String host) {
      return new Subject(vm, host, "");
    }

    public static Subject host(String host) {
      return new Subject("", host, "");
    }

    /** A migration: its VM, its id, and its source host (the message names the target). */
    public static Subject migration(MigrationRecord m) {
      return new Subject(m.getVm(), m.getSourceHost(), m.getId());
    }
  }

  private final CuratorFramework zk;
  private final Leadership leadership;
  private final int kept;
  /** The seqs in ZooKeeper, oldest first, as read when this coordinator took the lead at {@link #loadedEpoch}. */
  private final ArrayDeque<Long> seqs = new ArrayDeque<>();
  private long loadedEpoch = -1;

  EventLog(CuratorFramework zk, Leadership leadership, int kept) {
    this.zk = zk;
    this.leadership = leadership;
    this.kept = checkKept(kept);
  }

  /** {@code kept} itself if it is within bounds. */
  public static int checkKept(int kept) {
    if (kept < KEPT_MIN || kept > KEPT_MAX) {
      throw new IllegalArgumentException("events kept must be " + KEPT_MIN + " to " + KEPT_MAX + ", not " + kept);
    }
    return kept;
  }

  /**
   * Appends an event if this coordinator leads; returns whether it was written. Never throws: an
   * event that cannot be written is logged, and what it tells of has happened anyway.
   */
  public synchronized boolean append(EventKind kind, Subject about, String message) {
    try {
      for (int attempt = 0; attempt < 3; attempt++) {
        Leadership.Fence fence = leadership.fence();
        if (fence == null) {
          LOG.debug("not leading: event {} not written: {}", kind, message);
          return false;
        }
        if (loadedEpoch != fence.epoch()) {
          load(fence.epoch());
        }
        long seq = seqs.isEmpty() ? 1 : seqs.peekLast() + 1;
        ClusterEvent event = ClusterEvent.newBuilder().setFormatVersion(Records.FORMAT).setSeq(seq)
            .setTimeMs(System.currentTimeMillis()).setKind(kind).setVm(about.vm()).setHost(about.host())
            .setMigration(about.migration()).setMessage(bounded(message)).setCoordinatorEpoch(fence.epoch()).build();
        List<CuratorOp> ops = new ArrayList<>();
        ops.add(zk.transactionOp().create().forPath(ZkPaths.event(seq), Records.bytes(event)));
        int trim = Math.min(TRIM_PER_APPEND_MAX, Math.max(0, seqs.size() + 1 - kept));
        List<Long> oldest = seqs.stream().limit(trim).toList();
        for (long old : oldest) {
          ops.add(zk.transactionOp().delete().forPath(ZkPaths.event(old)));
        }
        try {
          leadership.write(ops);
        } catch (KeeperException.NodeExistsException | KeeperException.NoNodeException e) {
          loadedEpoch = -1; // someone else changed the log (another leader in between): read it again
          continue;
        }
        oldest.forEach(s -> seqs.pollFirst());
        seqs.addLast(seq);
        return true;
      }
      LOG.warn("event {} not written: the event log kept changing: {}", kind, message);
    } catch (Leadership.DeposedException e) {
      LOG.debug("event {} not written: {}", kind, e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Exception e) {
      LOG.warn("event {} not written ({}): {}", kind, e.toString(), message);
    }
    return false;
  }

  private void load(long epoch) throws Exception {
    seqs.clear();
    seqs.addAll(sortedSeqs());
    loadedEpoch = epoch;
  }

  private List<Long> sortedSeqs() throws Exception {
    List<Long> out = new ArrayList<>();
    for (String name : zk.getChildren().forPath(ZkPaths.EVENTS)) {
      long seq = seqOf(name);
      if (seq > 0) {
        out.add(seq);
      }
    }
    out.sort(null);
    return out;
  }

  /** The seq a child's name stands for, or -1 for a name that is not one (ignored). */
  private static long seqOf(String name) {
    if (name.isEmpty() || name.length() > 19 || !name.chars().allMatch(c -> c >= '0' && c <= '9')) {
      return -1;
    }
    return Long.parseLong(name);
  }

  static String bounded(String message) {
    String m = message == null ? "" : message;
    return m.length() <= MESSAGE_CHARS_MAX ? m : m.substring(0, MESSAGE_CHARS_MAX - 3) + "...";
  }

  /**
   * Up to {@code limit} events after {@code after}, oldest first; with {@code after} negative, the
   * last {@code limit}. A record that cannot be read is named in {@code unreadable} and skipped;
   * {@code last_seq} covers it, so a reader that follows the log moves past it.
   */
  EventList read(long after, int limit) throws Exception {
    List<Long> all = sortedSeqs();
    List<Long> chosen = after < 0 ? all.subList(Math.max(0, all.size() - limit), all.size())
        : all.stream().filter(s -> s > after).limit(limit).toList();
    EventList.Builder out = EventList.newBuilder().setOldestSeq(all.isEmpty() ? 0 : all.get(0))
        .setLastSeq(Math.max(after, 0));
    for (long seq : chosen) {
      String path = ZkPaths.event(seq);
      byte[] data;
      try {
        data = zk.getData().forPath(path);
      } catch (KeeperException.NoNodeException e) {
        continue; // trimmed since the listing
      }
      out.setLastSeq(seq);
      try {
        ClusterEvent event = Records.event(path, data);
        if (event.getSeq() != seq) {
          throw new RecordException("record " + path + " says it is event " + event.getSeq());
        }
        out.addEvents(event);
      } catch (RecordException e) {
        out.addUnreadable(e.getMessage());
      }
    }
    return out.build();
  }
}
