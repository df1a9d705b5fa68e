package dev.ferry.bench;

import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.MigrationPolicy;
import dev.ferry.proto.MigrationReport;
import java.io.IOException;

/** Where a benchmark run migrates: two bare agents (standalone) or a whole cluster through its API. */
interface Harness extends AutoCloseable {
  /** "standalone" or "cluster". */
  String mode();

  /** The link's encryption, one of the --tls modes. */
  default String tls() {
    return "off";
  }

  /** One line for the table's heading: the processes and where their logs are. */
  String describe();

  /** Creates the guest on the first host, migrates it to the second, checks its memory there, deletes it. */
  Outcome migrate(GuestSpec spec, MigrationPolicy policy) throws IOException;

  @Override
  void close() throws IOException;

  /** A run's report and, for a completed one, whether the target's memory and vCPUs continue the source's. */
  record Outcome(MigrationReport report, Boolean memoryIdentical, Boolean vcpuContinues) {}
}
