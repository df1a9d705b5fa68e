package dev.ferry.agent.cli;

import dev.ferry.common.InvalidConfigException;
import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.ParseResult;

/**
 * A daemon's config file: {@code key = value} lines whose keys are the command's long option
 * names without dashes ({@code host-id = h1}). Options given on the command line win. An unknown
 * key is an error naming it, so a typo never passes silently.
 */
public final class ConfigFile {
  private static final long FILE_BYTES_MAX = 64 * 1024;

  private ConfigFile() {}

  /** Fills every String option of {@code spec} not given on the command line from {@code file}. */
  public static void apply(Path file, CommandSpec spec, ParseResult parsed, Set<String> ignoredKeys) {
    Properties properties = read(file);
    Set<String> known = new TreeSet<>();
    for (OptionSpec option : spec.options()) {
      String key = option.longestName().replaceFirst("^-+", "");
      known.add(key);
      String value = properties.getProperty(key);
      if (value != null && !parsed.hasMatchedOption(option) && !ignoredKeys.contains(key)) {
        if (option.type() != String.class) {
          throw new InvalidConfigException(file + ": " + key, "cannot be set from a config file");
        }
        option.setValue(value.trim());
      }
    }
    for (String key : properties.stringPropertyNames()) {
      if (!known.contains(key) || ignoredKeys.contains(key)) {
        throw new InvalidConfigException(file + ": " + key, "unknown setting (known: "
            + String.join(", ", known.stream().filter(k -> !ignoredKeys.contains(k)).toList()) + ")");
      }
    }
  }

  private static Properties read(Path file) {
    try {
      if (Files.size(file) > FILE_BYTES_MAX) {
        throw new InvalidConfigException("config", file + " is larger than 64 KiB");
      }
      Properties properties = new Properties();
      try (Reader reader = Files.newBufferedReader(file)) {
        properties.load(reader);
      }
      return properties;
    } catch (IOException e) {
      throw new InvalidConfigException("config", "cannot read " + file + ": " + e.getMessage());
    }
  }
}
