package dev.ferry.engine.guest;

import dev.ferry.engine.clock.Clock;
import dev.ferry.proto.VcpuState;
import java.util.concurrent.locks.LockSupport;

/**
 * One virtual CPU of the built-in guest. Each step writes one page chosen by the workload; steps
 * are paced to the workload's dirty rate and slowed by the throttle (auto-converge): with a
 * throttle of p percent the vCPU runs 10 ms, then sleeps 10 ms x p / (100 - p), as QEMU does.
 *
 * <p>CPU demand: with a load of F the vCPU computes for the first F x 10 ms of every 10 ms slice
 * and sleeps for the rest (a duty cycle, so its thread's CPU time is F of the wall clock); the
 * steps of the dirty rate run when due, in either part. Both can change while it runs
 * ({@link #setDemand}); pacing starts afresh then.
 *
 * <p>Pause is exact: the vCPU stops between two steps and its state (step counter and generator)
 * says precisely which step comes next, so a restored vCPU continues where this one stopped.
 */
final class Vcpu implements Runnable {
  static final long THROTTLE_SLICE_NANOS = 10_000_000L;
  private static final long BACKLOG_NANOS_MAX = 20_000_000L;
  private static final long IDLE_PARK_NANOS = 10_000_000L;
  private static final int STEPS_PER_CHECK_MAX = 256;
  static final long LOAD_SLICE_NANOS = 10_000_000L;
  /** Iterations of the compute loop between two looks at the clock and the pause flag (well under 1 us). */
  private static final int BURN_CHUNK = 256;

  private final int index;
  private final Workload workload;
  private final GuestMemory memory;
  private final DirtyLog dirtyLog;
  private final Clock clock;
  private volatile double stepsPerSecond;
  private volatile double cpuLoad;
  /** Bumped by every demand change; the vCPU resets its pacing when it sees a new one. */
  private volatile int demandVersion;
  private int demandSeen;
  private long loadSliceStartNanos;
  /** What the compute loop computes (kept so the JIT cannot drop the loop). */
  private long burnState = 0x9E3779B97F4A7C15L;

  // Owned by the running vCPU; others read them only while it is parked (after `parked` is seen).
  private Xoshiro256 rng;
  private long step;
  private long lastStepNanos;
  private long paceStartNanos;
  private long paceSteps;
  private long sliceStartNanos;

  private volatile boolean pauseRequested = true;
  private volatile boolean stopRequested;
  private volatile boolean parked;
  private volatile boolean awaitingFirstStep;
  private volatile long firstStepNanos;
  private volatile int throttlePercent;
  private volatile Thread thread;

  Vcpu(int index, Workload workload, int vcpus, GuestMemory memory, DirtyLog dirtyLog, Clock clock,
      Xoshiro256 rng) {
    this.index = index;
    this.workload = workload;
    this.memory = memory;
    this.dirtyLog = dirtyLog;
    this.clock = clock;
    this.rng = rng;
    this.stepsPerSecond = stepsPerSecond(workload, vcpus);
    this.cpuLoad = workload.cpuLoad();
  }

  private static double stepsPerSecond(Workload workload, int vcpus) {
    return workload.dirtyRateBytesPerSecond() / (double) GuestMemory.PAGE_BYTES / vcpus;
  }

  /** Takes the (validated) workload's dirty rate and CPU load from now on; the pages it writes stay the same. */
  void setDemand(Workload changed, int vcpus) {
    stepsPerSecond = stepsPerSecond(changed, vcpus);
    cpuLoad = changed.cpuLoad();
    demandVersion++;
    unpark();
  }

  int index() {
    return index;
  }

  /** Performs one step: choose a page and content, write it, mark it dirty. */
  void step() {
    int page = workload.choosePage(rng);
    PageKind kind = workload.chooseContent(rng);
    memory.beforeWrite(page);
    PageContent.write(kind, memory.pageAddress(page), rng);
    dirtyLog.mark(page);
    step++;
    long now = clock.nanoTime();
    lastStepNanos = now;
    if (awaitingFirstStep) {
      awaitingFirstStep = false;
      firstStepNanos = now;
    }
  }

  /** Runs {@code steps} steps on the caller's thread (the simulation drives vCPUs this way). */
  void runSteps(long steps) {
    for (long i = 0; i < steps; i++) {
      step();
    }
  }

  @Override
  public void run() {
    thread = Thread.currentThread();
    while (!stopRequested) {
      if (pauseRequested) {
        parkWhilePaused();
        continue;
      }
      long now = clock.nanoTime();
      int version = demandVersion;
      if (version != demandSeen) {
        demandSeen = version;
        resetPacing(now);
      }
      if (throttlePercent > 0 && now - sliceStartNanos >= THROTTLE_SLICE_NANOS) {
        sleepForThrottle(now);
        continue;
      }
      if (!RunPermit.allows(now)) {
        // No permit: the cluster may have restarted this VM elsewhere; the agent powers it off.
        LockSupport.parkNanos(this, IDLE_PARK_NANOS);
        continue;
      }
      runSlice(now);
    }
    parked = true;
  }

