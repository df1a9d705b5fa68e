/**
 * DRS: where VMs should run, as pure functions of a cluster {@link dev.ferry.cluster.drs.Snapshot}
 * (plain records: no ZooKeeper, Netty, Curator, picocli or generated Protobuf types, no clock of
 * its own). {@link dev.ferry.cluster.drs.Placement} chooses a host for one VM (vm create without a
 * host, HA restarts, maintenance evacuation); {@link dev.ferry.cluster.drs.Balancer} plans the
 * moves of a round (mandatory ones for maintenance and rules, then balance by threshold). The
 * coordinator builds the snapshot from its records and decides what to apply by mode.
 */
package dev.ferry.cluster.drs;
