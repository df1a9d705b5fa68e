package dev.ferry.engine.precopy;

/**
 * The operator's downtime budget split between the last pages and the commit: the commit's
 * part is what recent commits cost ({@code reserveMillis}), but at least half the budget stays
 * for the pages, so a slow spell of the cluster's store cannot starve the copy.
 */
public record DowntimeBudget(long budgetMillis, long commitMillis) {

  /** The split of {@code budgetMillis} when the commit is expected to take {@code reserveMillis}. */
  public static DowntimeBudget split(long budgetMillis, long reserveMillis) {
    long pages = Math.max((budgetMillis + 1) / 2, budgetMillis - Math.max(0, reserveMillis));
    return new DowntimeBudget(budgetMillis, budgetMillis - pages);
  }

  public long pagesMillis() {
    return budgetMillis - commitMillis;
  }

  /** "budget 50 ms: 38 for pages, 12 for the commit". */
  public String describe() {
    return "budget " + budgetMillis + " ms: " + pagesMillis() + " for pages, " + commitMillis + " for the commit";
  }
}
