package dev.ferry.engine.precopy;

import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.clock.CpuTime;
import dev.ferry.engine.guest.Guest;
import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.guest.MemoryDigest;
import dev.ferry.engine.guest.PageBitmap;
import dev.ferry.engine.wire.PageBatchWriter;
import dev.ferry.engine.wire.ProtocolException;
import dev.ferry.engine.wire.Wire;
import com.google.protobuf.ByteString;
import dev.ferry.proto.Abort;
import dev.ferry.proto.Auth;
import dev.ferry.proto.Control;
import dev.ferry.proto.DeviceState;
import dev.ferry.proto.GuestState;
import dev.ferry.proto.Hello;
import dev.ferry.proto.MigrationProgress;
import dev.ferry.proto.MigrationReport;
import dev.ferry.proto.PauseStep;
import dev.ferry.proto.Resumed;
import dev.ferry.proto.RoundEnd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The source side of one pre-copy migration, run on its own thread by {@link #run()}:
 * handshake, round 0 (every non-zero page), rounds of dirtied pages until {@link PrecopyPolicy}
 * says switch over, stop-and-copy (pause, last pages, vCPU state), then the commit.
 *
 * <p>Until the commit is sent, any failure — the policy, a timeout, a cancel, the target's abort,
 * a lost link — resumes the guest here and tells the target to free its copy. After the commit is
 * sent only the target's confirmation completes the migration; without it the outcome is UNKNOWN
 * and the guest stays paused here, so it never runs on two hosts.
 */
public final class SourceMigration {
  /** How long a failed link is still read for the target's reason. */
  private static final long ABORT_READ_BACK_NANOS = 500_000_000L;
  private static final Logger LOG = LoggerFactory.getLogger(SourceMigration.class);
  private static final long POLL_SLICE_NANOS = 10_000_000L;
  /** Longer than the target's own wait (2 s), so its answer always arrives. */
  private static final long FIRST_STEP_WAIT_NANOS = 3_000_000_000L;
  private static final long SAMPLE_NANOS_MIN = 5_000_000L;
  private static final long PROGRESS_EVERY_NANOS = 250_000_000L;
  /** Known-incompressible pages are retried after this many rounds (their content may have changed). */
  private static final int INCOMPRESSIBLE_FORGET_ROUNDS = 8;

  /** Receives progress at most every 250 ms, and at every phase change. */
  public interface Listener {
    void onProgress(MigrationProgress progress);
  }

  private final String migrationId;
  private final String sourceHost;
  private final Guest guest;
  private final SourceLink link;
  private final MigrationSettings settings;
  private final Clock clock;
  private final Listener listener;
  private final MigrationFailpoints failpoints;
  private final byte[] secret;
  private final CutoverAuthority authority;
  private final GuestMemory memory;
  private final PageBatchWriter writer;
  private final CompressionGovernor governor;
  private final BandwidthMeter meter = new BandwidthMeter();
  private final PageBitmap toSend;
  private final PageBitmap incompressible;

  private volatile MigrationPhase phase = MigrationPhase.SETUP;
  private volatile String cancelReason;
  private long startNanos;
  /** When the target confirmed the commit: the end of the migration (the digest after it is not counted). */
  private long completedNanos;
  /** When the pause happened and the DeviceState left (the source's pause steps). */
  private long[] switchover = new long[2];
  /** The message hop inside the pause (DeviceState), for the log; cross-clock, so one host only. */
  private String hops = "";
  /** The downtime budget as split for this migration (set when the pre-copy starts). */
  private DowntimeBudget budget;
  /** When the migration was accepted (the API or the agent's request); 0: the engine's start. */
  private volatile long acceptedNanos;
  private long firstPageNanos;
  private CpuTime cpu = CpuTime.NONE;
  private long cpuStartNanos;
  private long cpuNanos;
  private int round;
  private long guestBytesQueued;
  private long blockedNanos;
  private long pagesZero;
  private long pagesRaw;
  private long pagesLz4;
  private long pagesSent;
  private long lastSampleNanos;
  private long lastSampleFlushed;
  private long lastProgressNanos;
  private long lastFlushed;
  private long lastFlushChangeNanos;
  private long remainingBytes;
  private long dirtyRateBytesPerSecond;
  private long expectedDowntimeMillis = Long.MAX_VALUE; // unknown until the first round is measured
  private int throttleMax;
  private boolean paused;

  public SourceMigration(String migrationId, String sourceHost, Guest guest, SourceLink link,
      MigrationSettings settings, Clock clock, Listener listener, MigrationFailpoints failpoints) {
    this(migrationId, sourceHost, guest, link, settings, clock, listener, failpoints, null, CutoverAuthority.LOCAL);
  }

  /**
   * @param secret the migration's secret both agents prove in the handshake (null: none, between
   *     agents driven by hand)
   * @param authority who makes the move permanent
   */
  public SourceMigration(String migrationId, String sourceHost, Guest guest, SourceLink link,
      MigrationSettings settings, Clock clock, Listener listener, MigrationFailpoints failpoints, byte[] secret,
      CutoverAuthority authority) {
    this.secret = secret == null ? null : secret.clone();
    this.authority = authority;
    this.migrationId = migrationId;
    this.sourceHost = sourceHost;
    this.guest = guest;
    this.link = link;
    this.settings = settings;
    this.clock = clock;
    this.listener = listener;
    this.failpoints = failpoints;
    this.memory = guest.memory();
    this.writer = new PageBatchWriter(memory);
    this.governor = new CompressionGovernor(settings.compression());
    this.toSend = new PageBitmap(memory.pageCount());
    this.incompressible = new PageBitmap(memory.pageCount());
  }

  public String migrationId() {
    return migrationId;
  }

  public MigrationPhase phase() {
    return phase;
  }

  /**
   * When the migration was accepted, on this clock, for {@code setup_ms} (acceptance to the first
   * page on the wire); without it the setup is counted from {@link #run()}.
   */
  public SourceMigration acceptedAt(long nanos) {
    this.acceptedNanos = nanos;
    return this;
  }

  /** Measures the CPU this migration costs with {@code cpu} (minus the guest's vCPU threads). */
  public SourceMigration measuringCpu(CpuTime cpu) {
    this.cpu = cpu;
    return this;
  }

  /**
   * Asks the migration to stop and leave the guest running here. Only possible before the commit;
   * returns false (and changes nothing) once it is too late.
   */
  public boolean cancel(String reason) {
    if (!phase.sourceOwnsGuest()) {
      return false;
    }
    cancelReason = reason;
    return true;
  }

  /** Runs the migration to its end on the calling thread and reports how it went. */
  public MigrationReport run() {
    startNanos = clock.nanoTime();
    cpuStartNanos = cpu.processNanos() - guest.vcpuCpuNanos();
    budget = DowntimeBudget.split(settings.maxDowntimeMillis(), authority.expectedCostMillis());
    lastFlushChangeNanos = startNanos;
    memory.retain();
    MigrationReport.Builder report = MigrationReport.newBuilder().setMigrationId(migrationId)
        .setMemoryBytes(memory.sizeBytes());
    try {
      migrate(report);
    } catch (MigrationFailure failure) {
      failBeforeCommit(report, failure.phase, failure.getMessage());
    } catch (LinkException | ProtocolException e) {
      String why = e instanceof LinkException ? abortFromTarget() : null;
      failBeforeCommit(report, MigrationPhase.ABORTED, why != null ? why : describe(e));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      failBeforeCommit(report, MigrationPhase.ABORTED, "interrupted: the agent is shutting down");
    } catch (RuntimeException e) {
      LOG.error("migration {} failed unexpectedly", migrationId, e);
      failBeforeCommit(report, MigrationPhase.ABORTED, "internal error: " + e);
    } finally {
      link.close();
      writer.close();
      memory.release();
    }
    return finishReport(report);
  }

  private void migrate(MigrationReport.Builder report) throws InterruptedException {
    handshake();
    moveTo(MigrationPhase.PRECOPY);
    precopy();
    moveTo(MigrationPhase.STOP_AND_COPY);
    Guest.PauseInfo pause = guest.pause();
    paused = true;
    failpoints.hit(MigrationFailpoints.Point.AFTER_PAUSE);
    report.setSourceLastStepNanos(pause.lastStepNanos());
    PageBitmap fresh = new PageBitmap(memory.pageCount());
    guest.dirtyLog().fetchAndClear(fresh);
    toSend.or(fresh);
    int finalPages = toSend.count();
    report.setFinalPages(finalPages);
    sendRound(round + 1, false);
    GuestState state = guest.saveState();
    report.setStateAtPause(state);
    // From the DeviceState on, the target decides: it checks the pages, commits and resumes. This
    // side no longer owns the guest until it has proof that the target cannot run it.
    moveTo(MigrationPhase.CUTOVER);
    switchover[0] = pause.pausedNanos();
    awaitOutcome(report, Control.newBuilder().setDeviceState(
        DeviceState.newBuilder().setState(state).setPagesSentTotal(pagesSent)).build());
  }

  private void handshake() throws InterruptedException {
    byte[] nonce = MigrationSecrets.nonce();
    link.sendControl(Control.newBuilder().setHello(Hello.newBuilder()
        .setProtocolVersion(Wire.PROTOCOL_VERSION).setMigrationId(migrationId).setSourceHost(sourceHost)
        .setGuest(guest.spec()).setPageSize(GuestMemory.PAGE_BYTES).setDigest(settings.digest())
        .setNonce(ByteString.copyFrom(nonce))).build());
    Control ack = awaitControl(Control.BodyCase.HELLO_ACK, "the target to accept the migration");
    if (!ack.getHelloAck().getAccepted()) {
      throw new MigrationFailure(MigrationPhase.ABORTED, "target refused: " + ack.getHelloAck().getReason());
    }
    ByteString proof = ByteString.EMPTY;
    if (secret != null) {
      // Nothing of the guest leaves before the target has proved it is the one the cluster chose.
      if (!MigrationSecrets.verify(secret, "target", migrationId, nonce, ack.getHelloAck().getProof().toByteArray())) {
        throw new MigrationFailure(MigrationPhase.ABORTED, "the agent at the target address could not prove the"
            + " migration's secret: not sending it the guest");
      }
      proof = ByteString.copyFrom(MigrationSecrets.proof(secret, "source", migrationId,
          ack.getHelloAck().getNonce().toByteArray()));
    }
    link.sendControl(Control.newBuilder().setAuth(Auth.newBuilder().setProof(proof)).build());
    LOG.info("migration {}: target {} accepted after {} ms", migrationId, ack.getHelloAck().getTargetHost(),
        (clock.nanoTime() - startNanos) / 1_000_000);
  }

  private void precopy() throws InterruptedException {
    PrecopyPolicy.State policy = PrecopyPolicy.State.initial();
    // The pause also holds the commit: the last pages get the budget that is left.
    MigrationSettings policySettings = settings.withMaxDowntimeMillis(budget.pagesMillis());
    LOG.info("migration {}: {}", migrationId, budget.describe());
    guest.dirtyLog().clear();
    long lastFetchNanos = clock.nanoTime();
    toSend.setAll();
    round = 0;
    while (true) {
      long roundStart = clock.nanoTime();
      int pages = sendRound(round, round == 0);
      link.sendControl(Control.newBuilder().setRoundEnd(RoundEnd.newBuilder().setRound(round).setPages(pages)).build());
      failpoints.hit(MigrationFailpoints.Point.AFTER_ROUND);
      long now = clock.nanoTime();
      int dirty = guest.dirtyLog().fetchAndClear(toSend);
      dirtyRateBytesPerSecond = (long) (dirty * (double) GuestMemory.PAGE_BYTES * 1e9 / Math.max(1, now - lastFetchNanos));
      lastFetchNanos = now;
      remainingBytes = (long) dirty * GuestMemory.PAGE_BYTES;
      sample(now);
      LOG.info("migration {}: round {} sent {} pages in {} ms; {} dirty, bandwidth {}", migrationId, round, pages,
          (now - roundStart) / 1_000_000, dirty, dev.ferry.common.Sizes.formatRate(meter.bytesPerSecond()));
      PrecopyPolicy.Decision decision = PrecopyPolicy.decide(policySettings, policy, new PrecopyPolicy.Observation(
          round + 1, remainingBytes, meter.bytesPerSecond(), dirtyRateBytesPerSecond, now - startNanos,
          memory.sizeBytes()));
      policy = decision.next();
      expectedDowntimeMillis = decision.expectedDowntimeMillis();
      round++;
      if ((round % INCOMPRESSIBLE_FORGET_ROUNDS) == 0) {
        incompressible.clearAll();
      }
      switch (decision.action()) {
        case SWITCHOVER -> {
          drain();
          return;
        }
        case ABORT -> throw new MigrationFailure(MigrationPhase.ABORTED, decision.reason());
        case THROTTLE -> {
          LOG.info("migration {}: {}", migrationId, decision.reason());
          guest.setThrottlePercent(policy.throttlePercent());
          throttleMax = Math.max(throttleMax, policy.throttlePercent());
        }
        default -> { }
      }
      progress(false);
    }
  }

  /**
   * Waits until the target has applied every page sent so far, so that the pause covers only the
   * last dirty pages and not megabytes still queued in socket buffers. The guest runs meanwhile;
   * what it dirties now goes in the final round.
   */
  private void drain() throws InterruptedException {
    link.sendControl(Control.newBuilder().setRoundEnd(RoundEnd.newBuilder().setRound(round).setWantAck(true)).build());
    Control ack = awaitControl(Control.BodyCase.ROUND_ACK, "the target to apply the pages in flight");
    if (ack.getRoundAck().getRound() != round) {
      throw new ProtocolException("target acknowledged round " + ack.getRoundAck().getRound() + ", expected " + round);
    }
  }

  /** Sends every page in {@code toSend}; returns how many went out. */
  private int sendRound(int roundNumber, boolean skipZero) throws InterruptedException {
    int sent = 0;
    SourceLink.OutboundBatch batch = null;
    try {
      for (int page = toSend.nextSet(0); page >= 0; page = toSend.nextSet(page + 1)) {
        if (batch == null) {
          checkpoint();
          batch = link.newBatch();
          writer.begin(batch.header(), batch::payload, roundNumber);
        }
        if (encode(page, skipZero)) {
          sent++;
        }
        if (writer.isFull()) {
          flush(batch);
          batch = null;
        }
      }
      if (batch != null && writer.count() > 0) {
        flush(batch);
        batch = null;
      }
    } finally {
      if (batch != null) {
        batch.discard();
      }
    }
    pagesSent += sent;
    return sent;
  }

  private boolean encode(int page, boolean skipZero) {
    boolean compress = governor.compressNext() && !incompressible.get(page);
    long before = compress ? clock.nanoTime() : 0;
    PageBatchWriter.Outcome outcome = writer.add(page, skipZero, compress);
    switch (outcome) {
      case SKIPPED_ZERO -> {
        return false;
      }
      case ZERO -> pagesZero++;
      case RAW -> pagesRaw++;
      case LZ4 -> {
        pagesLz4++;
        governor.recordAttempt(clock.nanoTime() - before, writer.lastEncodedBytes());
      }
      case RAW_INCOMPRESSIBLE -> {
        pagesRaw++;
        incompressible.set(page);
        governor.recordAttempt(clock.nanoTime() - before, GuestMemory.PAGE_BYTES);
      }
      default -> throw new IllegalStateException("unknown outcome " + outcome);
    }
    return true;
  }

  private void flush(SourceLink.OutboundBatch batch) throws InterruptedException {
    long guestBytes = (long) writer.count() * GuestMemory.PAGE_BYTES;
    writer.finish();
    waitWritable();
    link.sendBatch(batch, writer, guestBytes);
    if (firstPageNanos == 0) {
      firstPageNanos = clock.nanoTime();
    }
    guestBytesQueued += guestBytes;
    long now = clock.nanoTime();
    governor.tick(now, guestBytesQueued, blockedNanos);
    sample(now);
    if (now - lastProgressNanos >= PROGRESS_EVERY_NANOS) {
      progress(false);
    }
  }

  /** Back-pressure: waits for the link, failing if it makes no progress for the progress timeout. */
  private void waitWritable() throws InterruptedException {
    long start = clock.nanoTime();
    while (!link.awaitWritable(POLL_SLICE_NANOS)) {
      checkpoint();
    }
    blockedNanos += clock.nanoTime() - start;
  }

  /** Between batches: cancel, the target's messages, the completion and progress timeouts. */
  private void checkpoint() throws InterruptedException {
    String reason = cancelReason;
    if (reason != null) {
      throw new MigrationFailure(MigrationPhase.CANCELLED, reason);
    }
    if (Thread.interrupted()) {
      throw new InterruptedException();
    }
    Control message = link.pollControl(0);
    if (message != null) {
      throw unexpected(message, "while sending pages");
    }
    long now = clock.nanoTime();
    long limitMillis = settings.completionTimeoutMillis(memory.sizeBytes());
    if ((now - startNanos) / 1_000_000L > limitMillis) {
      throw new MigrationFailure(MigrationPhase.ABORTED, "completion timeout: not done after "
          + limitMillis / 1000 + " s (" + settings.completionTimeoutMillisPerGib() / 1000 + " s per GiB)");
    }
    long flushed = link.guestBytesFlushed();
    if (flushed != lastFlushed) {
      lastFlushed = flushed;
      lastFlushChangeNanos = now;
    } else if ((now - lastFlushChangeNanos) / 1_000_000L > settings.progressTimeoutMillis()) {
      throw new MigrationFailure(MigrationPhase.ABORTED, "progress timeout: the target took no data for "
          + settings.progressTimeoutMillis() + " ms");
    }
  }

  private void sample(long now) {
    if (lastSampleNanos == 0) {
      lastSampleNanos = startNanos;
    }
    if (now - lastSampleNanos < SAMPLE_NANOS_MIN) {
      return;
    }
    long flushed = link.guestBytesFlushed();
    meter.record(flushed - lastSampleFlushed, now - lastSampleNanos);
    lastSampleFlushed = flushed;
    lastSampleNanos = now;
  }

  /** Waits for one expected message; the target's Abort or anything else fails the migration. */
  private Control awaitControl(Control.BodyCase expected, String waitingFor) throws InterruptedException {
    long start = clock.nanoTime();
    while (true) {
      String reason = cancelReason;
      if (reason != null && phase.sourceOwnsGuest()) {
        throw new MigrationFailure(MigrationPhase.CANCELLED, reason);
      }
      Control message = link.pollControl(POLL_SLICE_NANOS);
      if (message != null) {
        if (message.getBodyCase() == expected) {
          return message;
        }
        throw unexpected(message, "while waiting for " + waitingFor);
      }
      if ((clock.nanoTime() - start) / 1_000_000L > settings.progressTimeoutMillis()) {
        throw new MigrationFailure(MigrationPhase.ABORTED, "progress timeout: waited "
            + settings.progressTimeoutMillis() + " ms for " + waitingFor);
      }
    }
  }

  private RuntimeException unexpected(Control message, String when) {
    if (message.getBodyCase() == Control.BodyCase.ABORT) {
      return new MigrationFailure(MigrationPhase.ABORTED, "target aborted: " + message.getAbort().getReason(), true);
    }
    return new ProtocolException("unexpected " + message.getBodyCase() + " from the target " + when);
  }

  /**
   * The target's answer: Resumed (it committed and runs the guest), Abort (it refused before any
   * commit: the guest runs here again). Without an answer — the link broke, the target went quiet,
   * it sent nonsense — the authority settles: the commit is recorded, or it is made impossible
   * and the guest runs here again, or nobody can tell yet and the guest stays paused.
   */
  private void awaitOutcome(MigrationReport.Builder report, Control deviceState) {
    Control resumed;
    String silence;
    try {
      switchover[1] = clock.nanoTime(); // before the send: the target may act on it before this thread runs again
      link.sendControl(deviceState);
      failpoints.hit(MigrationFailpoints.Point.AFTER_FINAL_STATE);
      resumed = awaitControl(Control.BodyCase.RESUMED, "the target to commit and resume the guest");
      finishCommitted(report, resumed.getResumed());
      return;
    } catch (MigrationFailure e) {
      if (e.targetRefused) {
        refuseAfterCutover(report, e.getMessage());
        return;
      }
      silence = e.getMessage();
    } catch (LinkException e) {
      String refused = abortFromTarget();
      if (refused != null) {
        refuseAfterCutover(report, refused);
        return;
      }
      silence = describe(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      silence = "interrupted while the target committed";
    } catch (RuntimeException e) {
      silence = describe(e); // a protocol error, a fail point: the target's outcome is still what counts
    }
    CutoverAuthority.Result decision;
    try {
      decision = authority.settle(migrationId, "no answer from the target (" + silence + ")");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      decision = CutoverAuthority.Result.unknown("interrupted while settling the commit (" + silence + ")");
    } catch (RuntimeException e) {
      LOG.error("migration {}: settling the commit failed unexpectedly", migrationId, e);
      decision = CutoverAuthority.Result.unknown("settling the commit failed: " + e);
    }
    switch (decision.outcome()) {
      case COMMITTED -> {
        // The record says the target owns the guest: it resumes from the record, not from us.
        completedNanos = clock.nanoTime();
        cpuNanos = cpuSinceStart();
        moveTo(MigrationPhase.COMPLETED);
        LOG.warn("migration {}: committed; the target did not confirm ({}), it resumes from the record",
            migrationId, silence);
        digestIfAsked(report);
      }
      case REFUSED -> refuseAfterCutover(report, decision.reason());
      default -> {
        phase = phase.moveTo(MigrationPhase.UNKNOWN);
        report.setReason("commit outcome unknown (" + decision.reason() + "): the guest stays paused on "
            + sourceHost + " until the outcome is read back");
        LOG.error("migration {}: {}", migrationId, report.getReason());
      }
    }
  }

  private void finishCommitted(MigrationReport.Builder report, Resumed there) {
    completedNanos = clock.nanoTime();
    cpuNanos = cpuSinceStart();
    moveTo(MigrationPhase.COMPLETED);
    report.setTargetFirstStepNanos(awaitFirstStep(there.getResumedNanos()));
    report.setTargetCpuNs(there.getCpuNs());
    if (there.getDeviceStateNanos() != 0) {
      hops = String.format(java.util.Locale.ROOT, "; hop (one host's clock): DeviceState %d us",
          (there.getDeviceStateNanos() - switchover[1]) / 1000);
    }
    long downtimeNanos = Math.max(0, report.getTargetFirstStepNanos() - report.getSourceLastStepNanos());
    report.addAllPauseSteps(pauseSteps(downtimeNanos, report.getSourceLastStepNanos(), there,
        report.getTargetFirstStepNanos()));
    digestIfAsked(report);
  }

  /** The pause's steps: the source's own, the target's from its Resumed message, the rest as "other". */
  private java.util.List<PauseStep> pauseSteps(long downtimeNanos, long sourceLastStepNanos, Resumed there,
      long targetFirstStepNanos) {
    java.util.Map<String, Long> measured = new java.util.LinkedHashMap<>();
    measured.put(PauseSteps.STOP, switchover[0] - sourceLastStepNanos);
    measured.put(PauseSteps.FINAL_COPY, switchover[1] - switchover[0]);
    measured.put(PauseSteps.TARGET_VERIFY, there.getVerifyNs());
    measured.put(PauseSteps.COMMIT, there.getCommitNs());
    measured.put(PauseSteps.RESUME, there.getConfirmedNanos() == 0 ? 0 : targetFirstStepNanos - there.getConfirmedNanos());
    return PauseSteps.account(downtimeNanos, measured);
  }

  private long cpuSinceStart() {
    return Math.max(0, cpu.processNanos() - guest.vcpuCpuNanos() - cpuStartNanos);
  }

  private void digestIfAsked(MigrationReport.Builder report) {
    if (settings.digest()) {
      report.setSourceDigest(com.google.protobuf.ByteString.copyFrom(MemoryDigest.of(memory)));
    }
  }

  /** The target refused, or the authority made the commit impossible: back to the source, as before any commit. */
  private void refuseAfterCutover(MigrationReport.Builder report, String reason) {
    phase = phase.moveTo(MigrationPhase.ABORTED);
    resumeHereAndTellTarget(report, reason);
    LOG.warn("migration {} of {} aborted at the commit: {}", migrationId, guest.name(), reason);
  }

  /** The target's first vCPU step, for the downtime figure only: a lost answer costs nothing but precision. */
  private long awaitFirstStep(long resumedNanos) {
    long deadline = clock.nanoTime() + FIRST_STEP_WAIT_NANOS;
    try {
      while (clock.nanoTime() < deadline) {
        Control message = link.pollControl(POLL_SLICE_NANOS);
        if (message != null && message.getBodyCase() == Control.BodyCase.FIRST_STEP) {
          long first = message.getFirstStep().getFirstStepNanos();
          return first != 0 ? first : resumedNanos;
        }
      }
    } catch (LinkException | InterruptedException e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
    }
    return resumedNanos;
  }

  private void failBeforeCommit(MigrationReport.Builder report, MigrationPhase outcome, String reason) {
    if (!phase.sourceOwnsGuest()) {
      // Only reachable through a bug: after the commit nothing may resume the source.
      LOG.error("migration {} failed after commit in {}: {}", migrationId, phase, reason);
      report.setReason(reason);
      return;
    }
    phase = phase.moveTo(outcome);
    resumeHereAndTellTarget(report, reason);
    LOG.warn("migration {} of {} {}: {}", migrationId, guest.name(), outcome.label(), reason);
  }

  /** Nothing committed: the guest runs here again, unthrottled, and the target hears why. */
  private void resumeHereAndTellTarget(MigrationReport.Builder report, String reason) {
    report.setReason(reason);
    guest.setThrottlePercent(0);
    if (paused) {
      guest.resume();
      paused = false;
    }
    try {
      link.sendControl(Control.newBuilder().setAbort(Abort.newBuilder().setReason(reason)).build());
    } catch (RuntimeException ignored) {
      // The link may be the reason; the target frees its copy when the link drops anyway.
    }
  }

  /** A pause over {@code budgetMillis} says by how much and which step was largest. */
  static void overBudget(MigrationReport.Builder report, long budgetMillis) {
    long overMicros = report.getDowntimeNs() / 1000 - budgetMillis * 1000;
    if (overMicros > 0 && report.getPauseStepsCount() > 0) {
      report.setOverBudgetUs(overMicros).setLargestPauseStep(PauseSteps.largest(report.getPauseStepsList()).getName());
    }
  }

  private MigrationReport finishReport(MigrationReport.Builder report) {
    long end = completedNanos != 0 ? completedNanos : clock.nanoTime();
    report.setPhase(phase.toProto())
        .setTotalNs(end - startNanos)
        .setRounds(round + (phase == MigrationPhase.COMPLETED ? 1 : 0))
        .setGuestBytesSent(pagesSent * GuestMemory.PAGE_BYTES)
        .setWireBytesSent(link.wireBytesFlushed())
        .setPagesZero(pagesZero).setPagesRaw(pagesRaw).setPagesLz4(pagesLz4)
        .setThrottlePercentMax(throttleMax);
    if (phase == MigrationPhase.COMPLETED && report.getTargetFirstStepNanos() != 0) {
      report.setDowntimeNs(Math.max(0, report.getTargetFirstStepNanos() - report.getSourceLastStepNanos()));
    }
    if (budget != null) {
      report.setDowntimeBudgetMs(budget.budgetMillis()).setCommitReserveMs(budget.commitMillis());
      overBudget(report, budget.budgetMillis());
    }
    if (firstPageNanos != 0) {
      report.setSetupMs((firstPageNanos - (acceptedNanos != 0 ? acceptedNanos : startNanos)) / 1_000_000L);
    }
    report.setSourceCpuNs(cpuNanos != 0 ? cpuNanos : cpuSinceStart());
    progress(true);
    MigrationReport built = report.build();
    if (built.getPauseStepsCount() > 0) {
      LOG.info("migration {}: pause {} us ({}): {}{}{}; setup {} ms; cpu here {} ms, there {} ms", migrationId,
          built.getDowntimeNs() / 1000, budget.describe(), PauseSteps.describe(built.getPauseStepsList()), hops,
          built.getOverBudgetUs() > 0 ? "; OVER the budget by " + built.getOverBudgetUs() / 1000.0 + " ms, largest step "
              + built.getLargestPauseStep() : "", built.getSetupMs(), built.getSourceCpuNs() / 1_000_000,
          built.getTargetCpuNs() / 1_000_000);
    }
    return built;
  }

  private void moveTo(MigrationPhase next) {
    phase = phase.moveTo(next);
    progress(true);
  }

  private void progress(boolean force) {
    long now = clock.nanoTime();
    if (!force && now - lastProgressNanos < PROGRESS_EVERY_NANOS) {
      return;
    }
    lastProgressNanos = now;
    MigrationProgress.Builder progress = MigrationProgress.newBuilder()
        .setMigrationId(migrationId).setPhase(phase.toProto()).setRound(round)
        .setGuestBytesSent(link.guestBytesFlushed()).setWireBytesSent(link.wireBytesFlushed())
        .setBytesRemaining(phase == MigrationPhase.SETUP ? memory.sizeBytes()
            : round == 0 ? Math.max(0, memory.sizeBytes() - guestBytesQueued) : remainingBytes)
        .setBandwidthBytesPerS(meter.bytesPerSecond())
        .setDirtyRateBytesPerS(dirtyRateBytesPerSecond)
        .setThrottlePercent(guest.throttlePercent())
        .setElapsedMs((now - startNanos) / 1_000_000L)
        .setCompressing(governor.compressing())
        .setDowntimeBudgetMs(budget == null ? settings.maxDowntimeMillis() : budget.budgetMillis())
        .setCommitReserveMs(budget == null ? 0 : budget.commitMillis());
    if (expectedDowntimeMillis != Long.MAX_VALUE) {
      progress.setExpectedDowntimeMs(expectedDowntimeMillis);
    }
    listener.onProgress(progress.build());
  }

  /**
   * After the link failed: the reason the target gave, if its Abort arrived before the end of
   * the stream (a write can fail on the target's close before that message was read).
   */
  private String abortFromTarget() {
    long deadline = clock.nanoTime() + ABORT_READ_BACK_NANOS;
    try {
      for (long left = ABORT_READ_BACK_NANOS; left > 0; left = deadline - clock.nanoTime()) {
        Control message = link.pollControl(left);
        if (message != null && message.getBodyCase() == Control.BodyCase.ABORT) {
          return "target aborted: " + message.getAbort().getReason();
        }
      }
    } catch (LinkException e) {
      // the stream ended without an Abort
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return null;
  }

  private static String describe(Throwable e) {
    String message = e.getMessage();
    if (e instanceof LinkException) {
      return "link to target lost: " + message;
    }
    if (e instanceof ProtocolException) {
      return "protocol error: " + message;
    }
    return message == null ? e.toString() : message;
  }

  /** Ends the migration before the commit with an outcome and a reason. */
  private static final class MigrationFailure extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final transient MigrationPhase phase;
    /** The target said Abort: its word that it will not run the guest (it sends none after a commit). */
    private final boolean targetRefused;

    MigrationFailure(MigrationPhase phase, String reason) {
      this(phase, reason, false);
    }

    MigrationFailure(MigrationPhase phase, String reason, boolean targetRefused) {
      super(reason, null, false, false);
      this.phase = phase;
      this.targetRefused = targetRefused;
    }
  }
}
