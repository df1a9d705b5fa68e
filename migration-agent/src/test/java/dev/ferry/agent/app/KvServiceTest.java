package dev.ferry.agent.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.ferry.storage.Datastore;
import dev.ferry.storage.LeasedWriter;
import dev.ferry.storage.VmDirectory;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The key-value service as a client sees it when its guest leaves the host. */
class KvServiceTest {
  private static final int PUTS = 2_000;
  /** Far above a close (milliseconds), far below a client's 10 s timeout: silence fails the test. */
  private static final int READ_TIMEOUT_MILLIS = 5_000;

  @TempDir
  Path root;

  @Test
  void closingAnswersOrClosesEveryClientAtOnce() throws Exception {
    VmDirectory vm = Datastore.open(root).create("kv-1");
    vm.lease().acquire("h1", 1);
    Logger rootLogger = (Logger) org.slf4j.LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    ListAppender<ILoggingEvent> logs = new ListAppender<>();
    logs.start();
    rootLogger.addAppender(logs);
    try (LeasedWriter writer = vm.openWriter("h1", 1)) {
      writer.createDisk(0, 1 << 20);
      int port = freePort();
      KvService service = KvService.start("kv-1", port, writer, vm);
      try (Socket idle = connect(port); Socket busy = connect(port)) {
        OutputStream out = busy.getOutputStream();
        StringBuilder puts = new StringBuilder();
        for (int i = 0; i < PUTS; i++) {
          puts.append("PUT k").append(i % 50).append(' ').append(i).append('\n');
        }
        out.write(puts.toString().getBytes(StandardCharsets.UTF_8));
        out.flush();
        BufferedReader busyIn = reader(busy);
        assertEquals("OK", busyIn.readLine(), "the first write is answered");
        CompletableFuture<Void> closed = CompletableFuture.runAsync(service::close); // writes still in flight

        List<String> answers = readUntilEof(busyIn);
        assertTrue(answers.size() < PUTS - 1, "the service closed while writes were in flight ("
            + answers.size() + " more answers)");
        answers.forEach(a -> assertTrue(a.equals("OK") || a.startsWith("ERR "), "answer: " + a));
        assertEquals(List.of(), readUntilEof(reader(idle)), "an idle client sees the connection close");
        closed.get();
      }
    }
    rootLogger.detachAppender(logs);
    assertEquals(List.of(), logs.list.stream().filter(e -> e.getThrowableProxy() != null)
        .map(e -> e.getFormattedMessage() + ": " + e.getThrowableProxy().getClassName()).toList(),
        "no stack traces on close");
  }

  /** Reads answers until the service closes the connection; a silent service fails the read. */
  private static List<String> readUntilEof(BufferedReader in) throws Exception {
    List<String> answers = new ArrayList<>();
    try {
      for (String line = in.readLine(); line != null; line = in.readLine()) {
        answers.add(line);
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the service left the client hanging after " + answers.size() + " answers", e);
    } catch (java.net.SocketException e) {
      // a reset is a close too: the client learns at once that it must retry elsewhere
    }
    return answers;
  }

  private static Socket connect(int port) throws Exception {
    Socket socket = new Socket();
    socket.connect(new InetSocketAddress("127.0.0.1", port), READ_TIMEOUT_MILLIS);
    socket.setSoTimeout(READ_TIMEOUT_MILLIS);
    return socket;
  }

  private static BufferedReader reader(Socket socket) throws Exception {
    return new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
  }

  private static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }
}
