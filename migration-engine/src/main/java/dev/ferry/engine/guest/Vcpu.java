package dev.ferry.engine.guest;

import dev.ferry.engine.clock.Clock;
import dev.ferry.proto.VcpuState;
import java.util.concurrent.locks.LockSupport;

/**
 * One virtual CPU of the built-in guest. Each step writes one page chosen by the workload; steps
 * are paced to the workload's dirty rate and slowed by the throttle (auto-converge): with a
 * throttle of p percent the vCPU runs 10 ms, then sleeps 10 ms x p / (100 - p), as QEMU does.
 *
 * <p>Pause is exact: the vCPU stops between two steps and its state (step counter and generator)
 * says precisely which step comes next, so a restored vCPU continues where this one stopped.
 */
final class Vcpu implements Runnable {
  static final long THROTTLE_SLICE_NANOS = 10_000_000L;
  private static final long BACKLOG_NANOS_MAX = 20_000_000L;
  private static final long IDLE_PARK_NANOS = 10_000_000L;
  private static final int STEPS_PER_CHECK_MAX = 256;

  private final int index;
  private final Workload workload;
  private final GuestMemory memory;
  private final DirtyLog dirtyLog;
  private final Clock clock;
  private final double stepsPerSecond;

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
    this.stepsPerSecond = workload.dirtyRateBytesPerSecond() / (double) GuestMemory.PAGE_BYTES / vcpus;
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
      if (throttlePercent > 0 && now - sliceStartNanos >= THROTTLE_SLICE_NANOS) {
        sleepForThrottle(now);
        continue;
      }
      if (stepsPerSecond <= 0 || !RunPermit.allows(now)) {
        // No permit: the cluster may have restarted this VM elsewhere; the agent powers it off.
        LockSupport.parkNanos(this, IDLE_PARK_NANOS);
        continue;
      }
      runDueSteps(now);
    }
    parked = true;
  }

  private void runDueSteps(long now) {
    long due = paceStartNanos + (long) (paceSteps * 1e9 / stepsPerSecond);
    if (now - due > BACKLOG_NANOS_MAX) {
      resetPacing(now); // behind after a throttle sleep or a stall: do not burst to catch up
      due = now;
    }
    int budget = STEPS_PER_CHECK_MAX;
    while (due <= now && budget-- > 0 && !pauseRequested && RunPermit.allows(clock.nanoTime())) {
      step();
      paceSteps++;
      due = paceStartNanos + (long) (paceSteps * 1e9 / stepsPerSecond);
    }
    if (due > now && !pauseRequested) {
      LockSupport.parkNanos(this, due - now);
    }
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
