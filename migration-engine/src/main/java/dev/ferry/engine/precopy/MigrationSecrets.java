package dev.ferry.engine.precopy;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The agents' mutual proof of a migration's secret (a fresh random value in the migration's
 * ZooKeeper record): each side answers the other's nonce with an HMAC-SHA256, so a stray process
 * can neither push memory into a host nor pull a guest's memory, and a recorded proof is useless
 * for another connection.
 */
public final class MigrationSecrets {
  public static final int SECRET_BYTES = 32;
  public static final int NONCE_BYTES = 16;
  private static final SecureRandom RANDOM = new SecureRandom();

  private MigrationSecrets() {}

  public static byte[] newSecret() {
    byte[] secret = new byte[SECRET_BYTES];
    RANDOM.nextBytes(secret);
    return secret;
  }

  public static byte[] nonce() {
    byte[] nonce = new byte[NONCE_BYTES];
    RANDOM.nextBytes(nonce);
    return nonce;
  }

  /** The proof that {@code role} ("source" or "target") knows {@code secret}, for the peer's {@code nonce}. */
  public static byte[] proof(byte[] secret, String role, String migrationId, byte[] nonce) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(secret, "HmacSHA256"));
      mac.update(("ferry-" + role + "|" + migrationId + "|").getBytes(StandardCharsets.UTF_8));
      mac.update(nonce);
      return mac.doFinal();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 unavailable", e);
    }
  }

  /** Constant-time check of a peer's proof. */
  public static boolean verify(byte[] secret, String role, String migrationId, byte[] nonce, byte[] proof) {
    if (nonce == null || nonce.length != NONCE_BYTES) {
      return false;
    }
    return MessageDigest.isEqual(proof(secret, role, migrationId, nonce), proof);
  }
}
