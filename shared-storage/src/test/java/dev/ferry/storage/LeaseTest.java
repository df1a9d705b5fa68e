package dev.ferry.storage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.storage.StorageException.Problem;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The lease's rules (who may take it, renew it, write under it) and a seeded race of threads. */
class LeaseTest {
  @TempDir
  Path root;
  private final TestClock clock = new TestClock(1_700_000_000_000L);
  private VmDirectory vm;
  private Lease lease;

  @BeforeEach
  void setUp() {
    vm = Datastore.open(root, clock).create("web-1");
    lease = vm.lease();
  }

  @Test
  void aFreeLeaseIsTakenAndReadBack() {
    assertTrue(lease.read().isEmpty());
    LeaseStatus taken = lease.acquire("h1", 5);
    assertEquals(new LeaseStatus("h1", 5, clock.millis(), 0), taken);
    clock.advanceMillis(1500);
    assertEquals(new LeaseStatus("h1", 5, clock.millis() - 1500, 1500), lease.read().orElseThrow());
  }

  @Test
  void aNewerEpochTakesTheLeaseOver() {
    lease.acquire("h1", 5);
    lease.acquire("h2", 6);
    assertEquals("h2", lease.read().orElseThrow().host());
    assertEquals(6, lease.read().orElseThrow().epoch());
  }

  @Test
  void anOlderEpochIsRefusedAndTheHolderNamed() {
    lease.acquire("h2", 6);
    LeaseException e = assertThrows(LeaseException.class, () -> lease.acquire("h1", 5));
    assertEquals(Problem.LEASE_HELD, e.problem());
    assertEquals("h2", e.holder().orElseThrow().host());
    assertEquals("vms/web-1/lease: held by h2 at epoch 6 (heartbeat 0 ms ago); h1's epoch 5 is older, "
        + "so it cannot take the lease", e.getMessage());
    assertEquals(6, lease.read().orElseThrow().epoch());
  }

  @Test
  void theSameEpochFromAnotherHostIsRefused() {
    lease.acquire("h1", 5);
    LeaseException e = assertThrows(LeaseException.class, () -> lease.acquire("h2", 5));
    assertEquals(Problem.LEASE_HELD, e.problem());
    assertTrue(e.getMessage().contains("held by h1 at epoch 5"), e.getMessage());
  }

  @Test
  void theHolderMayAcquireAgainAndRenew() {
    lease.acquire("h1", 5);
    clock.advanceMillis(700);
    assertEquals(clock.millis(), lease.acquire("h1", 5).heartbeatMillis());
    clock.advanceMillis(300);
    assertEquals(clock.millis(), lease.renew("h1", 5).heartbeatMillis());
    assertEquals(0, lease.read().orElseThrow().heartbeatAgeMillis());
  }

  @Test
  void renewAndCheckFenceAnOwnerThatLostTheLease() {
    lease.acquire("h1", 5);
    lease.check("h1", 5);
    lease.acquire("h2", 6);
    long heartbeat = lease.read().orElseThrow().heartbeatMillis();
    clock.advanceMillis(100);
    LeaseException renew = assertThrows(LeaseException.class, () -> lease.renew("h1", 5));
    assertEquals(Problem.FENCED, renew.problem());
    assertEquals("vms/web-1/lease: h1 at epoch 5 is fenced: the lease is held by h2 at epoch 6 "
        + "(heartbeat 100 ms ago)", renew.getMessage());
    assertEquals(heartbeat, lease.read().orElseThrow().heartbeatMillis(), "a refused renew wrote nothing");
    assertEquals(Problem.FENCED, assertThrows(LeaseException.class, () -> lease.check("h1", 5)).problem());
    assertEquals(Problem.FENCED, assertThrows(LeaseException.class, () -> lease.check("h2", 5)).problem());
    lease.check("h2", 6);
  }

  @Test
  void withoutALeaseEveryoneIsFenced() {
    LeaseException e = assertThrows(LeaseException.class, () -> lease.check("h1", 1));
    assertEquals("vms/web-1/lease: h1 at epoch 1 is fenced: nobody holds the lease", e.getMessage());
    assertThrows(LeaseException.class, () -> lease.renew("h1", 1));
    assertTrue(Files.notExists(vm.path().resolve(VmDirectory.LEASE_FILE)));
  }

