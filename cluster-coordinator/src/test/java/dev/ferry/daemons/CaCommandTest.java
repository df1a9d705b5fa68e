package dev.ferry.daemons;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.agent.transport.MigrationTls;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code ferry ca init} and {@code ferry ca issue}: files, modes, and certificates the agents accept. */
class CaCommandTest {
  @TempDir
  Path dir;

  private record Run(int exitCode, String out, String err) { }

  private static Run ferry(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine cli = Daemons.commandLine();
    cli.setOut(new PrintWriter(out));
    cli.setErr(new PrintWriter(err));
    int code = cli.execute(args);
    return new Run(code, out.toString(), err.toString());
  }

  @Test
  void initThenIssueWritesAKeyOnlyTheOwnerReadsAndACertificateForTheHost() throws Exception {
    Path ca = dir.resolve("ca");
    assertEquals(0, ferry("ca", "init", ca.toString()).exitCode());
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(ca.resolve("ca.key"))));
    assertEquals("rw-r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(ca.resolve("ca.crt"))));

    Path out = dir.resolve("host-1");
    Run issued = ferry("ca", "issue", "host-1", "--ca", ca.toString(), "--out", out.toString());
    assertEquals(0, issued.exitCode(), issued.err());
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(out.resolve("host.key"))));
    X509Certificate host = read(out.resolve("host.crt"));
    X509Certificate authority = read(ca.resolve("ca.crt"));
    host.verify(authority.getPublicKey());
    assertEquals("CN=host-1", host.getSubjectX500Principal().getName());
    assertEquals("host-1", MigrationTls.hostIdOf(host));
    assertEquals(read(out.resolve("ca.crt")), authority);
    MigrationTls tls = MigrationTls.loadDir(MigrationTls.Mode.REQUIRED, out, MigrationTls.Provider.AUTO);
    assertEquals("host-1", tls.localHostId(), "the agent takes the files as they are");
  }

  @Test
  void issueTakesSeveralHostsIntoTheCaDirectory() throws Exception {
    Path ca = dir.resolve("ca");
    assertEquals(0, ferry("ca", "init", ca.toString()).exitCode());
    assertEquals(0, ferry("ca", "issue", "host-a", "host-b", "--ca", ca.toString()).exitCode());
    assertEquals("host-b", MigrationTls.hostIdOf(read(ca.resolve("host-b").resolve("host.crt"))));
    Run twoWithOut = ferry("ca", "issue", "host-a", "host-b", "--ca", ca.toString(), "--out", dir.toString());
    assertEquals(2, twoWithOut.exitCode());
    assertTrue(twoWithOut.err().contains("--out: takes one HOST"), twoWithOut.err());
  }

  @Test
  void initRefusesToOverwriteACa() {
    Path ca = dir.resolve("ca");
    assertEquals(0, ferry("ca", "init", ca.toString()).exitCode());
    Run again = ferry("ca", "init", ca.toString());
    assertEquals(1, again.exitCode());
    assertTrue(again.err().contains("already holds a CA"), again.err());
  }

  @Test
  void issueValidatesTheHostId() {
    Path ca = dir.resolve("ca");
    assertEquals(0, ferry("ca", "init", ca.toString()).exitCode());
    Run bad = ferry("ca", "issue", "../etc", "--ca", ca.toString());
    assertEquals(2, bad.exitCode());
    assertTrue(bad.err().contains("HOST: '../etc'"), bad.err());
  }

  private static X509Certificate read(Path file) throws Exception {
    try (var in = Files.newInputStream(file)) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
  }
}
