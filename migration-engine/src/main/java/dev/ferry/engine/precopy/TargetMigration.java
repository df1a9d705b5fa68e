package dev.ferry.engine.precopy;

import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.clock.CpuTime;
import dev.ferry.common.InvalidConfigException;
import dev.ferry.engine.guest.Guest;
import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.wire.PageStreamReader;
import dev.ferry.engine.wire.ProtocolException;
import dev.ferry.engine.wire.Wire;
import dev.ferry.proto.Abort;
import dev.ferry.proto.Control;
import dev.ferry.proto.FirstStep;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.GuestState;
import dev.ferry.proto.Hello;
import dev.ferry.proto.HelloAck;
import dev.ferry.proto.Resumed;
import dev.ferry.proto.RoundAck;
import dev.ferry.proto.RoundEnd;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The target side of one migration, fed by the transport one message at a time on one thread.
 * It admits the guest (zeroed memory, paused vCPUs), applies page batches straight into guest
 * memory, checks the final page count and vCPU state, then commits the move itself (the
 * {@link CutoverAuthority}: in a cluster one ZooKeeper multi-op) and resumes the guest on the
 * commit's own answer. Any failure before the commit frees everything it allocated and tells the
 * source, which then runs the guest again; a commit whose outcome is unknown keeps the guest paused
 * until the records decide.
 */
public final class TargetMigration {
  private static final Logger LOG = LoggerFactory.getLogger(TargetMigration.class);
  private static final long FIRST_STEP_POLL_NANOS = 1_000_000L;
  /** How long the target watches for the first vCPU step; past it the downtime is reported as unknown. */
  private static final long FIRST_STEP_WAIT_NANOS = 2_000_000_000L;

  /**
   * The agent's side: admission (capacity, names) and the guest registry. Netty-free. The calls
   * that may block ({@link #expectIncoming}, {@link #admitIncoming}, the authority's commit,
   * {@link #committedHere}) run through {@link ControlSink#offload}.
   */
  public interface Host {
    String hostId();

    /**
     * Checks a Hello against what this host knows (in a cluster: the migration's record) and says
     * which guest to expect and which secret the source must prove; throws {@link Refused} saying
     * why not. Reads only: the peer has proved nothing yet, so nothing is stored, reserved or
     * allocated for it.
     */
    Expected expectIncoming(String migrationId, GuestSpec announced);

    /**
     * After the source's proof: registers the incoming guest (capacity, name, memory) for the
     * {@code spec} {@link #expectIncoming} returned, or throws {@link Refused} saying why not.
     */
    Guest admitIncoming(String migrationId, GuestSpec spec);

    /**
     * The migration failed before commit: unregister and destroy the guest. May be called on the
     * transport's thread (a dropped link): must not block there.
     */
    void incomingFailed(String migrationId, Guest guest, String reason);

    /** The guest now runs here, resumed from {@code resumedFrom}. */
    void incomingCommitted(String migrationId, Guest guest, GuestState resumedFrom, CompletableFuture<byte[]> digest);

    /**
     * Who commits the move of an admitted migration's guest to this host (outside a cluster, the
     * target's own check: {@link CutoverAuthority#LOCAL}).
     */
    default CutoverAuthority authority(String migrationId) {
      return CutoverAuthority.LOCAL;
    }

    /** Fault injection at the target's steps of the cutover (tests); none by default. */
    default MigrationFailpoints failpoints() {
      return MigrationFailpoints.NONE;
    }

    /**
     * The guest has just resumed here under the committed {@code epoch}: take what ownership
     * needs beyond the pause (the datastore lease). Called before {@link #incomingCommitted} and
     * before the source hears that the guest runs here, so the migration completes only once it
     * is done; the vCPUs already run meanwhile, and nothing writes the VM's disk until then.
     */
    default void committedHere(String migrationId, long epoch) {
    }

    /**
     * The commit's outcome is unknown (ZooKeeper could not be read back). Return true to keep the
     * guest paused while the host finds out from the records (it then calls
     * {@link TargetMigration#resumeCommitted} or {@link TargetMigration#discard}); false frees it now.
     */
    default boolean keepUndecided(String migrationId, TargetMigration migration) {
      return false;
    }
  }

  /**
   * What a Hello may lead to: the guest this host will allocate (in a cluster the record's spec,
   * never the peer's) and the secret the source must prove (null: none, between agents driven by
   * hand).
   */
  public record Expected(GuestSpec spec, byte[] secret) {}

