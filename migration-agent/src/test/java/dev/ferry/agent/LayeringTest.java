package dev.ferry.agent;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

/** The agent's parts do not reach up into its command line, nor into the coordinator or the operator CLI. */
@AnalyzeClasses(packages = "dev.ferry.agent", importOptions = ImportOption.DoNotIncludeTests.class)
class LayeringTest {
  @ArchTest
  static final ArchRule nothingImportsTheCli = noClasses().that().resideInAPackage("dev.ferry.agent..")
      .and().resideOutsideOfPackage("dev.ferry.agent.cli..")
      .should().dependOnClassesThat().resideInAnyPackage("dev.ferry.agent.cli..", "dev.ferry.cli..", "dev.ferry.daemons..",
          "dev.ferry.cluster.coordinator..", "dev.ferry.cluster.api..", "picocli..");
}
