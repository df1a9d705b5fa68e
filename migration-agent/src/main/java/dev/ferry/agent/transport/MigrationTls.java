package dev.ferry.agent.transport;

import dev.ferry.common.InvalidConfigException;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Locale;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import javax.security.auth.x500.X500Principal;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * TLS on the links between agents (and from tools to agents): TLS 1.3 only, both sides present a
 * certificate signed by the cluster's CA ({@code ferry ca}), and each checks that the other's
 * certificate names the host it expects (the host id is the certificate's subject CN and a DNS
 * SAN). Host names are not checked the web's way: agents connect by address, and what matters is
 * which cluster host holds the key.
 */
public final class MigrationTls {
  private static final Logger LOG = LoggerFactory.getLogger(MigrationTls.class);
  private static final String TLS_1_3 = "TLSv1.3";
  /** What {@code ferry ca issue} writes into its output directory. */
  public static final String CERT_FILE = "host.crt";
  public static final String KEY_FILE = "host.key";
  public static final String CA_FILE = "ca.crt";

  /** Whether links are encrypted. */
  public enum Mode {
    /** Every link is TLS; a peer that does not speak it is refused. */
    REQUIRED,
    /**
     * TLS when both sides have it: as a server, accept TLS and plain connections; as a client, try
     * TLS and fall back to plain only if the peer answers without TLS at all (never after a
     * certificate was refused). For rolling TLS out across a running cluster; an attacker on the
     * path can force plain text.
     */
    OPPORTUNISTIC,
    /** No TLS. */
    OFF;

    public static Mode parse(String text) {
      try {
        return valueOf(text.trim().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new InvalidConfigException("migration-encryption",
            "'" + text + "' is not one of required, opportunistic, off");
      }
    }
  }

  /** Which TLS implementation: BoringSSL through netty-tcnative, or the JDK's. */
  public enum Provider {
    AUTO, OPENSSL, JDK;

    public static Provider parse(String text) {
      try {
        return valueOf(text.trim().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new InvalidConfigException("tls-provider", "'" + text + "' is not one of auto, openssl, jdk");
      }
    }
  }

  /** Plain links, no certificates. */
  public static final MigrationTls OFF = new MigrationTls(Mode.OFF, null, null, null, null);

  private final Mode mode;
  private final SslContext server;
  private final SslContext client;
  private final SslProvider provider;
  private final String localHostId;

  private MigrationTls(Mode mode, SslContext server, SslContext client, SslProvider provider, String localHostId) {
    this.mode = mode;
    this.server = server;
    this.client = client;
    this.provider = provider;
    this.localHostId = localHostId;
  }

  /**
   * Loads this host's certificate and key and the cluster CA's certificate. {@code mode} REQUIRED
   * needs all three files; OPPORTUNISTIC without files means plain links.
   */
  public static MigrationTls load(Mode mode, Path cert, Path key, Path ca, Provider requested) {
    boolean anyFile = cert != null || key != null || ca != null;
    if (mode == Mode.OFF || (mode == Mode.OPPORTUNISTIC && !anyFile)) {
      return mode == Mode.OFF ? OFF : new MigrationTls(Mode.OPPORTUNISTIC, null, null, null, null);
    }
    requireFile("tls-cert", cert);
    requireFile("tls-key", key);
    requireFile("tls-ca", ca);
    X509Certificate own = readCertificate("tls-cert", cert);
    String hostId = hostIdOf(own);
    SslProvider provider = choose(requested);
    try {
      SslContext server = SslContextBuilder.forServer(cert.toFile(), key.toFile())
          .trustManager(ca.toFile()).clientAuth(ClientAuth.REQUIRE)
          .protocols(TLS_1_3).sslProvider(provider).build();
      SslContext client = SslContextBuilder.forClient().keyManager(cert.toFile(), key.toFile())
          .trustManager(ca.toFile()).endpointIdentificationAlgorithm(null)
          .protocols(TLS_1_3).sslProvider(provider).build();
      return new MigrationTls(mode, server, client, provider, hostId);
    } catch (SSLException | IllegalArgumentException e) {
      throw new InvalidConfigException("tls-cert", "cannot use " + cert + " with key " + key + " and CA " + ca + ": "
          + rootMessage(e));
    }
  }

