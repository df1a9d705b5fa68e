package dev.ferry.daemons;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * The cluster's certificate authority: an EC P-256 key and a self-signed CA certificate, and host
 * certificates it signs (the host id as subject CN and DNS SAN, usable as TLS server and client).
 * Files are PEM: keys PKCS#8 and readable by their owner only (0600), certificates 0644.
 */
public final class ClusterCa {
  public static final String CA_KEY = "ca.key";
  public static final String CA_CERT = "ca.crt";
  public static final String HOST_KEY = dev.ferry.agent.transport.MigrationTls.KEY_FILE;
  public static final String HOST_CERT = dev.ferry.agent.transport.MigrationTls.CERT_FILE;
  private static final String SIGNATURE = "SHA256withECDSA";
  private static final SecureRandom RANDOM = new SecureRandom();

  private final PrivateKey key;
  private final X509Certificate cert;

  private ClusterCa(PrivateKey key, X509Certificate cert) {
    this.key = key;
    this.cert = cert;
  }

  /** Creates a CA in {@code dir} (created 0700 if missing); refuses to overwrite one. */
  public static ClusterCa init(Path dir, Duration validity) throws IOException, GeneralSecurityException {
    if (Files.exists(dir.resolve(CA_KEY)) || Files.exists(dir.resolve(CA_CERT))) {
      throw new IOException(dir + " already holds a CA (" + CA_KEY + ", " + CA_CERT + "); not overwritten");
    }
    KeyPair pair = newKeyPair();
    X500Name name = new X500Name("CN=Ferry cluster CA");
    X509v3CertificateBuilder builder = builder(name, name, pair, validity)
        .addExtension(Extension.basicConstraints, true, new BasicConstraints(0))
        .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign))
        .addExtension(Extension.subjectKeyIdentifier, false,
            new JcaX509ExtensionUtils().createSubjectKeyIdentifier(pair.getPublic()));
    X509Certificate cert = sign(builder, pair.getPrivate());
    createDirectory(dir);
    writeKey(dir.resolve(CA_KEY), pair.getPrivate());
    writeCert(dir.resolve(CA_CERT), cert);
    return new ClusterCa(pair.getPrivate(), cert);
  }

  /** Loads the CA in {@code dir}. */
  public static ClusterCa load(Path dir) throws IOException, GeneralSecurityException {
    X509Certificate cert = readCert(dir.resolve(CA_CERT));
    byte[] der = pemBody(dir.resolve(CA_KEY), "PRIVATE KEY");
    PrivateKey key = KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(der));
    return new ClusterCa(key, cert);
  }

  /**
   * Issues a key and certificate for {@code hostId} into {@code out} (created 0700 if missing):
   * host.key, host.crt and a copy of the CA's certificate, ca.crt.
   */
  public X509Certificate issue(String hostId, Path out, Duration validity) throws IOException, GeneralSecurityException {
    KeyPair pair = newKeyPair();
    JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
    X509v3CertificateBuilder builder = builder(X500Name.getInstance(cert.getSubjectX500Principal().getEncoded()),
        new X500Name("CN=" + hostId), pair, validity)
        .addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
        .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature))
        .addExtension(Extension.extendedKeyUsage, false,
            new ExtendedKeyUsage(new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}))
        .addExtension(Extension.subjectAlternativeName, false,
            new GeneralNames(new GeneralName(GeneralName.dNSName, hostId)))
        .addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(pair.getPublic()))
        .addExtension(Extension.authorityKeyIdentifier, false, ext.createAuthorityKeyIdentifier(cert));
    X509Certificate issued = sign(builder, key);
    createDirectory(out);
    writeKey(out.resolve(HOST_KEY), pair.getPrivate());
    writeCert(out.resolve(HOST_CERT), issued);
    writeCert(out.resolve(CA_CERT), cert);
    return issued;
  }

  public X509Certificate certificate() {
    return cert;
  }

  private static KeyPair newKeyPair() throws GeneralSecurityException {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
    generator.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
    return generator.generateKeyPair();
  }

  private static X509v3CertificateBuilder builder(X500Name issuer, X500Name subject, KeyPair pair, Duration validity) {
    Instant now = Instant.now();
    // A minute back: clocks of the hosts differ a little, and a certificate "not yet valid" fails.
    return new JcaX509v3CertificateBuilder(issuer, new BigInteger(127, RANDOM).add(BigInteger.ONE),
        Date.from(now.minusSeconds(60)), Date.from(now.plus(validity)), subject, pair.getPublic());
  }

  private static X509Certificate sign(X509v3CertificateBuilder builder, PrivateKey signer)
      throws GeneralSecurityException {
    try {
      return new JcaX509CertificateConverter().getCertificate(builder.build(
          new JcaContentSignerBuilder(SIGNATURE).build(signer)));
    } catch (OperatorCreationException e) {
      throw new GeneralSecurityException("cannot sign with " + SIGNATURE + ": " + e.getMessage(), e);
    }
  }

  private static void createDirectory(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    }
  }

  /** Created with mode 0600 from the start: the key is never readable by others, not even briefly. */
  private static void writeKey(Path file, PrivateKey key) throws IOException {
    Files.deleteIfExists(file);
    Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    Files.writeString(file, pem("PRIVATE KEY", key.getEncoded()), StandardCharsets.US_ASCII,
        StandardOpenOption.TRUNCATE_EXISTING);
  }

  private static void writeCert(Path file, X509Certificate cert) throws IOException {
    try {
      Files.writeString(file, pem("CERTIFICATE", cert.getEncoded()), StandardCharsets.US_ASCII);
    } catch (java.security.cert.CertificateEncodingException e) {
      throw new IOException("cannot encode the certificate: " + e.getMessage(), e);
    }
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
  }

  private static String pem(String type, byte[] der) {
    return "-----BEGIN " + type + "-----\n"
        + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der)
        + "\n-----END " + type + "-----\n";
  }

  private static X509Certificate readCert(Path file) throws IOException, GeneralSecurityException {
    try (var in = Files.newInputStream(file)) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
  }

  private static byte[] pemBody(Path file, String type) throws IOException {
    String text = Files.readString(file, StandardCharsets.US_ASCII);
    String begin = "-----BEGIN " + type + "-----";
    String end = "-----END " + type + "-----";
    int from = text.indexOf(begin);
    int to = text.indexOf(end);
    if (from < 0 || to < from) {
      throw new IOException(file + " is not a PEM " + type);
    }
    try {
      return Base64.getMimeDecoder().decode(text.substring(from + begin.length(), to));
    } catch (IllegalArgumentException e) {
      throw new IOException(file + ": bad base64 in the PEM " + type, e);
    }
  }
}
