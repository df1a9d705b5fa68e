package dev.ferry.engine.guest;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import net.openhft.chronicle.core.OS;
import net.openhft.posix.PosixAPI;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Anonymous memory for guests, through Chronicle's POSIX bindings: {@code mmap(MAP_PRIVATE |
 * MAP_ANONYMOUS | MAP_NORESERVE)} with {@code MADV_HUGEPAGE} (page faults cost ~2 us per 4 KiB
 * here, a 2 MiB huge page far less per byte), and {@code MADV_POPULATE_WRITE} to commit pages
 * ahead of use. Where the bindings are unavailable, a private mapping of {@code /dev/zero} does the
 * same without the advice.
 */
final class AnonymousMemory {
  private static final Logger LOG = LoggerFactory.getLogger(AnonymousMemory.class);
  private static final int PROT_READ_WRITE = 0x1 | 0x2;
  private static final int MAP_PRIVATE_ANONYMOUS_NORESERVE = 0x02 | 0x20 | 0x4000;
  private static final int MADV_HUGEPAGE = 14;
  private static final int MADV_POPULATE_WRITE = 23;
  private static final PosixAPI POSIX = loadPosix();
  private static volatile boolean populateWorks = POSIX != null;

  private AnonymousMemory() {}

  private static PosixAPI loadPosix() {
    try {
      PosixAPI posix = PosixAPI.posix();
      if (posix.getClass().getSimpleName().contains("NoOp")) {
        LOG.info("POSIX bindings unavailable ({}): guest memory maps /dev/zero", posix.getClass().getSimpleName());
        return null;
      }
      return posix;
    } catch (RuntimeException | LinkageError e) {
      LOG.info("POSIX bindings unavailable ({}): guest memory maps /dev/zero", e.toString());
      return null;
    }
  }

  /**
   * Which mapping this process uses, for the start-up log. Also maps, advises, populates and
   * unmaps 2 MiB once: JNR builds each native call's stub on its first use (a few hundred
   * milliseconds), which must not happen inside a migration.
   */
  static String describe() {
    long probe = map(2L << 20);
    populate(probe, 2L << 20);
    unmap(probe, 2L << 20);
    return POSIX != null ? "mmap(MAP_ANONYMOUS) with transparent huge pages via " + POSIX.getClass().getSimpleName()
        : "private /dev/zero mappings";
  }

  static long map(long sizeBytes) {
    if (POSIX != null) {
      long address = POSIX.mmap(0, sizeBytes, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS_NORESERVE, -1, 0);
      if (address != -1 && address != 0) {
        if (POSIX.madvise(address, sizeBytes, MADV_HUGEPAGE) != 0) {
          LOG.debug("MADV_HUGEPAGE refused: {}", POSIX.lastErrorStr());
        }
        return address;
      }
      throw new IllegalStateException("cannot map " + sizeBytes + " bytes of guest memory: " + POSIX.lastErrorStr());
    }
    try (FileChannel zero = FileChannel.open(Path.of("/dev/zero"), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      return OS.map(zero, FileChannel.MapMode.PRIVATE, 0, sizeBytes);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot map " + sizeBytes + " bytes of guest memory", e);
    }
  }

  static boolean populate(long address, long bytes) {
    if (!populateWorks) {
      return false;
    }
    if (POSIX.madvise(address, bytes, MADV_POPULATE_WRITE) != 0) {
      populateWorks = false; // older kernels (< 5.14) do not know it; writes will fault instead
      LOG.info("MADV_POPULATE_WRITE unavailable ({}): incoming pages fault on first write", POSIX.lastErrorStr());
      return false;
    }
    return true;
  }

  static void unmap(long address, long sizeBytes) {
    if (POSIX != null) {
      if (POSIX.munmap(address, sizeBytes) != 0) {
        throw new IllegalStateException("cannot unmap guest memory: " + POSIX.lastErrorStr());
      }
      return;
    }
    try {
      OS.unmap(address, sizeBytes);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot unmap guest memory", e);
    }
  }
}
