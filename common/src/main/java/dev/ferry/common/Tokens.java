package dev.ferry.common;

import java.nio.file.Files;
import java.nio.file.Path;

/** The API's bearer token, as the coordinator and the CLI read it from a file. */
public final class Tokens {
  /** Shorter tokens are guessable. */
  public static final int TOKEN_CHARS_MIN = 16;

  private Tokens() {
  }

  /** The bearer token: the first line of {@code file}, printable, at least 16 characters. */
  public static String read(Path file) {
    try {
      if (Files.size(file) > 4096) {
        throw new InvalidConfigException("token-file", file + " is larger than 4 KiB");
      }
      String token = Files.readAllLines(file).stream().findFirst().orElse("").trim();
      if (token.length() < TOKEN_CHARS_MIN || !token.chars().allMatch(c -> c > 0x20 && c < 0x7f)) {
        throw new InvalidConfigException("token-file", file + ": the token must be at least " + TOKEN_CHARS_MIN
            + " printable characters without spaces");
      }
      return token;
    } catch (java.io.IOException e) {
      throw new InvalidConfigException("token-file", "cannot read " + file + ": " + e.getMessage());
    }
  }
}
