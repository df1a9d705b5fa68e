package dev.ferry.engine.precopy;

import dev.ferry.engine.clock.Clock;
import dev.ferry.engine.guest.Guest;
import java.util.concurrent.locks.LockSupport;

/** The migration contract over the in-memory link (no sockets). */
class InMemoryMigrationTest extends MigrationContractTest {
  @Override
  protected Connector connector() {
    return new Connector() {
      private InMemoryLink link;

      @Override
      public SourceLink connect(Guest source, RecordingHost host) {
        link = new InMemoryLink(Clock.SYSTEM, LockSupport::parkNanos, bytes -> { });
        link.connect(new TargetMigration(host, link.targetEnd, Clock.SYSTEM));
        return link;
      }

      @Override
      public void corruptPages() {
        link.corruptBatches(PageCorruption::flipFirstPayloadByte);
      }

      @Override
      public void breakLink() {
        link.breakLink("connection reset (test)");
      }

      @Override
      public void close() {
        // nothing to release
      }
    };
  }
}
