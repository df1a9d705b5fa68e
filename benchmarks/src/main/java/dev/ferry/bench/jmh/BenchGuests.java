package dev.ferry.bench.jmh;

import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.guest.Guest;
import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.guest.Workload;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.WorkloadSpec;

/** The guests the micro-benchmarks take pages from or step. */
final class BenchGuests {
  static final long MEMORY_BYTES = 64L << 20;
  static final int PAGES = (int) (MEMORY_BYTES / GuestMemory.PAGE_BYTES);

  private BenchGuests() {}

  /**
   * A filled, running guest without vCPU threads (the caller steps it): 64 MiB, one vCPU, all of
   * memory its working set (uniform, no hot set), every page of {@code content} (zero, text,
   * random or mixed).
   */
  static Guest manual(String content, long seed) {
    FerryJvm.check();
    GuestSpec spec = GuestSpec.newBuilder().setName("bench-" + content).setMemoryBytes(MEMORY_BYTES).setVcpus(1)
        .setWorkload(WorkloadSpec.newBuilder().setWorkingSetBytes(MEMORY_BYTES)
            .setContent(Workload.namedMix(content)).setSeed(seed))
        .build();
    Guest guest = Guest.manual(spec, Clock.SYSTEM, true);
    // A zero guest's fill writes nothing; commit its pages now so that no page fault is measured.
    guest.memory().populate(0, guest.memory().pageCount());
    return guest;
  }
}
