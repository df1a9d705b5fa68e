package dev.ferry.cli;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

/** The operator CLI speaks HTTP to the coordinator and nothing else: it ships no daemon to a laptop. */
@AnalyzeClasses(packages = "dev.ferry.cli", importOptions = ImportOption.DoNotIncludeTests.class)
class LayeringTest {
  @ArchTest
  static final ArchRule onlyRecordsAndHttp = noClasses().that().resideInAPackage("dev.ferry.cli..")
      .should().dependOnClassesThat().resideInAnyPackage("io.netty..", "org.apache.curator..", "org.apache.zookeeper..",
          "net.openhft..", "net.jpountz..", "dev.ferry.engine..", "dev.ferry.agent..", "dev.ferry.storage..",
          "dev.ferry.daemons..", "dev.ferry.cluster.coordinator..", "dev.ferry.cluster.api..")
      .because("ferry-cli depends on proto, common, cluster-model and the JDK's HTTP client only");
}
