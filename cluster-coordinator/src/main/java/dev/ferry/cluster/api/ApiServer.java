package dev.ferry.cluster.api;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import dev.ferry.common.Addresses;
import dev.ferry.cluster.coordinator.Coordinator;
import dev.ferry.cluster.coordinator.Refused;
import dev.ferry.proto.ApiError;
import dev.ferry.proto.CreateVmRequest;
import dev.ferry.proto.PowerState;
import dev.ferry.proto.StartMigrationRequest;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.handler.timeout.ReadTimeoutHandler;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The coordinator's operator API: JSON over HTTP/1.1 (Netty's codec), every request carrying
 * {@code Authorization: Bearer <token>}. Bodies and answers are the Protobuf messages of
 * {@code cluster.proto} in their JSON form with the proto field names. A standby answers 503
 * with the leader's URL, so a client that knows every coordinator finds the one that serves.
 *
 * <pre>
 *   GET    /v1/hosts                      HostList
 *   GET    /v1/vms                        VmList
 *   GET    /v1/vms/NAME                   VmRecord
 *   POST   /v1/vms                        CreateVmRequest -> VmRecord
 *   POST   /v1/vms/NAME/start|stop        VmRecord
 *   POST   /v1/vms/NAME/suspend           VmRecord
 *   POST   /v1/vms/NAME/resume            ResumeVmRequest -> VmRecord
 *   POST   /v1/vms/NAME/settings          VmSettingsRequest -> VmRecord (CPU load, dirty rate of a running VM)
 *   DELETE /v1/vms/NAME
 *   GET    /v1/vms/NAME/guest             GuestStatus (asked of the host that runs it: vCPU state and digest at resume)
 *   GET    /v1/migrations                 MigrationList
 *   GET    /v1/migrations/ID              MigrationRecord
 *   POST   /v1/migrations                 StartMigrationRequest -> MigrationRecord
 *   POST   /v1/migrations/ID/cancel       MigrationRecord
 *   GET    /v1/events[?after=SEQ][&limit=N]   EventList (after SEQ, oldest first; without after: the last N;
 *                                         N 1..1000, default 100; a standby answers too)
 *   POST   /v1/vms/NAME/ha-priority       CreateVmRequest (its ha_priority) -> VmRecord
 *   GET    /v1/ha                         HaStatus
 *   POST   /v1/ha                         HaSettings -> HaStatus
 *   POST   /v1/hosts/HOST/maintenance     MaintenanceRequest {"action":"enter"|"exit"} -> HostView
 *   GET    /v1/drs                        DrsStatus (settings, spread now/after/target, last run, its plan)
 *   GET    /v1/drs/recommendations        DrsStatus with only the recommendations and blocked VMs
 *   POST   /v1/drs/apply                  DrsApplyRequest {"ids":[...]} (none: all) -> DrsApplyResult
 *   GET    /v1/drs/config                 DrsConfig (the defaults while none was set)
 *   PUT    /v1/drs/config                 DrsConfigRequest (the fields given change) -> DrsConfig
 *   GET    /v1/rules                      RuleList
 *   POST   /v1/rules                      PlacementRule (name, kind, vms, host) -> PlacementRule
 *   DELETE /v1/rules/NAME
 * </pre>
 */
