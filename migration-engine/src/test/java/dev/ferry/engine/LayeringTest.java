package dev.ferry.engine;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

/**
 * The engine is guests, dirty log, pre-copy and the page codec: it runs the same over an
 * in-memory link and over sockets, so it may not see a transport, a coordination service or a
 * command line (see docs/architecture.md).
 */
@AnalyzeClasses(packages = "dev.ferry.engine", importOptions = ImportOption.DoNotIncludeTests.class)
class LayeringTest {
  @ArchTest
  static final ArchRule noNettyCuratorOrCli = noClasses().that().resideInAPackage("dev.ferry.engine..")
      .should().dependOnClassesThat().resideInAnyPackage("io.netty..", "org.apache.curator..", "org.apache.zookeeper..",
          "picocli..", "dev.ferry.agent..", "dev.ferry.cluster..", "dev.ferry.cli..", "dev.ferry.daemons..")
      .because("the engine is Netty-, Curator- and CLI-free (docs/architecture.md)");

  @ArchTest
  static final ArchRule oneClock = noClasses().that().resideInAPackage("dev.ferry.engine..")
      .and().doNotHaveSimpleName("Clock")
      .should().callMethod(System.class, "nanoTime").orShould().callMethod(System.class, "currentTimeMillis")
      .because("the engine reads time from one Clock, so the seeded simulation controls all of it");

  @ArchTest
  static final ArchRule noPackageCycles = slices().matching("dev.ferry.engine.(*)..").should().beFreeOfCycles();
}
