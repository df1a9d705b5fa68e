package dev.ferry.agent.testing;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A throw-away cluster CA for tests, issuing host certificates as {@code ferry ca issue} does
 * (host id as CN and DNS SAN; files host.crt, host.key, ca.crt in one directory).
 */
public final class TestCa {
  private static final SecureRandom RANDOM = new SecureRandom();
  private final KeyPair pair;
  private final X509Certificate cert;

  public TestCa(String name) throws Exception {
    pair = newPair();
    X500Name subject = new X500Name("CN=" + name);
    cert = sign(builder(subject, subject, pair)
        .addExtension(Extension.basicConstraints, true, new BasicConstraints(0))
        .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign)), pair.getPrivate());
  }

  /** Issues a certificate for {@code hostId} into {@code dir}; returns {@code dir}. */
  public Path issue(String hostId, Path dir) throws Exception {
    KeyPair host = newPair();
    X509Certificate issued = sign(builder(X500Name.getInstance(cert.getSubjectX500Principal().getEncoded()),
        new X500Name("CN=" + hostId), host)
        .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature))
        .addExtension(Extension.subjectAlternativeName, false,
            new GeneralNames(new GeneralName(GeneralName.dNSName, hostId))), pair.getPrivate());
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("host.key"), pem("PRIVATE KEY", host.getPrivate().getEncoded()));
    Files.writeString(dir.resolve("host.crt"), pem("CERTIFICATE", issued.getEncoded()));
    Files.writeString(dir.resolve("ca.crt"), pem("CERTIFICATE", cert.getEncoded()));
    return dir;
  }

  private static KeyPair newPair() throws Exception {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
    generator.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
    return generator.generateKeyPair();
  }

  private static X509v3CertificateBuilder builder(X500Name issuer, X500Name subject, KeyPair subjectPair) {
    Instant now = Instant.now();
    return new JcaX509v3CertificateBuilder(issuer, new BigInteger(64, RANDOM).add(BigInteger.ONE),
        Date.from(now.minusSeconds(60)), Date.from(now.plusSeconds(86_400)), subject, subjectPair.getPublic());
  }

  private static X509Certificate sign(X509v3CertificateBuilder builder, PrivateKey signer) throws Exception {
    return new JcaX509CertificateConverter().getCertificate(builder.build(
        new JcaContentSignerBuilder("SHA256withECDSA").build(signer)));
  }

  private static String pem(String type, byte[] der) {
    return "-----BEGIN " + type + "-----\n"
        + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der)
        + "\n-----END " + type + "-----\n";
  }
}
