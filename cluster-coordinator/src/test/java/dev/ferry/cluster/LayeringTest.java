package dev.ferry.cluster;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

/**
 * The coordinator's planner is a pure function (no ZooKeeper, no Netty, no clock of its own); the
 * coordinator and its API never import a command line. DRS ({@code dev.ferry.cluster.drs}) is
 * pure too, over plain records: no Netty, Curator, ZooKeeper, picocli or generated Protobuf types,
 * and none of the coordinator's own classes (the coordinator builds its snapshots, not the reverse).
 */
@AnalyzeClasses(packages = "dev.ferry.cluster", importOptions = ImportOption.DoNotIncludeTests.class)
class LayeringTest {
  @ArchTest
  static final ArchRule noCli = noClasses().that().resideInAPackage("dev.ferry.cluster..")
      .should().dependOnClassesThat().resideInAnyPackage("dev.ferry.cli..", "dev.ferry.daemons..", "dev.ferry.agent.cli..",
          "picocli..");

  @ArchTest
  static final ArchRule plannerIsPure = noClasses().that().haveSimpleNameStartingWith("Planner")
      .should().dependOnClassesThat().resideInAnyPackage("io.netty..", "org.apache.curator..", "org.apache.zookeeper..");

  @ArchTest
  static final ArchRule drsIsPure = noClasses().that().resideInAPackage("dev.ferry.cluster.drs..")
      .should().dependOnClassesThat().resideInAnyPackage("io.netty..", "org.apache.curator..", "org.apache.zookeeper..",
          "picocli..", "dev.ferry.proto..", "com.google.protobuf..", "dev.ferry.cluster.coordinator..",
          "dev.ferry.cluster.api..", "dev.ferry.agent..");
}
