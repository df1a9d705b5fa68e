package dev.ferry.cluster.coordinator;

import dev.ferry.agent.cluster.ZkUpdate;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.VmRecord;
import java.util.List;
import java.util.function.UnaryOperator;
import org.apache.curator.framework.CuratorFramework;

/**
 * The coordinator's read-modify-write of one record: {@link ZkUpdate}'s versioned loop, each write
 * a multi-op fenced by the leader's epoch ({@link Leadership#write}).
 */
final class FencedUpdates {
  private final CuratorFramework zk;
  private final Leadership leadership;

  FencedUpdates(CuratorFramework zk, Leadership leadership) {
    this.zk = zk;
    this.leadership = leadership;
  }

  boolean migration(String migrationId, UnaryOperator<MigrationRecord> change) throws Exception {
    return update(ZkPaths.migration(migrationId), data -> Records.bytes(change.apply(
        Records.migration(ZkPaths.migration(migrationId), data))));
  }

  boolean vm(String name, UnaryOperator<VmRecord> change) throws Exception {
    return update(ZkPaths.vm(name), data -> Records.bytes(change.apply(Records.vm(ZkPaths.vm(name), data))));
  }

  boolean inventory(String hostId, UnaryOperator<dev.ferry.proto.HostInventory> change) throws Exception {
    return update(ZkPaths.inventory(hostId), data -> Records.bytes(change.apply(
        Records.inventory(ZkPaths.inventory(hostId), data))));
  }

  /** True if it wrote (false: nothing to change, or the node is gone). */
  private boolean update(String path, UnaryOperator<byte[]> change) throws Exception {
    ZkUpdate.Outcome outcome = ZkUpdate.apply(zk, path, change, (p, version, data) ->
        leadership.write(List.of(zk.transactionOp().setData().withVersion(version).forPath(p, data))));
    if (outcome == ZkUpdate.Outcome.KEPT_CHANGING) {
      throw new Refused(409, path + " keeps changing; try again");
    }
    return outcome == ZkUpdate.Outcome.WRITTEN;
  }
}
