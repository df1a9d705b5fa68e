package dev.ferry.storage;

import java.util.Optional;

/**
 * One line of {@code ferry datastore ls}: a VM directory, the bytes its files take (logical
 * sizes: sparse disks count at full size), its lease if it has one, and what is wrong with the
 * lease file if it cannot be read.
 */
public record VmSummary(String name, long sizeBytes, Optional<LeaseStatus> lease, Optional<String> leaseProblem) {}
