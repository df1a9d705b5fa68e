package dev.ferry.cluster.drs;

/** A host as DRS sees it. Only {@link #ACTIVE} hosts take VMs (placement, balance, evacuation). */
public enum HostState {
  ACTIVE,
  /** Takes no new VMs; its VMs are evacuated by mandatory moves; it then becomes {@link #IN_MAINTENANCE}. */
  ENTERING_MAINTENANCE,
  IN_MAINTENANCE,
  /** Gone (HA restarts its VMs elsewhere): its VMs run nowhere and count for no rule. */
  DOWN;

  /** For reasons: "host-c, which is entering maintenance". */
  String describe() {
    return switch (this) {
      case ACTIVE -> "active";
      case ENTERING_MAINTENANCE -> "entering maintenance";
      case IN_MAINTENANCE -> "in maintenance";
      case DOWN -> "down";
    };
  }
}
