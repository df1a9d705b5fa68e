package dev.ferry.cluster.coordinator;

import dev.ferry.proto.GuestSpec;

/**
 * Where a VM without a chosen host goes: {@code vm create} without {@code --host} and HA
 * restarts. One method, so the DRS planner's placement can take the place of the default
 * ({@link Planner#leastLoaded}) without touching its callers.
 */
@FunctionalInterface
public interface VmPlacement {
  VmPlacement LEAST_LOADED = Planner::leastLoaded;

  /** The host for {@code spec} in {@code view}, or a refusal saying why there is none. */
  Planner.Result place(ClusterView view, GuestSpec spec);
}
