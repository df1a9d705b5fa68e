package dev.ferry.engine.precopy;

import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.guest.Guest;
import dev.ferry.proto.GuestSpec;
import java.util.concurrent.CompletableFuture;

/** A target host for engine tests: one incoming guest at a time, and what happened to it. */
public final class RecordingHost implements TargetMigration.Host {
  private final Clock clock;
  private final boolean manualGuests;
  public Guest admitted;
  public Guest running;
  public CompletableFuture<byte[]> digest;
  public String failure;
  public boolean refuseNext;
  /** The secret {@link #expectIncoming} asks the source to prove (null: no authentication). */
  public byte[] secret;
  /**
   * Where failed guests are destroyed: here by default (deterministic simulations); a transport
   * calling from an event loop sets a thread of its own (stopping the vCPU threads waits).
   */
  public java.util.concurrent.Executor reaper = Runnable::run;
  /** Refuses the Hello itself (before any proof), as a host without room does. */
  public boolean refuseHello;

  @Override
  public TargetMigration.Expected expectIncoming(String migrationId, GuestSpec announced) {
    if (refuseHello) {
      throw new TargetMigration.Refused("host target is full");
    }
    return new TargetMigration.Expected(announced, secret);
  }

  public RecordingHost(Clock clock, boolean manualGuests) {
    this.clock = clock;
    this.manualGuests = manualGuests;
  }

  @Override
  public String hostId() {
    return "target";
  }

  @Override
  public Guest admitIncoming(String migrationId, GuestSpec spec) {
    if (refuseNext) {
      throw new TargetMigration.Refused("host target is full");
    }
    admitted = manualGuests ? Guest.manual(spec, clock, false) : Guest.incoming(spec, clock);
    return admitted;
  }

  @Override
  public void incomingFailed(String migrationId, Guest guest, String reason) {
    failure = reason;
    reaper.execute(guest::destroy);
  }

  @Override
  public void incomingCommitted(String migrationId, Guest guest, dev.ferry.proto.GuestState resumedFrom,
      CompletableFuture<byte[]> memoryDigest) {
    running = guest;
    digest = memoryDigest;
  }
}
