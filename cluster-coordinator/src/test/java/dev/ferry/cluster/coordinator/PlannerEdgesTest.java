package dev.ferry.cluster.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ferry.cluster.coordinator.Planner.Limits;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.HostInventory;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.HostState;
import dev.ferry.proto.MigrationRecord;
import dev.ferry.proto.MigrationState;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** The planner's thresholds at their edges: the limits' range, a VM that fills a host exactly, the retention. */
class PlannerEdgesTest {
  private static final long GIB = 1L << 30;
  private static final long NOW = 1_700_000_000_000L;

  private static HostRecord host(String id, long memoryBytes) {
    return HostRecord.newBuilder().setHostId(id).setAddress(id + ":7700").setCpuCores(8).setMemoryBytes(memoryBytes)
        .setState(HostState.HOST_ACTIVE).build();
  }

  private static ClusterView view(List<HostRecord> hosts, Map<String, MigrationRecord> migrations) {
    Map<String, HostRecord> live = new TreeMap<>();
    Map<String, HostInventory> inventory = new TreeMap<>();
    for (HostRecord h : hosts) {
      live.put(h.getHostId(), h);
      inventory.put(h.getHostId(), HostInventory.newBuilder().setHostId(h.getHostId()).setUp(true).build());
    }
    return new ClusterView(live, inventory, Map.of(), migrations, NOW);
  }

  private static GuestSpec spec(long memoryBytes) {
    return GuestSpec.newBuilder().setName("web-1").setMemoryBytes(memoryBytes).setVcpus(2).build();
  }

  @Test
  void limitsAcceptTheirWholeRangeAndNothingBeyond() {
    new Limits(1, 1, 1);
    new Limits(64, 64, 1024);
    for (int[] bad : new int[][] {{0, 1, 1}, {1, 0, 1}, {1, 1, 0}, {65, 1, 1}, {1, 65, 1}, {1, 1, 1025}}) {
      assertThrows(IllegalArgumentException.class, () -> new Limits(bad[0], bad[1], bad[2]),
          bad[0] + "/" + bad[1] + "/" + bad[2]);
    }
  }

  @Test
  void aVmThatFillsAHostExactlyFits() {
    ClusterView view = view(List.of(host("host-a", 4 * GIB)), Map.of());
    assertEquals("host-a", Planner.placeVm(view, spec(4 * GIB), "host-a").value());
    assertEquals("host-a", Planner.placeVm(view, spec(4 * GIB), "").value());
    assertEquals("host-a has 4.0 GiB free, web-1 needs 4.0 GiB",
        Planner.placeVm(view, spec(4 * GIB + 4096), "host-a").refusal());
  }

  @Test
  void aFinishedMigrationIsKeptForExactlyTheRetention() {
    MigrationRecord ended = MigrationRecord.newBuilder().setId("m-1").setVm("web-1").setSourceHost("host-a")
        .setTargetHost("host-b").setState(MigrationState.MIGRATION_COMPLETED)
        .setEndedMs(NOW - Planner.FINISHED_RETENTION_MILLIS).build();
    ClusterView view = view(List.of(host("host-a", GIB), host("host-b", GIB)), Map.of("m-1", ended));
    assertEquals(List.of(), Planner.plan(view, Limits.DEFAULT).stream().filter(a -> a instanceof Planner.Forget).toList());
  }
}
