package dev.ferry.storage;

import java.nio.file.Path;

/**
 * A child process for {@link CrashSafetyTest}: as host h1 at epoch 1, rewrites VM "crash"'s config
 * (or its checkpoint "mem") with ever newer versions, printing "committed N" after each, until it
 * is killed.
 *
 * <p>Arguments: datastore root, {@code config} or {@code checkpoint}.
 */
public final class CrashWriterMain {
  static final String VM = "crash";
  static final String HOST = "h1";
  static final long EPOCH = 1;
  static final String CHECKPOINT = "mem";
  static final long CHECKPOINT_MEMORY_BYTES = 8 << 20;
  static final int CHECKPOINT_CHUNK_BYTES = 64 << 10;
  private static final int VERSIONS_MAX = 100_000;

  private CrashWriterMain() {}

  public static void main(String[] args) {
    VmDirectory vm = Datastore.open(Path.of(args[0])).vm(VM);
    boolean config = args[1].equals("config");
    try (LeasedWriter writer = vm.openWriter(HOST, EPOCH)) {
      long version = config ? Patterns.configVersion(vm.readConfig()) : Patterns.verifyCheckpoint(vm, CHECKPOINT);
      for (int i = 0; i < VERSIONS_MAX; i++) {
        version++;
        if (config) {
          writer.writeConfig(Patterns.config(version));
        } else {
          Patterns.writeCheckpoint(writer, CHECKPOINT, version, CHECKPOINT_MEMORY_BYTES, CHECKPOINT_CHUNK_BYTES);
        }
        System.out.println("committed " + version);
        System.out.flush();
      }
    }
  }
}
