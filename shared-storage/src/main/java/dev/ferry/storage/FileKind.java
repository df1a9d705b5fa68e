package dev.ferry.storage;

/**
 * The kinds of file Ferry writes on a datastore, each with its magic, the format version this
 * Ferry writes (and the newest it reads), and the bound on its header payload. A reader checks the
 * magic first, so a lease is never read as a config; and refuses a newer format by name instead of
 * misreading it.
 */
enum FileKind {
  /** {@code vm.conf}: the VM's configuration, opaque bytes to this module. */
  CONFIG("VM config", "FCFG", 1, 1 << 20),
  /** {@code lease}: owner host, epoch, heartbeat. */
  LEASE("lease", "FLSE", 1, 256),
  /** {@code disk-N.img}: a 4 KiB header block (capacity) before the raw disk bytes. */
  DISK("disk image", "FDSK", 1, 64),
  /** {@code checkpoint/NAME.ckpt}: the header before the streamed memory chunks and trailer. */
  CHECKPOINT("memory checkpoint", "FCKP", 1, 1024),
  /** {@code hosts/ID.heartbeat}: host id, sequence number, wall-clock millis of the write. */
  HEARTBEAT("host heartbeat", "FHBT", 1, 128);

  /** What the file is, for messages. */
  final String description;
  final int magic;
  /** The version written; also the newest one this Ferry can read. */
  final int formatVersion;
  /** The bound on the header payload's length; a longer one is refused before it is read. */
  final int payloadBytesMax;

  FileKind(String description, String magic, int formatVersion, int payloadBytesMax) {
    this.description = description;
    this.magic = magicOf(magic);
    this.formatVersion = formatVersion;
    this.payloadBytesMax = payloadBytesMax;
  }

  /** Four ASCII characters as a big-endian int, so the magic reads as text in a hex dump. */
  static int magicOf(String fourChars) {
    if (fourChars.length() != 4) {
      throw new IllegalArgumentException("a magic is 4 characters: " + fourChars);
    }
    return fourChars.charAt(0) << 24 | fourChars.charAt(1) << 16 | fourChars.charAt(2) << 8 | fourChars.charAt(3);
  }
}
