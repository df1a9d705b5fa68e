package dev.ferry.agent.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.ferry.engine.guest.GuestMemory;
import dev.ferry.engine.wire.Wire;
import dev.ferry.proto.Auth;
import dev.ferry.proto.Control;
import dev.ferry.proto.GuestSpec;
import dev.ferry.proto.Hello;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.function.BooleanSupplier;
import java.util.concurrent.locks.LockSupport;

/** A peer speaking the agent protocol by hand over a plain socket: what a stranger can send. */
public final class RawPeer implements AutoCloseable {
  private final Socket socket = new Socket();
  private final DataInputStream in;
  private final DataOutputStream out;

  public RawPeer(InetSocketAddress address) throws IOException {
    socket.connect(address, 5_000);
    socket.setSoTimeout(10_000);
    in = new DataInputStream(socket.getInputStream());
    out = new DataOutputStream(socket.getOutputStream());
  }

  public static Control hello(String migrationId, GuestSpec spec) {
    return Control.newBuilder().setHello(Hello.newBuilder().setProtocolVersion(Wire.PROTOCOL_VERSION)
        .setMigrationId(migrationId).setSourceHost("stranger").setGuest(spec).setPageSize(GuestMemory.PAGE_BYTES)
        .setNonce(ByteString.copyFrom(new byte[16]))).build();
  }

  public static Control auth(byte[] proof) {
    return Control.newBuilder().setAuth(Auth.newBuilder().setProof(ByteString.copyFrom(proof))).build();
  }

  public void send(Control message) throws IOException {
    byte[] body = message.toByteArray();
    out.writeInt(body.length + 1);
    out.writeByte(Wire.KIND_CONTROL);
    out.write(body);
    out.flush();
  }

  public void sendRaw(byte[] bytes) throws IOException {
    out.write(bytes);
    out.flush();
  }

  public Control receive() throws IOException {
    int length = in.readInt();
    byte kind = in.readByte();
    byte[] body = new byte[length - 1];
    in.readFully(body);
    if (kind != Wire.KIND_CONTROL) {
      throw new IOException("expected a control frame, got kind " + kind);
    }
    return Control.parseFrom(body);
  }

  /** True if the agent closed the connection within {@code wait} (what it still sends is skipped). */
  public boolean closedWithin(Duration wait) throws IOException {
    long deadline = System.nanoTime() + wait.toNanos();
    try {
      while (true) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        socket.setSoTimeout((int) Math.max(1, left / 1_000_000));
        if (in.read() < 0) {
          return true;
        }
      }
    } catch (SocketTimeoutException e) {
      return false;
    } catch (IOException e) {
      return true; // reset
    }
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }

  /** Waits (bounded) until {@code condition} holds. */
  public static void await(BooleanSupplier condition, Duration max, String what) {
    long deadline = System.nanoTime() + max.toNanos();
    while (!condition.getAsBoolean()) {
      assertTrue(System.nanoTime() < deadline, "timed out waiting for " + what);
      LockSupport.parkNanos(10_000_000L);
    }
  }
}