  /** The certificate, key and CA that {@code ferry ca issue} wrote into {@code dir}. */
  public static MigrationTls loadDir(Mode mode, Path dir, Provider requested) {
    if (!Files.isDirectory(dir)) {
      throw new InvalidConfigException("tls-dir", dir + " is not a directory");
    }
    return load(mode, dir.resolve(CERT_FILE), dir.resolve(KEY_FILE), dir.resolve(CA_FILE), requested);
  }

  private static void requireFile(String field, Path file) {
    if (file == null) {
      throw new InvalidConfigException(field, "required with TLS (or --tls-dir DIR from 'ferry ca issue')");
    }
    if (!Files.isReadable(file)) {
      throw new InvalidConfigException(field, file + " is not a readable file");
    }
  }

  private static X509Certificate readCertificate(String field, Path file) {
    try (var in = Files.newInputStream(file)) {
      return (X509Certificate) java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in);
    } catch (java.io.IOException | java.security.cert.CertificateException | ClassCastException e) {
      throw new InvalidConfigException(field, file + " holds no X.509 certificate: " + rootMessage(e));
    }
  }

  /** OpenSSL (BoringSSL) when it loads, else the JDK's provider; an explicit request must be met. */
  static SslProvider choose(Provider requested) {
    boolean openssl = OpenSsl.isAvailable();
    return switch (requested) {
      case OPENSSL -> {
        if (!openssl) {
          throw new InvalidConfigException("tls-provider",
              "openssl requested but netty-tcnative is unavailable: " + rootMessage(OpenSsl.unavailabilityCause()));
        }
        yield SslProvider.OPENSSL;
      }
      case JDK -> SslProvider.JDK;
      default -> openssl ? SslProvider.OPENSSL : SslProvider.JDK;
    };
  }

  public Mode mode() {
    return mode;
  }

  /** True if this host has certificates (it can speak TLS). */
  public boolean enabled() {
    return server != null;
  }

  /** The host id this host's own certificate names (null without TLS). */
  public String localHostId() {
    return localHostId;
  }

  /** One line for the log: mode, provider, own identity. */
  public String describe() {
    if (!enabled()) {
      return mode == Mode.OFF ? "off (links are not encrypted)" : "opportunistic without certificates (plain links)";
    }
    String impl = provider == SslProvider.OPENSSL ? "openssl (" + OpenSsl.versionString() + ")"
        : OpenSsl.isAvailable() ? "jdk" : "jdk (openssl unavailable: " + rootMessage(OpenSsl.unavailabilityCause()) + ")";
    return mode.name().toLowerCase(Locale.ROOT) + ", TLS 1.3 via " + impl + ", certificate for " + localHostId;
  }

  /** The provider in use (null without TLS). */
  public SslProvider provider() {
    return provider;
  }

  SslHandler newServerHandler(ByteBufAllocator alloc) {
    return server.newHandler(alloc);
  }

  SslContext serverContext() {
    return server;
  }

  SslHandler newClientHandler(ByteBufAllocator alloc, java.net.InetSocketAddress peer) {
    return client.newHandler(alloc, peer.getHostString(), peer.getPort());
  }

  /**
   * The host id a certificate names: its DNS SAN if it has exactly one, else its subject CN.
   * {@code ferry ca issue} writes both, equal.
   */
  public static String hostIdOf(X509Certificate cert) {
    try {
      var sans = cert.getSubjectAlternativeNames();
      if (sans != null) {
        List<String> dns = sans.stream().filter(s -> Integer.valueOf(2).equals(s.get(0)))
            .map(s -> (String) s.get(1)).toList();
        if (dns.size() == 1) {
          return dns.get(0);
        }
      }
    } catch (CertificateParsingException e) {
      // fall back to the subject
    }
    String dn = cert.getSubjectX500Principal().getName(X500Principal.RFC2253);
    for (String part : dn.split(",")) {
      if (part.startsWith("CN=")) {
        return part.substring(3);
      }
    }
    return "(no host id in " + dn + ")";
  }

  /** The host id of the peer's verified certificate in {@code session}. */
  static String peerHostId(SSLSession session) throws SSLPeerUnverifiedException {
    return hostIdOf((X509Certificate) session.getPeerCertificates()[0]);
  }

  static String rootMessage(Throwable t) {
    if (t == null) {
      return "unknown reason";
    }
    Throwable root = t;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    return root.getMessage() != null ? root.getMessage() : root.toString();
  }

  /** Logs the choice once at start-up. */
  public MigrationTls logged(String who) {
    LOG.info("{} link encryption: {}", who, describe());
    return this;
  }
}
