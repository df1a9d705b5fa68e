package dev.ferry.storage;

import dev.ferry.storage.StorageException.Problem;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A datastore: a directory every host mounts (NFS, a cluster filesystem, or a local directory for
 * one host) holding one directory per VM under {@code vms/} (see {@link VmDirectory}). Files are
 * named in messages relative to the root ({@code vms/web-1/vm.conf}), the same on every host.
 */
public final class Datastore {
  public static final String VMS_DIR = "vms";
  /** The bound on VM directories {@link #list()} reads. */
  public static final int VMS_MAX = 10_000;

  private final Path root;
  private final Path vms;
  private final Clock clock;

  private Datastore(Path root, Clock clock) {
    this.root = root;
    this.vms = root.resolve(VMS_DIR);
    this.clock = clock;
  }

  /** Opens the datastore at {@code root} (an existing directory), creating {@code vms/} if needed. */
  public static Datastore open(Path root) {
    return open(root, Clock.systemUTC());
  }

  /** As {@link #open(Path)}; {@code clock} supplies lease heartbeats and their ages (wall-clock millis). */
  public static Datastore open(Path root, Clock clock) {
    Path real;
    try {
      real = root.toRealPath();
    } catch (IOException e) {
      throw new StorageException(Problem.NOT_FOUND, root.toString(), "is not an accessible directory: " + e, e);
    }
    if (!Files.isDirectory(real)) {
      throw new StorageException(Problem.NOT_FOUND, root.toString(), "is not a directory");
    }
    Datastore datastore = new Datastore(real, clock);
    if (!Files.isDirectory(datastore.vms)) {
      try {
        AtomicFiles.createDirectory(datastore.vms, VMS_DIR);
      } catch (StorageException e) {
        if (e.problem() != Problem.ALREADY_EXISTS) {
          throw e;
        }
      }
    }
    return datastore;
  }

  public Path root() {
    return root;
  }

  /** The hosts' heartbeat files ({@code hosts/ID.heartbeat}), HA's evidence that a host still runs. */
  public HostHeartbeat heartbeats() {
    return new HostHeartbeat(root);
  }

  /** Creates the directory of a new VM; fails with {@link Problem#ALREADY_EXISTS} if there is one. */
  public VmDirectory create(String vmName) {
    Path dir = vmPath(vmName);
    AtomicFiles.createDirectory(dir, display(dir));
    return new VmDirectory(this, vmName, dir, clock);
  }

  /** An existing VM's directory; {@link Problem#NOT_FOUND} if there is none. */
  public VmDirectory vm(String vmName) {
    Path dir = vmPath(vmName);
    if (!Files.isDirectory(dir)) {
      throw new StorageException(Problem.NOT_FOUND, display(dir), "no such VM on this datastore");
    }
    return new VmDirectory(this, vmName, dir, clock);
  }

  public boolean contains(String vmName) {
    return Files.isDirectory(vmPath(vmName));
  }

  /**
   * Every VM directory (sorted by name, at most {@value #VMS_MAX}) with its size and lease.
   * Entries under {@code vms/} that are not valid VM names are skipped; a lease that cannot be read
   * is reported in {@link VmSummary#leaseProblem()} rather than failing the listing.
   */
  public List<VmSummary> list() {
    List<String> names = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(vms, Files::isDirectory)) {
      for (Path entry : entries) {
        String name = entry.getFileName().toString();
        if (Names.isValid(name)) {
          names.add(name);
        }
        if (names.size() == VMS_MAX) {
          break;
        }
      }
    } catch (IOException e) {
      throw new StorageException(Problem.IO, VMS_DIR, "cannot be listed: " + e, e);
    }
    names.sort(null);
    List<VmSummary> summaries = new ArrayList<>(names.size());
    for (String name : names) {
      summaries.add(summarize(new VmDirectory(this, name, vms.resolve(name), clock)));
    }
    return summaries;
  }

  private static VmSummary summarize(VmDirectory vm) {
    long sizeBytes = vm.sizeBytes();
    try {
      return new VmSummary(vm.name(), sizeBytes, vm.lease().read(), Optional.empty());
    } catch (StorageException e) {
      return new VmSummary(vm.name(), sizeBytes, Optional.empty(), Optional.of(e.getMessage()));
    }
  }

  private Path vmPath(String vmName) {
    return vms.resolve(Names.require("VM name", vmName));
  }

  /** A path under the root as shown in messages; other paths as they are. */
  String display(Path file) {
    return file.startsWith(root) ? root.relativize(file).toString() : file.toString();
  }
}
