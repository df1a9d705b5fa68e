package dev.ferry.it.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.util.JsonFormat;
import dev.ferry.cluster.model.Records;
import dev.ferry.cluster.model.ZkPaths;
import dev.ferry.proto.HostRecord;
import dev.ferry.proto.VmList;
import dev.ferry.proto.VmUsage;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Load, measured, through the CLI and real processes: agents with their own --cpu-capacity and a
 * short --load-interval; 'ferry vm create --cpu-load', 'ferry vm set' on a running VM, 'ferry vms'
 * and 'ferry hosts' showing what the hosts measured, and the demand moving with a live migration.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class ClusterLoadCliTest {
  @TempDir(cleanup = org.junit.jupiter.api.io.CleanupMode.ON_SUCCESS)
  static Path dir;

  private TestCluster cluster;

  @BeforeAll
  void start() throws Exception {
    cluster = TestCluster.start(dir, 1);
    cluster.startCoordinator("c1");
    cluster.startAgent("host-1", List.of(), "--cpu-capacity", "8", "--load-interval", "0.5");
    cluster.startAgent("host-2", List.of(), "--cpu-capacity", "2", "--load-interval", "0.5");
    TestCluster.await("the coordinator lists two hosts up", Duration.ofSeconds(60),
        () -> cluster.cli("hosts", "--json").out().split("\"up\":true", -1).length - 1 == 2);
  }

  @AfterAll
  void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void vmSetChangesTheLoadTheHostsMeasureAndAMigrationKeeps() throws Exception {
    TestCluster.Cli created = cluster.cli("vm", "create", "hot-1", "--memory", "64MiB", "--cpu-load", "0.05",
        "--host", "host-1");
    assertEquals(0, created.exitCode(), created.toString());
    assertTrue(created.out().contains("CPU load 0.05"), created.toString());
    TestCluster.await("hot-1's use in the coordinator's window", Duration.ofSeconds(60), () -> usage().isPresent());
    double light = usage().orElseThrow().getCpuCores();
    assertTrue(light < 0.3, "load 0.05 uses little: " + light);

    TestCluster.Cli refused = cluster.cli("vm", "set", "hot-1", "--cpu-load", "3");
    assertEquals(2, refused.exitCode(), refused.toString());
    assertTrue(refused.err().contains("--cpu-load: "), refused.toString());

    TestCluster.Cli set = cluster.cli("vm", "set", "hot-1", "--cpu-load", "0.9", "--dirty-rate", "8MiB/s");
    assertEquals(0, set.exitCode(), set.toString());
    assertTrue(set.out().contains("CPU load 0.90 per vCPU, dirtying 8.0 MiB/s (applied on host-1)"), set.toString());
    TestCluster.await("host-1 measures the new load", Duration.ofSeconds(60),
        () -> reported("host-1").filter(u -> u.getCpuCores() > Math.max(0.3, 3 * light)
            && u.getDirtyRateBytesPerS() > (1 << 20)).isPresent());
    TestCluster.await("the coordinator's window follows", Duration.ofSeconds(60),
        () -> usage().filter(u -> u.getCpuCores() > 0.3).isPresent());
    TestCluster.Cli vms = cluster.cli("vms");
    assertTrue(vms.out().lines().anyMatch(l -> l.startsWith("hot-1") && l.contains("0.90") && l.contains(" cores")),
        vms.toString());
    TestCluster.Cli hosts = cluster.cli("hosts");
    assertTrue(hosts.out().lines().anyMatch(l -> l.startsWith("host-1") && l.contains(" 8 ") && l.contains("%")),
        hosts.toString());

    TestCluster.Cli moved = cluster.cli("migrate", "hot-1", "--to", "host-2");
    assertEquals(0, moved.exitCode(), moved + cluster.logs());
    assertEquals(0.9, cluster.vm("hot-1").getSpec().getWorkload().getCpuLoad(), "the spec moved with the VM");
    TestCluster.await("host-2 runs hot-1 with the same demand", Duration.ofSeconds(60),
        () -> reported("host-2").filter(u -> u.getCpuCores() > 0.3 && u.getDirtyRateBytesPerS() > (1 << 20)).isPresent());
  }

  /** hot-1's windowed use as 'ferry vms --json' shows it. */
  private Optional<VmUsage> usage() {
    VmList.Builder list = VmList.newBuilder();
    try {
      JsonFormat.parser().merge(cluster.cli("vms", "--json").out(), list);
    } catch (Exception e) {
      return Optional.empty();
    }
    return list.getUsageList().stream().filter(u -> u.getVm().equals("hot-1")).findFirst();
  }

  /** hot-1's use as {@code host} last reported it in its host record. */
  private Optional<VmUsage> reported(String host) {
    try {
      HostRecord record = Records.host(ZkPaths.host(host), cluster.zk().getData().forPath(ZkPaths.host(host)));
      return record.getVmUsageList().stream().filter(u -> u.getVm().equals("hot-1")).findFirst();
    } catch (Exception e) {
      return Optional.empty();
    }
  }
}
