package dev.ferry.it.cluster;

/** A line client of the key-value profile that reconnects after any failure (null answer). */
final class KvClient {
  private final int port;
  private java.net.Socket socket;
  private java.io.BufferedReader in;
  private java.io.Writer out;

  KvClient(int port) {
    this.port = port;
  }

  String request(String line) {
    try {
      if (socket == null) {
        socket = new java.net.Socket();
        socket.connect(new java.net.InetSocketAddress("127.0.0.1", port), 2000);
        socket.setSoTimeout(5000);
        in = new java.io.BufferedReader(new java.io.InputStreamReader(socket.getInputStream(),
            java.nio.charset.StandardCharsets.UTF_8));
        out = new java.io.OutputStreamWriter(socket.getOutputStream(), java.nio.charset.StandardCharsets.UTF_8);
      }
      out.write(line + "\n");
      out.flush();
      String answer = in.readLine();
      if (answer == null) {
        close();
      }
      return answer;
    } catch (java.io.IOException e) {
      close();
      java.util.concurrent.locks.LockSupport.parkNanos(20_000_000L);
      return null;
    }
  }

  void close() {
    try {
      if (socket != null) {
        socket.close();
      }
    } catch (java.io.IOException ignored) {
      // closing anyway
    }
    socket = null;
  }
}
