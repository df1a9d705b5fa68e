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

  void handle(AgentRequest request, ReplySink replies);
}
