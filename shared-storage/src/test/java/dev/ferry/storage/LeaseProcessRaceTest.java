package dev.ferry.storage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two processes race for one lease at the same epoch, round after round, with the parent sending
 * "go" to both at once (in a seeded order): the lease's {@code fcntl} lock must make exactly one of
 * them win each round, as threads in one JVM do in {@link LeaseTest}.
 */
class LeaseProcessRaceTest {
  private static final int ROUNDS = 200;

  @TempDir
  Path root;

  @Test
  void twoProcessesRacingAtTheSameEpochHaveExactlyOneWinner() throws Exception {
    long seed = Seeds.seed("twoProcessesRacingAtTheSameEpochHaveExactlyOneWinner");
    Random random = new Random(seed);
    Lease lease = Datastore.open(root).create(LeaseRacerMain.VM).lease();
    int[] wins = new int[2];
    try (ChildJvm p1 = racer("p1", seed + 1); ChildJvm p2 = racer("p2", seed + 2)) {
      List<ChildJvm> racers = List.of(p1, p2);
      for (ChildJvm racer : racers) {
        assertEquals("ready", racer.nextLine());
      }
      for (int epoch = 1; epoch <= ROUNDS; epoch++) {
        boolean p1First = random.nextBoolean();
        (p1First ? p1 : p2).send("go " + epoch);
        (p1First ? p2 : p1).send("go " + epoch);
        String one = p1.nextLine();
        String two = p2.nextLine();
        boolean oneWon = one.equals(epoch + " won");
        boolean twoWon = two.equals(epoch + " won");
        if (oneWon == twoWon || !(oneWon ? two : one).equals(epoch + " lost")) {
          fail(Seeds.replay(seed) + ": epoch " + epoch + ": p1 said '" + one + "', p2 said '" + two + "'");
        }
        wins[oneWon ? 0 : 1]++;
        LeaseStatus now = lease.read().orElseThrow();
        assertEquals(oneWon ? "p1" : "p2", now.host(), Seeds.replay(seed) + ": epoch " + epoch);
        assertEquals(epoch, now.epoch(), Seeds.replay(seed));
      }
    }
    System.out.println("p1 won " + wins[0] + " rounds, p2 won " + wins[1]);
    assertTrue(wins[0] > 0 && wins[1] > 0, Seeds.replay(seed) + ": one process won every round (" + wins[0]
        + " to " + wins[1] + "), so they never raced");
  }

  private ChildJvm racer(String host, long seed) throws Exception {
    return ChildJvm.start(LeaseRacerMain.class, root, List.of("-Xmx32m"), root.toString(), host, Long.toString(seed));
  }
}
