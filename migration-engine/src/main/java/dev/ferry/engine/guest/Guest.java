package dev.ferry.engine.guest;

import dev.ferry.engine.clock.Clock;
import dev.ferry.common.InvalidConfigException;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.GuestState;
import dev.ferry.proto.VcpuState;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Pattern;

/**
 * The built-in guest: off-heap memory with a dirty log, and vCPU threads running a workload.
 *
 * <p>Lifecycle: {@link #boot} fills memory and starts the vCPUs (RUNNING); {@link #incoming}
 * allocates zeroed memory for a migration target, paused until {@link #restoreState} and
 * {@link #resume}; {@link #destroy} stops the vCPUs and frees memory once no engine holds it.
 * State changes are serialised on the guest.
 */
public final class Guest {
  public static final int VCPUS_MAX = 64;
  public static final int STATE_FORMAT_VERSION = 1;
  private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9-]{0,62}");
  private static final long PAUSE_TIMEOUT_NANOS = 5_000_000_000L;
  private static final long FILL_SEED_SALT = 0x46494C4CL;
  private static final int PREFAULT_CHUNK_PAGES = 4096;

  /** The guest's lifecycle; which operation is legal in which state is checked by each method. */
  public enum State { RUNNING, PAUSED, DESTROYED }

  /** When the vCPUs stopped: the last step before the pause (or the pause itself if none ran). */
  public record PauseInfo(long lastStepNanos, long pausedNanos) {}

  /**
   * Told when a guest's vCPUs start and stop running: {@code started} before they are released,
   * {@code stopped} once every one of them has stopped, so the span between covers every step.
   * Called on the thread that changes the state, inside the guest's lock: keep it short.
   */
  public interface RunObserver {
    RunObserver NONE = new RunObserver() {
      @Override
      public void started(String guest) {
      }

      @Override
      public void stopped(String guest) {
      }
    };

    void started(String guest);

    void stopped(String guest);
  }

  /** One per process: an agent sets it to record where its guests ran (the it-tests check it). */
  private static volatile RunObserver runObserver = RunObserver.NONE;

  /** Every guest in this process reports its runs to {@code observer} from now on. */
  public static void observeRuns(RunObserver observer) {
    runObserver = observer == null ? RunObserver.NONE : observer;
  }

  /** Replaced (demand only) by {@link #setDemand}; everything else in it is fixed for the guest's life. */
  private volatile GuestSpec spec;
  private volatile Workload workload;
  private final GuestMemory memory;
  private final DirtyLog dirtyLog;
  private final Vcpu[] vcpus;
  private final Thread[] threads;
  private final Clock clock;
  private State state = State.PAUSED;
  private long resumedNanos;

  private Guest(GuestSpec spec, Workload workload, GuestMemory memory, Clock clock, boolean threaded) {
    PageContent.load();
    this.spec = spec;
    this.workload = workload;
    this.memory = memory;
    this.clock = clock;
    this.dirtyLog = new DirtyLog(memory.pageCount());
    this.vcpus = new Vcpu[spec.getVcpus()];
    this.threads = threaded ? new Thread[vcpus.length] : null;
    long seed = spec.getWorkload().getSeed();
    for (int i = 0; i < vcpus.length; i++) {
      vcpus[i] = new Vcpu(i, workload, vcpus.length, memory, dirtyLog, clock,
          new Xoshiro256(seed * 0x9E3779B97F4A7C15L + i + 1));
      if (threaded) {
        threads[i] = new Thread(vcpus[i], "vcpu-" + spec.getName() + "-" + i);
        threads[i].setDaemon(true);
        threads[i].start();
      }
    }
  }

  /**
   * Loads what the first guest would otherwise load on the spot: the POSIX bindings (JNR builds its
   * stubs, ~1-2 s) and the text corpus. An agent calls it at start-up so that neither the first
   * incoming migration's handshake nor its first vCPU step waits for them.
   */
  public static String preload() {
    PageContent.load();
    String how = AnonymousMemory.describe();
    // One throwaway guest loads the rest (Chronicle's stores alone take ~100 ms the first time).
    Guest probe = incoming(GuestSpec.newBuilder().setName("preload").setMemoryBytes(GuestMemory.MEMORY_BYTES_MIN)
        .setVcpus(1).setWorkload(dev.ferry.proto.WorkloadSpec.newBuilder().setContent(Workload.namedMix("zero")))
        .build(), Clock.SYSTEM);
    probe.destroy();
    return how;
  }

  /** Validates a spec from outside; every error names the field. */
  public static Workload validate(GuestSpec spec) {
    if (!NAME.matcher(spec.getName()).matches()) {
      throw new InvalidConfigException("name",
          "'" + spec.getName() + "' must be 1-63 lower-case letters, digits or '-', starting with a letter or digit");
    }
    InvalidConfigException.requireRange("vcpus", spec.getVcpus(), 1, VCPUS_MAX);
    GuestMemory.validateSize("memory_bytes", spec.getMemoryBytes());
    if (spec.getKvPort() != 0) {
      InvalidConfigException.requireRange("kv_port", spec.getKvPort(), 1024, 65535);
    }
    return Workload.from(spec.getWorkload(), spec.getMemoryBytes());
  }

  /** Creates a guest, fills its memory from the workload's content mix and starts its vCPUs. */
  public static Guest boot(GuestSpec spec, Clock clock) {
    return boot(spec, clock, MemoryPool.NONE);
  }

  /** As above, with memory from {@code pool}. */
  public static Guest boot(GuestSpec spec, Clock clock, MemoryPool pool) {
    Workload workload = validate(spec);
    GuestMemory memory = GuestMemory.allocate(spec.getMemoryBytes(), pool);
    fill(memory, workload, spec.getWorkload().getSeed());
    Guest guest = new Guest(spec, workload, memory, clock, true);
    guest.resume();
    return guest;
  }

  /** A migration target: zeroed memory, vCPUs paused until the state arrives. */
  public static Guest incoming(GuestSpec spec, Clock clock) {
    return incoming(spec, clock, MemoryPool.NONE);
  }

  /** As above, with memory from {@code pool}. */
  public static Guest incoming(GuestSpec spec, Clock clock, MemoryPool pool) {
    Workload workload = validate(spec);
    return new Guest(spec, workload, GuestMemory.allocate(spec.getMemoryBytes(), pool), clock, true);
  }

  /**
   * A guest whose vCPUs have no threads: the caller runs their steps with {@link #runSteps}.
   * The seeded simulation uses it to make every run replayable.
   */
  public static Guest manual(GuestSpec spec, Clock clock, boolean filled) {
    Workload workload = validate(spec);
    GuestMemory memory = GuestMemory.allocate(spec.getMemoryBytes());
    if (filled) {
      fill(memory, workload, spec.getWorkload().getSeed());
    }
    Guest guest = new Guest(spec, workload, memory, clock, false);
    guest.state = filled ? State.RUNNING : State.PAUSED;
    return guest;
  }

  private static void fill(GuestMemory memory, Workload workload, long seed) {
    Xoshiro256 rng = new Xoshiro256(seed ^ FILL_SEED_SALT);
    for (int page = 0; page < memory.pageCount(); page++) {
      PageKind kind = workload.chooseContent(rng);
      if (kind != PageKind.ZERO) {
        PageContent.write(kind, memory.pageAddress(page), rng);
      }
    }
  }

  public GuestSpec spec() {
    return spec;
  }

  /**
   * Changes the guest's demand while it runs (or waits): its CPU load per vCPU (0-1) and dirty
   * rate. Validated first (errors name the field); the pages it writes, its generators and so its
   * determinism are unchanged. {@link #spec()} shows the new values from then on.
   */
  public synchronized void setDemand(double cpuLoad, long dirtyRateBytesPerS) {
    requireNotDestroyed("change the demand");
    Workload changed = workload.withDemand(cpuLoad, dirtyRateBytesPerS, spec.getMemoryBytes());
    workload = changed;
    spec = spec.toBuilder().setWorkload(changed.spec()).build();
    for (Vcpu v : vcpus) {
      v.setDemand(changed, vcpus.length);
    }
  }

  public String name() {
    return spec.getName();
  }

  public GuestMemory memory() {
    return memory;
  }

  public DirtyLog dirtyLog() {
    return dirtyLog;
  }

  public synchronized State state() {
    return state;
  }

  /** Manual mode only: runs {@code steps} steps of each vCPU unless paused. */
  public synchronized void runSteps(long steps) {
    if (threads != null) {
      throw new IllegalStateException("runSteps is for guests created with Guest.manual");
    }
    if (state == State.RUNNING) {
      for (Vcpu v : vcpus) {
        v.runSteps(steps);
      }
    }
  }

  /** Stops every vCPU between two steps; returns when all have stopped. */
  public synchronized PauseInfo pause() {
    requireNotDestroyed("pause");
    if (state == State.PAUSED) {
      return new PauseInfo(lastStepNanos(), clock.nanoTime());
    }
    for (Vcpu v : vcpus) {
      v.requestPause();
    }
    if (threads != null) {
      long deadline = clock.nanoTime() + PAUSE_TIMEOUT_NANOS;
      for (Vcpu v : vcpus) {
        while (!v.isParked()) {
          if (clock.nanoTime() > deadline) {
            throw new IllegalStateException("vCPU " + v.index() + " of " + name() + " did not stop within 5 s");
          }
          Thread.onSpinWait();
        }
      }
    }
    long paused = clock.nanoTime();
    state = State.PAUSED;
    runObserver.stopped(name());
    long last = lastStepNanos();
    return new PauseInfo(last == 0 ? paused : last, paused);
  }

  private long lastStepNanos() {
    long last = 0;
    for (Vcpu v : vcpus) {
      last = Math.max(last, v.lastStepNanos());
    }
    return last;
  }

  /** Lets every vCPU run again from its current state. */
  public synchronized void resume() {
    requireNotDestroyed("resume");
    if (state == State.RUNNING) {
      return;
    }
    resumedNanos = clock.nanoTime();
    state = State.RUNNING;
    runObserver.started(name());
    for (Vcpu v : vcpus) {
      v.resume();
    }
  }

  /** When the guest last resumed. */
  public synchronized long resumedNanos() {
    return resumedNanos;
  }

  /** The first vCPU step since the last resume, or 0 if none has run yet. */
  public long firstStepNanosAfterResume() {
    long first = 0;
    for (Vcpu v : vcpus) {
      long t = v.firstStepNanos();
      if (t != 0 && (first == 0 || t < first)) {
        first = t;
      }
    }
    return first;
  }

  public void setThrottlePercent(int percent) {
    for (Vcpu v : vcpus) {
      v.setThrottlePercent(percent);
    }
  }

  public int throttlePercent() {
    return vcpus[0].throttlePercent();
  }

  /** Total steps run by all vCPUs; exact while paused. */
  public long steps() {
    long total = 0;
    for (Vcpu v : vcpus) {
      total += v.steps();
    }
    return total;
  }

  /** The vCPU state; only while paused, so it names an exact step. */
  public synchronized GuestState saveState() {
    requireState(State.PAUSED, "save state");
    GuestState.Builder b = GuestState.newBuilder().setFormatVersion(STATE_FORMAT_VERSION);
    for (Vcpu v : vcpus) {
      b.addVcpus(v.save());
    }
    return b.build();
  }

  /** Restores vCPU state saved on another host; validated before anything changes. */
  public synchronized void restoreState(GuestState saved) {
    requireState(State.PAUSED, "restore state");
    if (saved.getFormatVersion() != STATE_FORMAT_VERSION) {
      throw new InvalidConfigException("device_state.state.format_version",
          "unsupported guest state format " + saved.getFormatVersion() + " (this agent reads " + STATE_FORMAT_VERSION + ")");
    }
    if (saved.getVcpusCount() != vcpus.length) {
      throw new InvalidConfigException("device_state.state.vcpus",
          "state has " + saved.getVcpusCount() + " vCPUs, guest " + name() + " has " + vcpus.length);
    }
    for (int i = 0; i < vcpus.length; i++) {
      VcpuState s = saved.getVcpus(i);
      if (s.getIndex() != i || (s.getRngS0() | s.getRngS1() | s.getRngS2() | s.getRngS3()) == 0) {
        throw new InvalidConfigException("device_state.state.vcpus[" + i + "]", "bad vCPU index or generator state");
      }
    }
    for (int i = 0; i < vcpus.length; i++) {
      vcpus[i].restore(saved.getVcpus(i));
    }
  }

  /**
   * Starts a digest of memory as it is now that completes while the guest keeps running
   * (copy-on-write of the pages it rewrites meanwhile). Call while paused, before resuming.
   */
  public CompletableFuture<byte[]> startSnapshotDigest() {
    PendingDigest pending = beginSnapshotDigest();
    pending.start();
    return pending.result();
  }

  /**
   * Fixes the digest's instant (installs copy-on-write) without starting to read memory yet: a
   * migration target resumes the guest first and starts the reading once the vCPUs run, so the
   * digest never competes with the guest's first steps for a CPU.
   */
  public PendingDigest beginSnapshotDigest() {
    PendingDigest pending = prepareSnapshotDigest();
    pending.install();
    return pending;
  }

  /**
   * Allocates a digest's bookkeeping (a word per page) without fixing its instant: a migration
   * target does this before the pause, so that inside it {@link PendingDigest#install()} costs
   * only a pointer store.
   */
  public PendingDigest prepareSnapshotDigest() {
    requireNotDestroyed("prepare a snapshot digest");
    return new PendingDigest(this, new SnapshotDigest(memory), memory, "digest-" + name());
  }

  /**
   * A digest of memory at one instant: {@link #install()} fixes the instant (copy-on-write from
   * then on), {@link #start()} reads memory on a background thread, {@link #cancel()} drops it.
   */
  public static final class PendingDigest {
    private final Guest guest;
    private final SnapshotDigest digest;
    private final GuestMemory memory;
    private final String threadName;
    private boolean installed;
    private boolean started;

    private PendingDigest(Guest guest, SnapshotDigest digest, GuestMemory memory, String threadName) {
      this.guest = guest;
      this.digest = digest;
      this.memory = memory;
      this.threadName = threadName;
    }

    /** Fixes the digest's instant: memory as it is now. The guest must be paused. O(1). */
    public synchronized void install() {
      synchronized (guest) {
        guest.requireState(State.PAUSED, "start a snapshot digest");
        if (installed) {
          return;
        }
        if (!memory.installSnapshot(digest)) {
          throw new IllegalStateException("a snapshot digest of " + guest.name() + " is already running");
        }
        memory.retain();
        installed = true;
      }
    }

    public synchronized void start() {
      if (started || !installed) {
        return;
      }
      started = true;
      Thread t = new Thread(() -> {
        try {
          digest.run();
        } finally {
          memory.release();
        }
      }, threadName);
      t.setDaemon(true);
      t.start();
    }

    /** Drops a digest that will not run (the migration failed): the memory is no longer held for it. */
    public synchronized void cancel() {
      if (started) {
        return;
      }
      started = true;
      if (installed) {
        memory.clearSnapshot(digest);
        memory.release();
      }
      digest.result().cancel(false);
    }

    public CompletableFuture<byte[]> result() {
      return digest.result();
    }
  }

  /** CPU time the vCPU threads have used so far, in nanoseconds (0 for a guest without threads). */
  public long vcpuCpuNanos() {
    if (threads == null) {
      return 0;
    }
    java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
    long total = 0;
    for (Thread t : threads) {
      long cpu = mx.getThreadCpuTime(t.getId());
      total += Math.max(0, cpu);
    }
    return total;
  }

  /**
   * Commits every page of memory on a background thread, in page order and without changing
   * content, so an incoming migration's writes do not stall on page faults. Stops early if the
   * guest is destroyed.
   */
  public void prefaultInBackground() {
    if (!memory.isFresh()) {
      return; // pooled memory is present already
    }
    memory.retain();
    Thread t = new Thread(() -> {
      try {
        int chunk = PREFAULT_CHUNK_PAGES;
        for (int page = 0; page < memory.pageCount() && state() != State.DESTROYED; page += chunk) {
          if (!memory.populate(page, Math.min(chunk, memory.pageCount() - page))) {
            return;
          }
        }
      } finally {
        memory.release();
      }
    }, "prefault-" + name());
    t.setDaemon(true);
    t.start();
  }

  /** Stops the vCPUs and gives back the guest's reference to its memory. Idempotent. */
  public void destroy() {
    boolean wasRunning;
    synchronized (this) {
      if (state == State.DESTROYED) {
        return;
      }
      wasRunning = state == State.RUNNING;
      state = State.DESTROYED;
      for (Vcpu v : vcpus) {
        v.requestStop();
      }
    }
    if (threads != null) {
      for (Thread t : threads) {
        try {
          t.join(PAUSE_TIMEOUT_NANOS / 1_000_000L);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        if (t.isAlive()) {
          // Unmapping under a running vCPU would crash the agent: keep the memory (a leak, logged).
          org.slf4j.LoggerFactory.getLogger(Guest.class)
              .error("vCPU thread {} did not stop; guest {} memory is not freed", t.getName(), name());
          return; // and it never stops running as far as the observer knows
        }
      }
    }
    if (wasRunning) {
      runObserver.stopped(name());
    }
    memory.release();
  }

  private void requireNotDestroyed(String action) {
    if (state == State.DESTROYED) {
      throw new IllegalStateException("cannot " + action + ": guest " + name() + " is destroyed");
    }
  }

  private void requireState(State expected, String action) {
    if (state != expected) {
      throw new IllegalStateException("cannot " + action + ": guest " + name() + " is " + state
          + ", must be " + expected);
    }
  }
}