  @Test
  void badHostIdsAndEpochsAreRefused() {
    assertEquals(Problem.INVALID_NAME, assertThrows(StorageException.class, () -> lease.acquire("../h1", 1)).problem());
    assertEquals(Problem.INVALID_NAME, assertThrows(StorageException.class, () -> lease.acquire("", 1)).problem());
    assertEquals(Problem.OUT_OF_BOUNDS, assertThrows(StorageException.class, () -> lease.acquire("h1", -1)).problem());
  }

  /**
   * Every round, four threads acquire at the same new epoch while a fifth, a zombie, retries the
   * previous epoch: exactly one of the four wins, each loser is told the winner's name, the zombie
   * always loses, and the lease file names the winner.
   */
  @Test
  void threadsRacingAtTheSameEpochHaveExactlyOneWinner() throws Exception {
    long seed = Seeds.seed("threadsRacingAtTheSameEpochHaveExactlyOneWinner");
    int contenders = 4;
    int rounds = 200;
    lease.acquire("init", 1);
    AtomicReferenceArray<String> outcomes = new AtomicReferenceArray<>(contenders + 1);
    List<String> failures = Collections.synchronizedList(new ArrayList<>());
    long[] round = {2};
    CyclicBarrier start = new CyclicBarrier(contenders + 1);
    CyclicBarrier end = new CyclicBarrier(contenders + 1, () -> {
      checkRound(round[0], outcomes, contenders, failures);
      round[0]++;
    });
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t <= contenders; t++) {
      int id = t;
      Random random = new Random(seed + t);
      threads.add(new Thread(() -> race(id, contenders, rounds, random, start, end, outcomes, failures), "racer-" + t));
    }
    threads.forEach(Thread::start);
    for (Thread thread : threads) {
      thread.join(TimeUnit.SECONDS.toMillis(60));
    }
    assertTrue(failures.isEmpty(), Seeds.replay(seed) + ": " + failures.subList(0, Math.min(5, failures.size())));
    assertEquals(rounds + 2, round[0], Seeds.replay(seed) + ": not every round ran");
  }

  private void race(int id, int contenders, int rounds, Random random, CyclicBarrier start, CyclicBarrier end,
      AtomicReferenceArray<String> outcomes, List<String> failures) {
    boolean zombie = id == contenders;
    String host = zombie ? "zombie" : "h" + id;
    try {
      for (long epoch = 2; epoch < rounds + 2; epoch++) {
        start.await(30, TimeUnit.SECONDS);
        if (random.nextBoolean()) {
          LockSupport.parkNanos(random.nextInt(100_000));
        }
        try {
          lease.acquire(host, zombie ? epoch - 1 : epoch);
          outcomes.set(id, "won");
        } catch (LeaseException e) {
          outcomes.set(id, "lost to " + e.holder().map(LeaseStatus::host).orElse("nobody"));
        }
        end.await(30, TimeUnit.SECONDS);
      }
    } catch (InterruptedException | BrokenBarrierException | TimeoutException e) {
      failures.add(host + " stopped: " + e);
    }
  }

  private void checkRound(long epoch, AtomicReferenceArray<String> outcomes, int contenders, List<String> failures) {
    List<String> winners = new ArrayList<>();
    for (int t = 0; t < contenders; t++) {
      if ("won".equals(outcomes.get(t))) {
        winners.add("h" + t);
      }
    }
    if (winners.size() != 1) {
      failures.add("epoch " + epoch + ": winners " + winners);
      return;
    }
    String winner = winners.get(0);
    for (int t = 0; t < contenders; t++) {
      String outcome = outcomes.get(t);
      if (!outcome.equals("won") && !outcome.equals("lost to " + winner)) {
        failures.add("epoch " + epoch + ": racer " + t + " " + outcome + " but " + winner + " won");
      }
    }
    // The zombie loses to whoever holds the lease when it tries: last round's winner or this one's
    // (in the first round, last round's holder is "init", which took epoch 1 before the race).
    String zombie = outcomes.get(contenders);
    if (!zombie.startsWith("lost to h") && !(epoch == 2 && zombie.equals("lost to init"))) {
      failures.add("epoch " + epoch + ": the zombie at epoch " + (epoch - 1) + " " + zombie);
    }
    LeaseStatus now = lease.read().orElseThrow();
    if (!now.host().equals(winner) || now.epoch() != epoch) {
      failures.add("epoch " + epoch + ": " + winner + " won but the lease says " + now.describe());
    }
  }
}
