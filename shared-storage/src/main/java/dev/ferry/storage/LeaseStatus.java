package dev.ferry.storage;

/**
 * A VM's lease as read: who holds it ({@code host} at ownership {@code epoch}), when the holder
 * last renewed it ({@code heartbeatMillis}, wall-clock epoch millis written by the holder), and
 * how long ago that was by the reader's clock ({@code heartbeatAgeMillis}, never negative; hosts'
 * clocks should agree to well within the heartbeat interval for the age to mean anything).
 */
public record LeaseStatus(String host, long epoch, long heartbeatMillis, long heartbeatAgeMillis) {

  /** {@code h1 at epoch 7 (heartbeat 120 ms ago)} */
  public String describe() {
    return host + " at epoch " + epoch + " (heartbeat " + heartbeatAgeMillis + " ms ago)";
  }
}
