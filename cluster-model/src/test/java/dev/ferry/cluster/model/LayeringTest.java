package dev.ferry.cluster.model;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

/** The records and their state machines are pure: no transport, no ZooKeeper client, no CLI, no engine. */
@AnalyzeClasses(packages = "dev.ferry.cluster.model", importOptions = ImportOption.DoNotIncludeTests.class)
class LayeringTest {
  @ArchTest
  static final ArchRule pure = noClasses().that().resideInAPackage("dev.ferry.cluster.model..")
      .should().dependOnClassesThat().resideInAnyPackage("io.netty..", "org.apache.curator..", "org.apache.zookeeper..",
          "picocli..", "dev.ferry.engine..", "dev.ferry.agent..", "dev.ferry.cli..", "dev.ferry.daemons..")
      .because("cluster-model is used by agents, coordinator and CLI alike (docs/architecture.md)");
}
