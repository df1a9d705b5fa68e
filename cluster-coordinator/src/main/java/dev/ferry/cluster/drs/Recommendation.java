package dev.ferry.cluster.drs;

import java.nio.charset.StandardCharsets;
import java.util.UUID;

/**
 * One move of a plan. {@code id} is stable while the situation holds: it is derived from the VM,
 * both hosts, the kind and the VM's last move, so the same move recommended by two rounds has one
 * id ({@code ferry drs apply ID}) and a new one once the VM has moved. {@code automatic}: the
 * coordinator applies it without an operator (maintenance in every mode; the rest in full mode).
 */
public record Recommendation(String id, String vm, String from, String to, Kind kind, String reason,
    boolean automatic) {

  public enum Kind {
    /** Lowers the spread. */
    BALANCE,
    /** Empties a host entering maintenance. */
    MANDATORY_MAINTENANCE,
    /** Repairs a broken must, affinity or anti-affinity rule. */
    MANDATORY_RULE;

    public boolean mandatory() {
      return this != BALANCE;
    }
  }

  static String idFor(Vm vm, String from, String to, Kind kind) {
    String key = vm.name() + '\n' + from + '\n' + to + '\n' + kind + '\n'
        + (vm.lastMove() == null ? "" : vm.lastMove().atMillis());
    return "drs-" + UUID.nameUUIDFromBytes(key.getBytes(StandardCharsets.UTF_8)).toString().replace("-", "").substring(0, 12);
  }
}
