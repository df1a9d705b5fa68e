package dev.ferry.storage;

import dev.ferry.storage.StorageException.Problem;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Decodes a header payload field by field; a field that is missing or impossible is reported as
 * {@link Problem#CORRUPT} naming the file and the field. Payloads have already passed their
 * checksum, so these fire only on a bug or a forged file, but they keep a decoder from trusting
 * anything.
 */
final class Fields {
  private final String file;
  private final ByteBuffer in;

  Fields(String file, byte[] payload) {
    this.file = file;
    this.in = ByteBuffer.wrap(payload);
  }

  long i64(String field) {
    try {
      return in.getLong();
    } catch (BufferUnderflowException e) {
      throw corrupt(field, "is missing");
    }
  }

  int i32(String field) {
    try {
      return in.getInt();
    } catch (BufferUnderflowException e) {
      throw corrupt(field, "is missing");
    }
  }

  /** A name ({@link Names}) stored as a length byte and ASCII characters. */
  String name(String field) {
    try {
      int length = in.get() & 0xff;
      if (length > Names.NAME_CHARS_MAX || length > in.remaining()) {
        throw corrupt(field, "has an impossible length " + length);
      }
      byte[] bytes = new byte[length];
      in.get(bytes);
      String name = new String(bytes, StandardCharsets.US_ASCII);
      if (!Names.isValid(name)) {
        throw corrupt(field, "'" + Names.printable(name) + "' is not a valid name");
      }
      return name;
    } catch (BufferUnderflowException e) {
      throw corrupt(field, "is missing");
    }
  }

  /** Fails if bytes are left over: a payload is exactly its fields. */
  void end() {
    if (in.hasRemaining()) {
      throw new StorageException(Problem.CORRUPT, file, in.remaining() + " unexpected bytes after the last field");
    }
  }

  StorageException corrupt(String field, String what) {
    return new StorageException(Problem.CORRUPT, file, "field " + field + " " + what);
  }
}
