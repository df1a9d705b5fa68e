package dev.ferry.agent.transport;

import dev.ferry.proto.AgentReply;
import dev.ferry.proto.AgentRequest;

/** What an agent does with an admin request; Netty-free. Implemented by the agent. */
public interface AdminService {

  /** Where replies go; a request may send several (a migration's progress) before {@link #end()}. */
  interface ReplySink {
    void send(AgentReply reply);

    /** No more replies: the connection closes once they are flushed. */
    void end();
  }

  /** Runs off the event loop (it may block); replies may be sent from any thread. */
  void handle(AgentRequest request, ReplySink replies);

  /**
   * Whether requests that change something (create, destroy, migrate, cancel) are served. An
   * agent in a cluster takes those only from its records: the migration port answers listing
   * and status, and the router refuses the rest before they reach the agent.
   */
  default boolean servesMutations() {
    return true;
  }
}
