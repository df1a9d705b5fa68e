package dev.ferry.agent.transport;

/** The migration contract over the JDK's TLS (the fallback where netty-tcnative does not load). */
class TlsJdkMigrationTest extends TlsMigrationTest {
  @Override
  protected MigrationTls.Provider provider() {
    return MigrationTls.Provider.JDK;
  }
}
