package dev.ferry.agent.cli;

import dev.ferry.agent.transport.MigrationTls;
import dev.ferry.common.InvalidConfigException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** TLS on the links between agents (and from tools to agents): certificates from {@code ferry ca}. */
public final class TlsOptions {
  @Option(names = "--tls-dir", paramLabel = "DIR",
      description = "Directory written by 'ferry ca issue HOST': host.crt, host.key and ca.crt (instead of"
          + " --tls-cert, --tls-key and --tls-ca).")
  String tlsDir;

  @Option(names = "--tls-cert", paramLabel = "FILE", description = "This host's certificate (PEM), signed by the cluster CA.")
  String tlsCert;

  @Option(names = "--tls-key", paramLabel = "FILE", description = "This host's private key (PEM, PKCS#8).")
  String tlsKey;

  @Option(names = "--tls-ca", paramLabel = "FILE", description = "The cluster CA's certificate (PEM): peers must present one it signed.")
  String tlsCa;

  @Option(names = "--migration-encryption", paramLabel = "MODE",
      description = {"required, opportunistic or off (default: required with certificates, off without).",
          "required: every link is TLS 1.3 with certificates of the cluster CA on both sides, and the peer's"
              + " certificate must name the host expected (a migration's source and target hosts); a peer"
              + " without TLS is refused.",
          "opportunistic: TLS when both sides have it: accepts TLS and plain peers, and falls back to plain"
              + " only when the peer speaks no TLS at all (never after a certificate was refused); for"
              + " rolling TLS out over a running cluster, since an attacker on the path can force plain text.",
          "off: plain links."})
  String migrationEncryption;

  @Option(names = "--tls-provider", paramLabel = "KIND",
      description = "auto, openssl or jdk (default: ${DEFAULT-VALUE}: BoringSSL through netty-tcnative when it loads,"
          + " else the JDK's).", defaultValue = "auto")
  String tlsProvider;

  /** The validated settings (OFF without certificates and without a mode). */
  public MigrationTls load() {
    boolean files = tlsDir != null || tlsCert != null || tlsKey != null || tlsCa != null;
    MigrationTls.Mode mode = migrationEncryption != null ? MigrationTls.Mode.parse(migrationEncryption)
        : files ? MigrationTls.Mode.REQUIRED : MigrationTls.Mode.OFF;
    MigrationTls.Provider provider = MigrationTls.Provider.parse(tlsProvider);
    if (tlsDir != null) {
      if (tlsCert != null || tlsKey != null || tlsCa != null) {
        throw new InvalidConfigException("tls-dir", "give either --tls-dir or --tls-cert/--tls-key/--tls-ca, not both");
      }
      return mode == MigrationTls.Mode.OFF ? MigrationTls.OFF : MigrationTls.loadDir(mode, Path.of(tlsDir), provider);
    }
    return MigrationTls.load(mode, path(tlsCert), path(tlsKey), path(tlsCa), provider);
  }

  private static Path path(String file) {
    return file == null ? null : Path.of(file);
  }
}