  /** Admission said no; the message goes back to the source. */
  public static final class Refused extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public Refused(String message) {
      super(message);
    }
  }

  /**
   * CHECKING, ADMITTING and COMMITTING wait for the host off the transport's thread; UNDECIDED
   * waits for the records to say how a commit with an unknown outcome went.
   */
  private enum State { AWAIT_HELLO, CHECKING, AWAIT_AUTH, ADMITTING, RECEIVING, COMMITTING, UNDECIDED, RUNNING, FAILED }

  private final Host host;
  private final ControlSink sink;
  private final Clock clock;
  private final CpuTime cpu;
  /** Process CPU time when the connection arrived: the target's CPU cost is measured from here to the resume. */
  private final long cpuStartNanos;
  private State state = State.AWAIT_HELLO;
  private volatile boolean linkUp = true;
  private String migrationId = "?";
  private Guest guest;
  private PageStreamReader reader;
  private boolean digest;
  private Expected expected;
  private byte[] nonce;
  private CutoverAuthority authority = CutoverAuthority.LOCAL;
  private GuestState resumedFrom;
  private long deviceStateNanos;
  /** When the pages and the state checked out: the commit starts. */
  private long verifiedNanos;
  /** The --verify digest: its bookkeeping allocated before the pause, its instant fixed at the vCPU state. */
  private Guest.PendingDigest pendingDigest;
  /** When the commit stood (its answer, or the records read back). */
  private long confirmedNanos;
  private long committedEpoch;

  public TargetMigration(Host host, ControlSink sink, Clock clock) {
    this(host, sink, clock, CpuTime.PROCESS);
  }

  public TargetMigration(Host host, ControlSink sink, Clock clock, CpuTime cpu) {
    this.host = host;
    this.sink = sink;
    this.clock = clock;
    this.cpu = cpu;
    this.cpuStartNanos = cpu.processNanos();
  }

  public String migrationId() {
    return migrationId;
  }

  /** True once the source proved the migration's secret (or, without one, sent its Auth). */
  public synchronized boolean isAuthenticated() {
    return state.compareTo(State.ADMITTING) >= 0 && state != State.FAILED;
  }

  /** True while pages may arrive (between an accepted Hello and the vCPU state). */
  public boolean isReceiving() {
    return state == State.RECEIVING;
  }

  /** The reader applying pages, while receiving (the transport may place raw pages itself). */
  public PageStreamReader reader() {
    return state == State.RECEIVING ? reader : null;
  }

  /** The incoming guest's memory, while receiving. */
  public GuestMemory receivingMemory() {
    return state == State.RECEIVING ? guest.memory() : null;
  }

  /** True once the guest runs here (the link may then go away harmlessly). */
  public boolean isCommitted() {
    return state == State.RUNNING;
  }

  public synchronized void onControl(Control message) {
    try {
      switch (message.getBodyCase()) {
        case HELLO -> onHello(message.getHello());
        case AUTH -> onAuth(message.getAuth().getProof().toByteArray());
        case ROUND_END -> onRoundEnd(message.getRoundEnd());
        case DEVICE_STATE -> onDeviceState(message);
        case ABORT -> fail("source aborted: " + message.getAbort().getReason(), false);
        default -> throw new ProtocolException("unexpected " + message.getBodyCase() + " from the source");
      }
    } catch (ProtocolException | InvalidConfigException e) {
      fail("protocol error: " + e.getMessage(), true);
    }
  }

  /** A page batch of {@code bodyBytes} begins; its bytes follow through {@link #onPageBytes}. */
  public synchronized void onPagesStart(int bodyBytes) {
    try {
      requireState(State.RECEIVING, "page batch");
      reader.beginBatch(bodyBytes);
    } catch (ProtocolException e) {
      fail(e.getMessage(), true);
    }
  }

  /** The next bytes of the current page batch, in any chunking. */
  public synchronized void onPageBytes(ByteBuffer chunk) {
    if (state != State.RECEIVING) {
      if (state == State.FAILED) {
        return; // the migration is over; the rest of the frame is dropped
      }
      fail("protocol error: page data not allowed while the target is " + state, true);
      return;
    }
    try {
      reader.consume(chunk);
    } catch (ProtocolException e) {
      fail(e.getMessage(), true);
    }
  }

  /** The transport could not decode what the source sent: abort, telling the source why. */
  public synchronized void onProtocolError(String reason) {
    fail(reason, true);
  }

  /**
   * The link dropped. Before the last pages checked out the guest is freed. Once the commit is under
   * way its outcome decides alone (the source settles from the records meanwhile); an undecided
   * guest waits for the records.
   */
  public synchronized void onLinkLost(String reason) {
    linkUp = false;
    if (state == State.RUNNING || state == State.FAILED || state == State.COMMITTING || state == State.UNDECIDED) {
      return;
    }
    fail("link to source lost: " + reason, false);
  }

  private void onHello(Hello hello) {
    requireState(State.AWAIT_HELLO, "Hello");
    migrationId = hello.getMigrationId();
    if (hello.getProtocolVersion() != Wire.PROTOCOL_VERSION) {
      refuse("protocol version " + hello.getProtocolVersion() + " is not supported (this agent speaks "
          + Wire.PROTOCOL_VERSION + ")");
      return;
    }
    if (hello.getPageSize() != GuestMemory.PAGE_BYTES) {
      refuse("page size " + hello.getPageSize() + " is not supported (4096 only)");
      return;
    }
    digest = hello.getDigest();
    byte[] sourceNonce = hello.getNonce().toByteArray();
    GuestSpec announced = hello.getGuest();
    String sourceHost = hello.getSourceHost();
    state = State.CHECKING;
    sink.offload(ControlSink.Step.CHECK_HELLO, () -> host.expectIncoming(migrationId, announced),
        (found, error) -> helloChecked(found, error, sourceNonce, sourceHost));
  }

  /** Answers the Hello once the host has looked it up: the target proves the secret first. */
  private void helloChecked(Expected found, Throwable error, byte[] sourceNonce, String sourceHost) {
    byte[] challenge = MigrationSecrets.nonce(); // outside the lock: the random source may read a device
    synchronized (this) {
      answerHello(found, error, sourceNonce, sourceHost, challenge);
    }
  }

  private void answerHello(Expected found, Throwable error, byte[] sourceNonce, String sourceHost, byte[] challenge) {
    if (state != State.CHECKING) {
      return; // the link went away meanwhile
    }
    if (error != null) {
      refuse(reasonOf(error));
      return;
    }
    expected = found;
    nonce = challenge;
    state = State.AWAIT_AUTH;
    LOG.info("migration {}: {} ({}) offered by {}; waiting for its proof", migrationId, found.spec().getName(),
        dev.ferry.common.Sizes.formatBytes(found.spec().getMemoryBytes()),
        dev.ferry.common.MigrationIds.printable(sourceHost));
    HelloAck.Builder ack = HelloAck.newBuilder().setAccepted(true).setProtocolVersion(Wire.PROTOCOL_VERSION)
        .setTargetHost(host.hostId()).setNonce(com.google.protobuf.ByteString.copyFrom(nonce));
    if (found.secret() != null) {
      ack.setProof(com.google.protobuf.ByteString.copyFrom(
          MigrationSecrets.proof(found.secret(), "target", migrationId, sourceNonce)));
    }
    sink.send(Control.newBuilder().setHelloAck(ack).build());
  }

  /**
   * No page is taken, and nothing is reserved or allocated, before the source proved the
   * migration's secret (when there is one); then the host admits the guest.
   */
  private void onAuth(byte[] proof) {
    requireState(State.AWAIT_AUTH, "Auth");
    byte[] secret = expected.secret();
    if (secret != null && !MigrationSecrets.verify(secret, "source", migrationId, nonce, proof)) {
      throw new ProtocolException("the source could not prove the migration's secret");
    }
    state = State.ADMITTING;
    GuestSpec spec = expected.spec();
    sink.offload(ControlSink.Step.ADMIT, () -> host.admitIncoming(migrationId, spec), this::admitted);
  }

  private synchronized void admitted(Guest admittedGuest, Throwable error) {
    if (state != State.ADMITTING) {
      if (admittedGuest != null) {
        host.incomingFailed(migrationId, admittedGuest, "the link went away during admission");
      }
      return;
    }
    if (error != null) {
      fail(reasonOf(error), true);
      return;
    }
    guest = admittedGuest;
    authority = host.authority(migrationId);
    reader = new PageStreamReader(guest.memory());
    state = State.RECEIVING;
    LOG.info("migration {}: receiving {} ({})", migrationId, guest.name(),
        dev.ferry.common.Sizes.formatBytes(guest.spec().getMemoryBytes()));
  }

  /** What goes back to the source when the host said no (or failed). */
  private String reasonOf(Throwable error) {
    if (error instanceof Refused || error instanceof InvalidConfigException) {
      return error.getMessage();
    }
    LOG.error("migration {}: the target host failed", migrationId, error);
    return "target host " + host.hostId() + " failed: " + error;
  }

  private void refuse(String reason) {
    state = State.FAILED;
    LOG.warn("migration {} refused: {}", migrationId, reason);
    sink.send(Control.newBuilder().setHelloAck(HelloAck.newBuilder().setAccepted(false)
        .setProtocolVersion(Wire.PROTOCOL_VERSION).setTargetHost(host.hostId()).setReason(reason)).build());
    sink.close();
  }

  private void onRoundEnd(RoundEnd end) {
    requireState(State.RECEIVING, "RoundEnd");
    if (reader.inBatch()) {
      throw new ProtocolException("RoundEnd arrived in the middle of a page batch");
    }
    if (end.getWantAck()) {
      // The source pauses next: what the digest needs is allocated now, outside the pause.
      prepareDigest();
      sink.send(Control.newBuilder().setRoundAck(RoundAck.newBuilder().setRound(end.getRound())).build());
    }
  }

  private void prepareDigest() {
    if (digest && pendingDigest == null) {
      pendingDigest = guest.prepareSnapshotDigest();
    }
  }

  private void onDeviceState(Control message) {
    requireState(State.RECEIVING, "DeviceState");
    deviceStateNanos = clock.nanoTime();
    long sent = message.getDeviceState().getPagesSentTotal();
    if (reader.inBatch()) {
      throw new ProtocolException("DeviceState arrived in the middle of a page batch");
    }
    if (sent != reader.pagesApplied()) {
      throw new ProtocolException("source sent " + sent + " pages but " + reader.pagesApplied() + " arrived");
    }
    if (reader.suspectPages() > 0) {
      throw new ProtocolException(reader.suspectPages() + " pages failed their checksum and were never resent"
          + " intact (page " + reader.aSuspectPage() + " among them): data was corrupted in transit");
    }
    resumedFrom = message.getDeviceState().getState();
    guest.restoreState(resumedFrom);
    if (digest) {
      // The digest's instant: every page is here and checked, and nothing changes this memory
      // until the resume (no page is taken after the DeviceState; the vCPUs are paused), so memory now is
      // memory at resume, which must equal the source's at pause.
      prepareDigest();
      pendingDigest.install();
    }
    // Everything checked: this host commits the move and resumes on the commit's answer. The
    // commit's worker resumes the guest itself: no thread hop between the answer and the resume.
    state = State.COMMITTING;
    verifiedNanos = clock.nanoTime();
    MigrationFailpoints failpoints = host.failpoints();
    sink.offload(ControlSink.Step.COMMIT, () -> {
      failpoints.hit(MigrationFailpoints.Point.BEFORE_COMMIT);
      CutoverAuthority.Result result = authority.commit(migrationId);
      if (result.outcome() == CutoverAuthority.Outcome.COMMITTED) {
        failpoints.hit(MigrationFailpoints.Point.AFTER_COMMIT);
      }
      return result;
    }, this::committed);
  }

  private void committed(CutoverAuthority.Result result, Throwable error) {
    if (error != null) {
      LOG.error("migration {}: the commit failed unexpectedly", migrationId, error);
      result = CutoverAuthority.Result.unknown("the commit failed: " + error);
    }
    synchronized (this) {
      confirmedNanos = clock.nanoTime();
      if (state != State.COMMITTING) {
        return;
      }
      switch (result.outcome()) {
        case COMMITTED -> { } // resumed below, outside the lock
        case REFUSED -> {
          // Nothing landed and nothing can: the source gets the guest back on this word.
          free("commit refused: " + result.reason(), true);
          return;
        }
        default -> {
          // Resuming here could run the guest twice, and discarding it could lose the only copy if
          // the commit did land: keep it paused; the records decide (the source settles them).
          if (host.keepUndecided(migrationId, this)) {
            state = State.UNDECIDED;
            LOG.warn("migration {}: commit outcome unknown ({}): {} stays paused until the records decide",
                migrationId, result.reason(), guest.name());
            sink.close(); // the source hears nothing more from here: it settles at once
            return;
          }
          free("commit outcome unknown: " + result.reason(), false);
          return;
        }
      }
    }
    resumeCommitted(result.epoch());
  }

  /**
   * Resumes the guest here: the commit is known to stand (its answer, or read back by the host
   * from the records). Takes what ownership needs beyond the pause (the lease) with the guest
   * already running, outside this object's lock: the transport's thread never waits on it.
   */
  public void resumeCommitted(long epoch) {
    Guest.PendingDigest memoryDigest;
    synchronized (this) {
      if (state != State.COMMITTING && state != State.UNDECIDED) {
        return;
      }
      committedEpoch = epoch;
      memoryDigest = pendingDigest;
      if (confirmedNanos == 0) {
        confirmedNanos = clock.nanoTime();
      }
      guest.resume();
      state = State.RUNNING;
    }
    host.committedHere(migrationId, committedEpoch);
    host.incomingCommitted(migrationId, guest, resumedFrom, memoryDigest == null ? null : memoryDigest.result());
    LOG.info("migration {}: {} resumed here ({} pages: {} raw, {} lz4, {} zero; {} of raw data read straight into"
        + " guest memory)", migrationId, guest.name(), reader.pagesApplied(), reader.pagesRaw(), reader.pagesLz4(),
        reader.pagesZero(), dev.ferry.common.Sizes.formatBytes(reader.bytesPlaced()));
    long cpuNanos = Math.max(0, cpu.processNanos() - cpuStartNanos);
    LOG.info("migration {}: pause here: target_verify {} us; commit {} us; resumed {} us after the commit; cpu {} ms",
        migrationId, (verifiedNanos - deviceStateNanos) / 1000, (confirmedNanos - verifiedNanos) / 1000,
        (guest.resumedNanos() - confirmedNanos) / 1000, cpuNanos / 1_000_000);
    if (linkUp) {
      sink.send(Control.newBuilder().setResumed(Resumed.newBuilder().setResumedNanos(guest.resumedNanos())
          .setVerifyNs(verifiedNanos - deviceStateNanos).setCommitNs(confirmedNanos - verifiedNanos)
          .setConfirmedNanos(confirmedNanos).setCpuNs(cpuNanos).setDeviceStateNanos(deviceStateNanos)
          .setEpoch(committedEpoch)).build());
      boolean steps = guest.spec().getWorkload().getDirtyRateBytesPerS() > 0;
      reportFirstStep(steps ? clock.nanoTime() + FIRST_STEP_WAIT_NANOS : 0, memoryDigest);
    } else if (memoryDigest != null) {
      memoryDigest.start();
    }
  }

  /** The host learned that the commit did not happen: free the waiting guest. */
  public synchronized void discard(String reason) {
    if (state == State.UNDECIDED) {
      free(reason, false);
    }
  }

  /**
   * Tells the source when the first vCPU step ran, so it can time the pause exactly (bounded
   * wait), then lets the digest, if any, start reading memory.
   */
  private void reportFirstStep(long waitUntilNanos, Guest.PendingDigest memoryDigest) {
    long first = guest.firstStepNanosAfterResume();
    if (first == 0 && waitUntilNanos != 0 && clock.nanoTime() < waitUntilNanos) {
      sink.schedule(() -> reportFirstStep(waitUntilNanos, memoryDigest), FIRST_STEP_POLL_NANOS);
      return;
    }
    sink.send(Control.newBuilder().setFirstStep(FirstStep.newBuilder().setFirstStepNanos(first)).build());
    if (memoryDigest != null) {
      memoryDigest.start();
    }
  }

  private void requireState(State expected, String what) {
    if (state != expected) {
      throw new ProtocolException(what + " not allowed while the target is " + state);
    }
  }

  private void fail(String reason, boolean tellSource) {
    if (state == State.COMMITTING || state == State.UNDECIDED) {
      // Once the commit is under way only its outcome (or the records) may free the guest: a
      // late or hostile message from the link must not throw away what may be the only copy.
      LOG.warn("migration {}: ignored while the commit decides: {}", migrationId, reason);
      return;
    }
    free(reason, tellSource);
  }

  private void free(String reason, boolean tellSource) {
    if (state == State.FAILED || state == State.RUNNING) {
      return;
    }
    State was = state;
    state = State.FAILED;
    if (pendingDigest != null) {
      pendingDigest.cancel();
    }
    if (was.compareTo(State.ADMITTING) >= 0) {
      LOG.warn("migration {} failed on the target: {}", migrationId, reason);
    } else {
      LOG.info("migration {}: handshake ended before the source's proof: {}", migrationId, reason);
    }
    if (guest != null && was != State.AWAIT_HELLO) {
      host.incomingFailed(migrationId, guest, reason);
    }
    if (tellSource) {
      try {
        sink.send(Control.newBuilder().setAbort(Abort.newBuilder().setReason(reason)).build());
      } catch (RuntimeException ignored) {
        // the link may already be gone
      }
    }
    sink.close();
  }
}