public final class ApiServer implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(ApiServer.class);
  /** Every request body is small: a VM spec or a migration request. */
  private static final int BODY_BYTES_MAX = 64 * 1024;
  private static final int READ_TIMEOUT_SECONDS = 30;
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.\\-]{0,62}");
  private static final Pattern MAC = Pattern.compile("[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}");
  /** The longest text form of an IPv6 address (IPv4-mapped, with a zone is refused anyway). */
  private static final int IP_CHARS_MAX = 45;
  private static final JsonFormat.Printer PRINTER = JsonFormat.printer().preservingProtoFieldNames()
      .omittingInsignificantWhitespace();
  private static final JsonFormat.Parser PARSER = JsonFormat.parser();

  private final Coordinator coordinator;
  private final byte[] token;
  private final EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
  /** Requests waiting for a worker; more are answered 503 at once. */
  private static final int QUEUED_REQUESTS_MAX = 256;
  /**
   * Requests block on ZooKeeper (and on an agent, for a guest's status): they run on these plain
   * threads, never on the event loop. Not a Netty executor group: BlockHound counts its threads as
   * event loops.
   */
  private final ThreadPoolExecutor workers = new ThreadPoolExecutor(4, 4, 0, TimeUnit.MILLISECONDS,
      new java.util.concurrent.LinkedTransferQueue<>(), r -> {
        Thread t = new Thread(r, "api-worker");
        t.setDaemon(true);
        return t;
      });
  private Channel channel;

  private final dev.ferry.agent.transport.MigrationTls agentTls;

  public ApiServer(Coordinator coordinator, String token) {
    this(coordinator, token, dev.ferry.agent.transport.MigrationTls.OFF);
  }

  /** As above; {@code agentTls} is how it reaches agents (their certificates are checked by host). */
  public ApiServer(Coordinator coordinator, String token, dev.ferry.agent.transport.MigrationTls agentTls) {
    workers.prestartAllCoreThreads(); // execute() then never takes the pool's lock to add a thread
    this.coordinator = coordinator;
    this.token = token.getBytes(StandardCharsets.UTF_8);
    this.agentTls = agentTls;
  }

  public ApiServer bind(InetSocketAddress address) throws InterruptedException {
    channel = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
        .childHandler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            ch.pipeline().addLast(new ReadTimeoutHandler(READ_TIMEOUT_SECONDS))
                .addLast(new HttpServerCodec(4096, 8192, 8192))
                .addLast(new HttpObjectAggregator(BODY_BYTES_MAX))
                .addLast(new Handler());
          }
        })
        .bind(address).sync().channel();
    LOG.info("operator API on http://{}", Addresses.format(boundAddress()));
    return this;
  }

  public InetSocketAddress boundAddress() {
    return (InetSocketAddress) channel.localAddress();
  }

  /** What a request produced: a status and a message to print as JSON (or nothing). */
  private record Answer(HttpResponseStatus status, Message body) {}

  /** On the event loop: hands the request to a worker and returns. */
  private final class Handler extends SimpleChannelInboundHandler<FullHttpRequest> {
    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest request) {
      FullHttpRequest held = request.retain();
      // One request at a time per connection, so answers leave in the order the requests came.
      ctx.channel().config().setAutoRead(false);
      try {
        // The queue is lock-free (an ArrayBlockingQueue's lock can park the event loop); its bound
        // is checked here instead.
        if (workers.getQueue().size() >= QUEUED_REQUESTS_MAX) {
          throw new RejectedExecutionException("more than " + QUEUED_REQUESTS_MAX + " requests queued");
        }
        workers.execute(() -> answer(ctx, held));
      } catch (RejectedExecutionException e) {
        held.release();
        ctx.channel().config().setAutoRead(true);
        respond(ctx, null, error(HttpResponseStatus.SERVICE_UNAVAILABLE, "the coordinator is busy; try again"));
      }
    }

    /** On a worker. */
    private void answer(ChannelHandlerContext ctx, FullHttpRequest request) {
      try {
        respond(ctx, request, answerTo(request));
      } finally {
        request.release();
        ctx.channel().config().setAutoRead(true);
      }
    }

    private Answer answerTo(FullHttpRequest request) {
      Answer answer;
      if (!request.decoderResult().isSuccess()) {
        answer = error(HttpResponseStatus.BAD_REQUEST, "malformed HTTP request");
      } else if (!authorized(request)) {
        answer = error(HttpResponseStatus.UNAUTHORIZED,
            "missing or wrong bearer token (set FERRY_TOKEN or the CLI's token-file)");
      } else {
        answer = serve(request);
      }
      return answer;
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      if (cause instanceof TooLongFrameException) {
        respond(ctx, null, error(HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE, "request larger than 64 KiB"));
      } else {
        LOG.debug("API connection {}: {}", ctx.channel().remoteAddress(), cause.toString());
        ctx.close();
      }
    }
  }

  private boolean authorized(FullHttpRequest request) {
    String header = request.headers().get(HttpHeaderNames.AUTHORIZATION);
    if (header == null || !header.startsWith("Bearer ")) {
      return false;
    }
    byte[] offered = header.substring("Bearer ".length()).trim().getBytes(StandardCharsets.UTF_8);
    return MessageDigest.isEqual(offered, token);
  }

  private Answer serve(FullHttpRequest request) {
    QueryStringDecoder uri = new QueryStringDecoder(request.uri());
    List<String> path = List.of(uri.path().replaceAll("^/+|/+$", "").split("/+"));
    HttpMethod method = request.method();
    try {
      if (path.size() < 2 || !path.get(0).equals("v1")) {
        return error(HttpResponseStatus.NOT_FOUND, "no such endpoint: " + uri.path());
      }
      String collection = path.get(1);
      if (collection.equals("hosts") && path.size() == 2 && method.equals(HttpMethod.GET)) {
        return ok(coordinator.requests().hosts());
      }
      if (collection.equals("hosts") && path.size() == 4 && path.get(3).equals("maintenance")
          && method.equals(HttpMethod.POST)) {
        String host = name("host", path.get(2));
        dev.ferry.proto.MaintenanceRequest.Builder body = dev.ferry.proto.MaintenanceRequest.newBuilder();
        parse(request, body);
        return ok(coordinator.requests().maintenance(host, body.getAction()));
      }
      if (collection.equals("drs") && path.size() == 2 && method.equals(HttpMethod.GET)) {
        return ok(coordinator.drsStatus());
      }
      if (collection.equals("drs") && path.size() == 3 && path.get(2).equals("recommendations")
          && method.equals(HttpMethod.GET)) {
        dev.ferry.proto.DrsStatus status = coordinator.drsStatus();
        return ok(dev.ferry.proto.DrsStatus.newBuilder().addAllRecommendations(status.getRecommendationsList())
            .addAllBlocked(status.getBlockedList()).build());
      }
      if (collection.equals("drs") && path.size() == 3 && path.get(2).equals("apply") && method.equals(HttpMethod.POST)) {
        dev.ferry.proto.DrsApplyRequest.Builder body = dev.ferry.proto.DrsApplyRequest.newBuilder();
        parse(request, body);
        if (body.getIdsCount() > 1000) {
          throw new BadRequest("ids: at most 1000");
        }
        for (String each : body.getIdsList()) {
          if (!each.matches("drs-[0-9a-f]{1,32}")) {
            throw new BadRequest("ids: '" + each + "' is not a recommendation id (drs-...)");
          }
        }
        return ok(coordinator.drsApply(body.getIdsList()));
      }
      if (collection.equals("drs") && path.size() == 3 && path.get(2).equals("config")) {
        if (method.equals(HttpMethod.GET)) {
          return ok(coordinator.requests().drsConfig());
        }
        if (method.equals(HttpMethod.PUT)) {
          dev.ferry.proto.DrsConfigRequest.Builder body = dev.ferry.proto.DrsConfigRequest.newBuilder();
          parse(request, body);
          return ok(coordinator.requests().setDrsConfig(body.build()));
        }
      }
      if (collection.equals("rules")) {
        return rules(request, method, path);
      }
      if (collection.equals("vms")) {
        return vms(request, method, path);
      }
      if (collection.equals("migrations")) {
        return migrations(request, method, path);
      }
      if (collection.equals("events") && path.size() == 2 && method.equals(HttpMethod.GET)) {
        return events(uri);
      }
      if (collection.equals("ha") && path.size() == 2) {
        if (method.equals(HttpMethod.GET)) {
          return ok(coordinator.requests().haStatus());
        }
        if (method.equals(HttpMethod.POST)) {
          dev.ferry.proto.HaSettings.Builder body = dev.ferry.proto.HaSettings.newBuilder();
          parse(request, body);
          return ok(coordinator.requests().configureHa(body.build()));
        }
      }
      return error(HttpResponseStatus.NOT_FOUND, "no such endpoint: " + method + " " + uri.path());
    } catch (Refused e) {
      ApiError.Builder err = ApiError.newBuilder().setError(e.getMessage());
      if (e.status() == 503) {
        err.setLeaderUrl(coordinator.leaderUrl());
      }
      return new Answer(HttpResponseStatus.valueOf(e.status()), err.build());
    } catch (BadRequest e) {
      return error(HttpResponseStatus.BAD_REQUEST, e.getMessage());
    } catch (Exception e) {
      LOG.warn("API {} {} failed", method, uri.path(), e);
      return error(HttpResponseStatus.INTERNAL_SERVER_ERROR, "the coordinator failed: " + e);
    }
  }

  private Answer vms(FullHttpRequest request, HttpMethod method, List<String> path) throws Exception {
    if (path.size() == 2) {
      if (method.equals(HttpMethod.GET)) {
        return ok(coordinator.requests().vms());
      }
      if (method.equals(HttpMethod.POST)) {
        CreateVmRequest.Builder body = CreateVmRequest.newBuilder();
        parse(request, body);
        validateAddresses(body);
        return new Answer(HttpResponseStatus.CREATED, coordinator.requests().createVm(body.build()));
      }
    } else {
      String name = name("vm", path.get(2));
      if (path.size() == 3 && method.equals(HttpMethod.GET)) {
        return ok(coordinator.requests().vm(name));
      }
      if (path.size() == 4 && path.get(3).equals("guest") && method.equals(HttpMethod.GET)) {
        return ok(guestStatus(name));
      }
      if (path.size() == 3 && method.equals(HttpMethod.DELETE)) {
        coordinator.requests().deleteVm(name);
        return new Answer(HttpResponseStatus.NO_CONTENT, null);
      }
      if (path.size() == 4 && method.equals(HttpMethod.POST)) {
        switch (path.get(3)) {
          case "start" -> {
            return ok(coordinator.requests().setPower(name, PowerState.POWER_RUNNING));
          }
          case "stop" -> {
            return ok(coordinator.requests().setPower(name, PowerState.POWER_STOPPED));
          }
          case "suspend" -> {
            return ok(coordinator.requests().suspendVm(name));
          }
          case "settings" -> {
            dev.ferry.proto.VmSettingsRequest.Builder body = dev.ferry.proto.VmSettingsRequest.newBuilder();
            parse(request, body);
            return ok(coordinator.requests().setVm(name, body.build()));
          }
          case "resume" -> {
            dev.ferry.proto.ResumeVmRequest.Builder body = dev.ferry.proto.ResumeVmRequest.newBuilder();
            parse(request, body);
            if (!body.getHost().isEmpty()) {
              name("host", body.getHost());
            }
            return ok(coordinator.requests().resumeVm(name, body.getHost()));
          }
          case "ha-priority" -> {
            CreateVmRequest.Builder body = CreateVmRequest.newBuilder();
            parse(request, body);
            return ok(coordinator.requests().setHaPriority(name, body.getHaPriority()));
          }
          default -> { }
        }
      }
    }
    return error(HttpResponseStatus.NOT_FOUND, "no such endpoint: " + method + " /" + String.join("/", path));
  }

  private Answer migrations(FullHttpRequest request, HttpMethod method, List<String> path) throws Exception {
    if (path.size() == 2) {
      if (method.equals(HttpMethod.GET)) {
        return ok(coordinator.requests().migrations());
      }
      if (method.equals(HttpMethod.POST)) {
        StartMigrationRequest.Builder body = StartMigrationRequest.newBuilder();
        parse(request, body);
        name("vm", body.getVm());
        name("target_host", body.getTargetHost());
        return new Answer(HttpResponseStatus.CREATED, coordinator.requests().startMigration(body.build()));
      }
    } else {
      String id = name("migration", path.get(2));
      if (path.size() == 3 && method.equals(HttpMethod.GET)) {
        return ok(coordinator.requests().migration(id));
      }
      if (path.size() == 4 && path.get(3).equals("cancel") && method.equals(HttpMethod.POST)) {
        return ok(coordinator.requests().cancelMigration(id));
      }
    }
    return error(HttpResponseStatus.NOT_FOUND, "no such endpoint: " + method + " /" + String.join("/", path));
  }

  private Answer rules(FullHttpRequest request, HttpMethod method, List<String> path) throws Exception {
    if (path.size() == 2 && method.equals(HttpMethod.GET)) {
      return ok(coordinator.requests().rules());
    }
    if (path.size() == 2 && method.equals(HttpMethod.POST)) {
      dev.ferry.proto.PlacementRule.Builder body = dev.ferry.proto.PlacementRule.newBuilder();
      parse(request, body);
      return new Answer(HttpResponseStatus.CREATED, coordinator.requests().addRule(body.build()));
    }
    if (path.size() == 3 && method.equals(HttpMethod.DELETE)) {
      coordinator.requests().removeRule(name("rule", path.get(2)));
      return new Answer(HttpResponseStatus.NO_CONTENT, null);
    }
    return error(HttpResponseStatus.NOT_FOUND, "no such endpoint: " + method + " /" + String.join("/", path));
  }

  /** Events in a request when it does not say how many. */
  private static final int EVENTS_LIMIT_DEFAULT = 100;

  /** Read from ZooKeeper by any coordinator: the log is the same for the leader and a standby. */
  private Answer events(QueryStringDecoder uri) throws Exception {
    long after = -1;
    int limit = EVENTS_LIMIT_DEFAULT;
    for (java.util.Map.Entry<String, List<String>> p : uri.parameters().entrySet()) {
      String field = p.getKey();
      if (!field.equals("after") && !field.equals("limit")) {
        throw new BadRequest(quoted(field) + ": no such parameter (after, limit)");
      }
      if (p.getValue().size() != 1) {
        throw new BadRequest(field + ": given " + p.getValue().size() + " times");
      }
      String value = p.getValue().get(0);
      if (field.equals("after")) {
        after = number(field, value, 0, Long.MAX_VALUE);
      } else {
        limit = (int) number(field, value, 1, dev.ferry.cluster.coordinator.EventLog.READ_LIMIT_MAX);
      }
    }
    return ok(coordinator.readEvents(after, limit));
  }

  private static long number(String field, String value, long min, long max) throws BadRequest {
    long n;
    try {
      if (value.length() > 19 || !value.chars().allMatch(c -> c >= '0' && c <= '9') || value.isEmpty()) {
        throw new NumberFormatException();
      }
      n = Long.parseLong(value);
    } catch (NumberFormatException e) {
      throw new BadRequest(field + ": " + quoted(value) + " is not a whole number from " + min + " to " + max);
    }
    if (n < min || n > max) {
      throw new BadRequest(field + ": " + n + " is out of range (" + min + " to " + max + ")");
    }
    return n;
  }

  /** The guest as the host that runs it reports it (read-only; the agent answers listing and status only). */
  private dev.ferry.proto.GuestStatus guestStatus(String name) throws Exception {
    String owner = coordinator.requests().vm(name).getOwnerHost();
    String address = coordinator.requests().hosts().getHostsList().stream().filter(h -> h.getUp())
        .map(dev.ferry.proto.HostView::getRecord).filter(h -> h.getHostId().equals(owner))
        .map(dev.ferry.proto.HostRecord::getAddress).findFirst().orElse("");
    if (address.isEmpty()) {
      throw new Refused(409, "VM " + name + ": its host " + (owner.isEmpty() ? "(none)" : owner) + " is not up");
    }
    try {
      return new dev.ferry.agent.transport.AgentClient(agentLinks(), dev.ferry.common.Addresses.parse("host address",
          address), agentTls, owner).status(name);
    } catch (java.io.IOException e) {
      throw new Refused(409, "VM " + name + ": host " + owner + " did not answer: " + e.getMessage());
    }
  }

  private dev.ferry.agent.transport.NettyTransport agentLinks;

  private synchronized dev.ferry.agent.transport.NettyTransport agentLinks() {
    if (agentLinks == null) {
      agentLinks = dev.ferry.agent.transport.NettyTransport.create(dev.ferry.agent.transport.NettyTransport.Kind.NIO, 1,
          "api-agent-links");
    }
    return agentLinks;
  }

  /** A request the client got wrong; the message names the field. */
  private static final class BadRequest extends Exception {
    private static final long serialVersionUID = 1L;

    BadRequest(String message) {
      super(message);
    }
  }

  private static String name(String field, String value) throws BadRequest {
    if (value == null || !NAME.matcher(value).matches()) {
      throw new BadRequest(field + ": '" + value + "' is not a name (letters, digits, '.', '_', '-'; at most 63)");
    }
    return value;
  }

  /** Optional; when given, stored as given and later handed to the guest's network: so checked here. */
  private static void validateAddresses(CreateVmRequest.Builder body) throws BadRequest {
    String mac = body.getMac();
    if (!mac.isEmpty() && !MAC.matcher(mac).matches()) {
      throw new BadRequest("mac: " + quoted(mac) + " is not a MAC address (six hex pairs: xx:xx:xx:xx:xx:xx)");
    }
    String ip = body.getIp();
    if (!ip.isEmpty() && (ip.length() > IP_CHARS_MAX
        || !(io.netty.util.NetUtil.isValidIpV4Address(ip) || io.netty.util.NetUtil.isValidIpV6Address(ip)))) {
      throw new BadRequest("ip: " + quoted(ip) + " is not an IPv4 or IPv6 address");
    }
  }

  /** The value for an error message, cut short: a client's 5,000 characters are not echoed back. */
  private static String quoted(String value) {
    return value.length() <= 48 ? "'" + value + "'" : "'" + value.substring(0, 48) + "...' (" + value.length()
        + " characters)";
  }

  private static void parse(FullHttpRequest request, Message.Builder into) throws BadRequest {
    String json = request.content().toString(StandardCharsets.UTF_8);
    try {
      PARSER.merge(json, into);
    } catch (InvalidProtocolBufferException e) {
      String field = JsonFields.locateError(json, into.getDefaultInstanceForType());
      throw new BadRequest((field == null ? "request body" : field) + ": " + e.getMessage());
    }
  }

  private static Answer ok(Message body) {
    return new Answer(HttpResponseStatus.OK, body);
  }

  private static Answer error(HttpResponseStatus status, String message) {
    return new Answer(status, ApiError.newBuilder().setError(message).build());
  }

  private static void respond(ChannelHandlerContext ctx, FullHttpRequest request, Answer answer) {
    byte[] body = new byte[0];
    if (answer.body() != null) {
      try {
        body = (PRINTER.print(answer.body()) + "\n").getBytes(StandardCharsets.UTF_8);
      } catch (InvalidProtocolBufferException e) {
        throw new IllegalStateException("cannot print " + answer.body().getClass().getSimpleName(), e);
      }
    }
    FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, answer.status(),
        Unpooled.wrappedBuffer(body));
    response.headers().set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.APPLICATION_JSON)
        .setInt(HttpHeaderNames.CONTENT_LENGTH, body.length);
    boolean keepAlive = request != null && HttpUtil.isKeepAlive(request) && answer.status().code() < 400;
    if (keepAlive) {
      response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
      ctx.writeAndFlush(response);
    } else {
      // Said, not only done: a client that pools connections must not send its next request here.
      response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
      ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
    }
  }

  @Override
  public void close() {
    if (channel != null) {
      channel.close().syncUninterruptibly();
    }
    group.shutdownGracefully(0, 2, java.util.concurrent.TimeUnit.SECONDS).syncUninterruptibly();
    synchronized (this) {
      if (agentLinks != null) {
        agentLinks.close();
      }
    }
    workers.shutdownNow();
  }
}
