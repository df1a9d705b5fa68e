package dev.ferry.bench.jmh;

import dev.ferry.engine.guest.Guest;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * One vCPU step of the built-in guest: choose a page and a content kind, write the 4 KiB page,
 * mark it dirty, read the clock. The guest must be able to dirty at least 1 GiB/s on one core,
 * i.e. a step must take under 4096 B / 1 GiB/s = 3.81 us; GiB/s = 4096 / (ns/op) / 1.074.
 */
public class GuestStepBenchmark extends FerryBenchmark {

  /** A manual (threadless) 64 MiB guest, one vCPU, the whole memory its working set. */
  @State(Scope.Thread)
  public static class Running {
    @Param({"zero", "text", "random"})
    public String content;

    Guest guest;
    long stepsBefore;

    @Setup(Level.Trial)
    public void setUp() {
      FerryJvm.check();
      guest = BenchGuests.manual(content, 51);
      stepsBefore = guest.steps();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      try {
        if (guest.steps() == stepsBefore) {
          throw new IllegalStateException("the guest ran no step: is it RUNNING? (" + guest.state() + ")");
        }
      } finally {
        guest.destroy();
      }
    }
  }

  @Benchmark
  public void step(Running s) {
    s.guest.runSteps(1);
  }
}
