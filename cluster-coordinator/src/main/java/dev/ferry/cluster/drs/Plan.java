package dev.ferry.cluster.drs;

import java.util.List;

/**
 * A round's outcome: the moves in order (mandatory first), the VMs that must move but cannot
 * (with the reason, e.g. for {@code ferry hosts}: "entering-maintenance (1 VM blocked: ...)"),
 * and the spread before, after the moves, and the threshold's target.
 */
public record Plan(List<Recommendation> recommendations, List<Blocked> blocked, double spreadBefore,
    double spreadAfter, double targetSpread) {

  /** A VM that a mandatory move should take off {@code host} but cannot, and why. */
  public record Blocked(String vm, String host, Recommendation.Kind kind, String reason) {}

  public Plan {
    recommendations = List.copyOf(recommendations);
    blocked = List.copyOf(blocked);
  }
}