  /**
   * Runs the steps due by now, then computes until the next step if this is the busy part of the
   * load slice, or sleeps until the next step or slice.
   */
  private void runSlice(long now) {
    double rate = stepsPerSecond;
    long nextStep = rate > 0 ? runDueSteps(now, rate) : Long.MAX_VALUE;
    if (pauseRequested) {
      return;
    }
    double load = cpuLoad;
    long after = clock.nanoTime();
    if (after - loadSliceStartNanos >= LOAD_SLICE_NANOS) {
      loadSliceStartNanos = after; // a new slice; one overslept is not made up for
    }
    long busyUntil = loadSliceStartNanos + (long) (load * LOAD_SLICE_NANOS);
    if (load > 0 && after < busyUntil) {
      burnUntil(Math.min(busyUntil, nextStep));
      return;
    }
    long wakeAt = Math.min(nextStep, load > 0 ? loadSliceStartNanos + LOAD_SLICE_NANOS : Long.MAX_VALUE);
    long sleep = wakeAt == Long.MAX_VALUE ? IDLE_PARK_NANOS : wakeAt - after;
    if (sleep > 0) {
      LockSupport.parkNanos(this, sleep);
    }
  }

  /** Runs the steps due by {@code now} (a bounded batch); returns when the next one is due. */
  private long runDueSteps(long now, double rate) {
    long due = paceStartNanos + (long) (paceSteps * 1e9 / rate);
    if (now - due > BACKLOG_NANOS_MAX) {
      resetPacing(now); // behind after a throttle sleep or a stall: do not burst to catch up
      due = now;
    }
    int budget = STEPS_PER_CHECK_MAX;
    while (due <= now && budget-- > 0 && !pauseRequested && RunPermit.allows(clock.nanoTime())) {
      step();
      paceSteps++;
      due = paceStartNanos + (long) (paceSteps * 1e9 / rate);
    }
    return due;
  }

  /** Computes (the guest's CPU demand) until {@code until}, a pause, a stop or a new demand. */
  private void burnUntil(long until) {
    long x = burnState;
    int version = demandSeen;
    while (!pauseRequested && !stopRequested && demandVersion == version) {
      for (int i = 0; i < BURN_CHUNK; i++) {
        x ^= x << 13;
        x ^= x >>> 7;
        x ^= x << 17;
      }
      if (clock.nanoTime() >= until) {
        break;
      }
    }
    burnState = x;
  }

  private void sleepForThrottle(long now) {
    int percent = throttlePercent;
    long sleepNanos = THROTTLE_SLICE_NANOS * percent / (100 - percent);
    long until = now + sleepNanos;
    while (!pauseRequested && !stopRequested && throttlePercent > 0) {
      long left = until - clock.nanoTime();
      if (left <= 0) {
        break;
      }
      LockSupport.parkNanos(this, left);
    }
    long after = clock.nanoTime();
    sliceStartNanos = after;
    resetPacing(after);
  }

  private void parkWhilePaused() {
    parked = true;
    while (pauseRequested && !stopRequested) {
      LockSupport.park(this);
    }
    parked = false;
    long now = clock.nanoTime();
    resetPacing(now);
    sliceStartNanos = now;
  }

  private void resetPacing(long now) {
    paceStartNanos = now;
    paceSteps = 0;
  }

  /** Threaded mode: asks the vCPU to stop after its current step. */
  void requestPause() {
    pauseRequested = true;
    unpark();
  }

  /** Threaded mode: true once the vCPU is stopped between steps. */
  boolean isParked() {
    return parked;
  }

  /** Lets a paused vCPU run again; its first step records the time. */
  void resume() {
    awaitingFirstStep = true;
    firstStepNanos = 0;
    pauseRequested = false;
    unpark();
  }

  void requestStop() {
    stopRequested = true;
    unpark();
  }

  private void unpark() {
    Thread t = thread;
    if (t != null) {
      LockSupport.unpark(t);
    }
  }

  void setThrottlePercent(int percent) {
    if (percent < 0 || percent > 99) {
      throw new IllegalArgumentException("throttle must be 0..99 percent: " + percent);
    }
    this.throttlePercent = percent;
    unpark();
  }

  int throttlePercent() {
    return throttlePercent;
  }

  long lastStepNanos() {
    return lastStepNanos;
  }

  long firstStepNanos() {
    return firstStepNanos;
  }

  long steps() {
    return step;
  }

  VcpuState save() {
    long[] s = rng.state();
    return VcpuState.newBuilder().setIndex(index).setStep(step)
        .setRngS0(s[0]).setRngS1(s[1]).setRngS2(s[2]).setRngS3(s[3]).build();
  }

  void restore(VcpuState state) {
    if (state.getIndex() != index) {
      throw new IllegalArgumentException("vCPU state for index " + state.getIndex() + " given to vCPU " + index);
    }
    this.rng = new Xoshiro256(state.getRngS0(), state.getRngS1(), state.getRngS2(), state.getRngS3());
    this.step = state.getStep();
  }
}
