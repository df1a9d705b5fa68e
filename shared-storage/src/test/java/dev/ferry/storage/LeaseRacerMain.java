package dev.ferry.storage;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.locks.LockSupport;

/**
 * A child process for {@link LeaseProcessRaceTest}: on each "go EPOCH" line, waits a random few
 * microseconds and tries to acquire VM "race"'s lease as its host at that epoch, printing
 * "EPOCH won" or "EPOCH lost". The parent sends "go" to both children at once, so they race.
 *
 * <p>Arguments: datastore root, host id, seed.
 */
public final class LeaseRacerMain {
  static final String VM = "race";
  private static final long JITTER_NANOS_MAX = 200_000;

  private LeaseRacerMain() {}

  public static void main(String[] args) throws IOException {
    Lease lease = Datastore.open(Path.of(args[0])).vm(VM).lease();
    String host = args[1];
    Random random = new Random(Long.parseLong(args[2]));
    lease.read();
    System.out.println("ready");
    System.out.flush();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null && line.startsWith("go ")) {
      long epoch = Long.parseLong(line.substring(3));
      LockSupport.parkNanos(random.nextInt((int) JITTER_NANOS_MAX));
      String outcome;
      try {
        lease.acquire(host, epoch);
        outcome = "won";
      } catch (LeaseException e) {
        outcome = "lost";
      }
      System.out.println(epoch + " " + outcome);
      System.out.flush();
    }
  }
}
