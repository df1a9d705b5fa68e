package dev.ferry.cluster.coordinator;

/** Why an operator's request cannot be served: the message goes to the operator as it is, with an HTTP status. */
public class Refused extends Exception {
  private static final long serialVersionUID = 1L;
  private final int status;

  public Refused(int status, String message) {
    super(message);
    this.status = status;
  }

  public int status() {
    return status;
  }
}
