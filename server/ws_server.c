/*
 * ws_server: the listening socket and the vhost that serves what it accepts.
 * HTTP requests are gated here before any upgrade (path, Host, Origin,
 * connection caps, answered with a real status), `GET /health` is served,
 * `GET /metrics` is answered with the owner's text (session_handler),
 * the phone client's files are handed to webapp.c (GET and HEAD only),
 * /socket.io/ requests (Engine.IO polling, upgrades) to eio.c,
 * the upgrade's credentials are read, and WebSocket events are handed to
 * session.c. Also starts, stops and re-binds the listener (see server.h),
 * and with server.tls makes the vhost speak TLS (lws' OpenSSL support).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/guard.h"
#include "core/remote.h"
#include "server/loop_lws.h"
#include "server/server_impl.h"
#include "server/webapp.h"

/* How long a stop waits for clients to take their 1001 before the listener
 * (and whatever is left) is torn down. */
#define STOP_GRACE_MS 1000
/* How long a connection may sit unauthenticated before it gives its place to
 * a newer one once limits.maxUnauthenticated are waiting. */
#define PENDING_GRACE_MS 1000

static struct server *server_of(struct lws *wsi)
{
    return lws_vhost_user(lws_get_vhost(wsi));
}

/* Writes a complete JSON answer with `status`; the caller returns 1 (from
 * CONFIRM_UPGRADE) or lets the HTTP transaction complete. */
static int http_answer_now(struct lws *wsi, unsigned status, const char *json)
{
    unsigned char buf[LWS_PRE + 1024];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    size_t len = strlen(json);
    if (lws_add_http_common_headers(wsi, status, "application/json", len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (unsigned char *)"close", 5, &p,
                                     end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    unsigned char body[LWS_PRE + 512];
    if (len > sizeof(body) - LWS_PRE)
        return -1;
    memcpy(body + LWS_PRE, json, len);
    if (lws_write(wsi, body + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) < 0)
        return -1;
    return 0;
}

static int refuse(struct server *srv, struct lws *wsi, unsigned status, const char *code,
                  const char *why)
{
    char json[256];
    srv->counters.connections_refused++;
    snprintf(json, sizeof(json), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, why);
    log_msg(srv->log, LOG_INFO, "HTTP %u: %s", status, why);
    http_answer_now(wsi, status, json);
    return 1;
}

/* Host and Origin checks shared by /health, the app's files and the
 * upgrade. Returns 0 when the request may go on, else the answer has been
 * written. A Host passes when it is loopback with our port, listed, or
 * server.publicUrl's; an Origin when it is listed, publicUrl's, or the
 * page's own (the app this helper serves, at the Host that passed). */
static int gate_request(struct server *srv, struct lws *wsi)
{
    char host[300] = "", origin[300] = "";
    int direct = 0, public = 0;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HOST) < (int)sizeof(host) &&
        lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) > 0) {
        direct = guard_host_allowed(host, srv->bound_port, &srv->st->allowed_hosts);
        public = !direct && remote_host_allowed(srv->st, host);
    }
    if (!direct && !public)
        return refuse(srv, wsi, 403, "FORBIDDEN", "host not allowed");
    /* Reached through publicUrl's name, the page's own origin is
     * publicUrl's (the scheme the browser used, not the one we see). */
    int olen = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (olen > 0 && (olen >= (int)sizeof(origin) ||
                     lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0 ||
                     (!guard_origin_allowed(origin, &srv->st->allowed_origins) &&
                      !remote_origin_allowed(srv->st, origin) &&
                      !(direct && guard_origin_is_self(origin, host, srv->tls)))))
        return refuse(srv, wsi, 403, "FORBIDDEN", "origin not allowed");
    return 0;
}

/* /socket.io/ (socket.io-client's default path) or /socket.io. */
static int path_is_sio(const char *p)
{
    return strcmp(p, "/socket.io/") == 0 || strcmp(p, "/socket.io") == 0;
}

static int uri_path_is(struct lws *wsi, const char *want)
{
    char uri[256];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) >= (int)sizeof(uri) ||
        lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
        return 0;
    return strcmp(uri, want) == 0;
}

/* Queues a 200 answer whose body goes out on HTTP_WRITEABLE. */
static int body_answer(struct lws *wsi, struct ws_pss *pss, const char *ctype, const char *text,
                       size_t len)
{
    pss->body = malloc(LWS_PRE + len);
    if (!pss->body)
        return -1;
    memcpy(pss->body + LWS_PRE, text, len);
    pss->body_len = len;
    unsigned char buf[LWS_PRE + 512];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    if (lws_add_http_common_headers(wsi, 200, ctype, len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (unsigned char *)"no-store",
                                     8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int health_answer(struct server *srv, struct lws *wsi, struct ws_pss *pss)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string("ok"));
    json_object_object_add(o, "version", json_object_new_string(COMPANION_VERSION));
    json_object_object_add(o, "uptime",
                           json_object_new_int64((clock_mono_ms() - srv->started_mono_ms) / 1000));
    json_object_object_add(o, "connections", json_object_new_int(srv->n_connections));
    char warn[REMOTE_WARNINGS_MAX][REMOTE_WARNING_MAX];
    size_t nw = remote_warnings(srv->st, warn, REMOTE_WARNINGS_MAX);
    json_object *wa = json_object_new_array();
    for (size_t i = 0; i < nw; i++)
        json_object_array_add(wa, json_object_new_string(warn[i]));
    json_object_object_add(o, "warnings", wa);
    /* ISO 8601 UTC with milliseconds, as the servers Companion replaces
     * answered (2025-08-04T12:00:00.000Z). */
    int64_t now = clock_wall_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    char ts[40];
    gmtime_r(&secs, &tm);
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%03dZ", (int)(now % 1000));
    json_object_object_add(o, "timestamp", json_object_new_string(ts));
    size_t len;
    const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    int r = body_answer(wsi, pss, "application/json", text, len);
    json_object_put(o);
    return r;
}

static int on_http(struct server *srv, struct lws *wsi, struct ws_pss *pss, const char *path)
{
    if (gate_request(srv, wsi))
        return 1;
    char *uri;
    int uri_len;
    int method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
    if (path_is_sio(path))
        return eio_http(srv, wsi, pss);
    if (webapp_has(path)) {
        if (method != LWSHUMETH_GET && method != LWSHUMETH_HEAD)
            return refuse(srv, wsi, 405, "METHOD_NOT_ALLOWED", "only GET and HEAD");
        return webapp_serve(wsi, path, &pss->web);
    }
    int health = strcmp(path, "/health") == 0;
    if (!health && (strcmp(path, "/metrics") != 0 || !srv->handler.metrics))
        return refuse(srv, wsi, 404, "NOT_FOUND", "not found");
    if (method != LWSHUMETH_GET)
        return refuse(srv, wsi, 405, "METHOD_NOT_ALLOWED", "only GET");
    if (health)
        return health_answer(srv, wsi, pss);
    struct metrics_buf b = {0};
    srv->handler.metrics(srv->handler.metrics_ud, &b);
    int r =
        b.oom ? -1 : body_answer(wsi, pss, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    metrics_buf_free(&b);
    return r;
}

static int on_confirm_upgrade(struct server *srv, struct lws *wsi, const char *proto)
{
    if (!proto || strcmp(proto, "websocket") != 0)
        return refuse(srv, wsi, 400, "BAD_REQUEST", "only websocket upgrades");
    if (gate_request(srv, wsi))
        return 1;
    if (!uri_path_is(wsi, "/ws") && !uri_path_is(wsi, "/socket.io/") &&
        !uri_path_is(wsi, "/socket.io"))
        return refuse(srv, wsi, 404, "NOT_FOUND", "the WebSocket endpoint is /ws");
    char eio[8], transport[16];
    if (!uri_path_is(wsi, "/ws") && eio_query_arg(wsi, "EIO=", eio, sizeof(eio))) {
        if (strcmp(eio, "4") != 0)
            return refuse(srv, wsi, 400, "BAD_REQUEST", "only Engine.IO 4 (EIO=4) is supported");
        if (!eio_query_arg(wsi, "transport=", transport, sizeof(transport)) ||
            strcmp(transport, "websocket") != 0)
            return refuse(srv, wsi, 400, "BAD_REQUEST", "transport=websocket expected");
        char sid[SESSION_ID_LEN + 2];
        if (eio_query_arg(wsi, "sid=", sid, sizeof(sid)))
            return srv->running ? 0 : refuse(srv, wsi, 503, "UNAVAILABLE", "server stopping");
    }
    if (!srv->running)
        return refuse(srv, wsi, 503, "UNAVAILABLE", "server stopping");
    if (srv->n_connections >= srv->st->max_connections)
        return refuse(srv, wsi, 503, "UNAVAILABLE", "too many connections");
    /* Within maxConnections an honest client is never refused: when too
     * many connections are still authenticating, the oldest one that has
     * had PENDING_GRACE_MS makes room (an idle socket, not a client that
     * answers promptly); younger ones are let in, bounded by maxConnections
     * above. So a flood of idle sockets delays nobody for long, and a burst
     * of clients authenticating at once is not turned away. */
    if (srv->n_unauthenticated >= srv->st->max_unauthenticated)
        session_evict_pending(srv, PENDING_GRACE_MS);
    return 0;
}

void ws_read_query_creds(struct lws *wsi, struct guard_creds *c)
{
    char buf[GUARD_TOKEN_MAX + 32];
    /* lws counts one separator between fragments in the total. */
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS), seen = 0;
    for (int idx = 0; seen < total && idx < 256; idx++) {
        int fl = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, idx);
        seen += fl + (idx > 0);
        if (fl <= 0)
            continue;
        int n = fl < (int)sizeof(buf)
                    ? lws_hdr_copy_fragment(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_URI_ARGS, idx)
                    : -1;
        guard_creds_arg(c, n < 0 ? NULL : buf, n < 0 ? (size_t)fl : (size_t)n);
    }
    if (seen < total)
        c->bad = "too many query arguments";
    explicit_bzero(buf, sizeof(buf));
}

/* The credentials the upgrade request carried: Authorization: Bearer, and
 * every query argument, long or not (lws_get_urlarg_by_name stops at the
 * first one longer than its buffer, which hid a workspaceId). */
static void read_creds(struct lws *wsi, struct guard_creds *c)
{
    char buf[GUARD_TOKEN_MAX + 32];
    guard_creds_init(c);
    int hl = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (hl > 0) {
        int n = lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_AUTHORIZATION);
        if (n < 0)
            c->bad = "Authorization header too long";
        else
            guard_creds_header(c, buf, (size_t)n);
    }
    explicit_bzero(buf, sizeof(buf));
    ws_read_query_creds(wsi, c);
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct server *srv = server_of(wsi);
    struct ws_pss *pss = user;
    if (!srv)
        return 0;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_http(srv, wsi, pss, in ? (const char *)in : "");

    case LWS_CALLBACK_HTTP_BODY:
        return pss ? eio_http_body(srv, wsi, pss, in, len) : 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return pss ? eio_http_body_done(srv, wsi, pss) : 0;

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (pss && webapp_pending(&pss->web))
            return webapp_write(wsi, &pss->web);
        if (pss && pss->body) {
            int n = lws_write(wsi, (unsigned char *)pss->body + LWS_PRE, pss->body_len,
                              LWS_WRITE_HTTP_FINAL);
            free(pss->body);
            pss->body = NULL;
            if (n < 0)
                return -1;
            if (lws_http_transaction_completed(wsi))
                return -1;
            return 0;
        }
        if (pss) {
            int r = eio_http_writeable(srv, wsi, pss);
            return r == 1 ? 0 : r;
        }
        return 0;

    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (pss) {
            free(pss->body);
            pss->body = NULL;
            webapp_reply_free(&pss->web);
            eio_http_closed(pss, wsi);
        }
        return 0;

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return on_confirm_upgrade(srv, wsi, in);

    case LWS_CALLBACK_ESTABLISHED: {
        if (srv->freeing)
            return -1;
        int dialect = SESSION_NATIVE;
        if (!uri_path_is(wsi, "/ws")) {
            char eio[8];
            if (eio_query_arg(wsi, "EIO=", eio, sizeof(eio)))
                return eio_ws_established(srv, wsi, pss);
            dialect = SESSION_ENVELOPE;
        }
        pss->session = session_new(srv, wsi, dialect, 0);
        if (!pss->session)
            return -1;
        struct guard_creds c;
        read_creds(wsi, &c);
        if (srv->handler.opened)
            srv->handler.opened(srv->handler.ud, pss->session, &c);
        guard_creds_clear(&c);
        return 0;
    }

    case LWS_CALLBACK_RECEIVE:
        if (pss->probe)
            return eio_ws_receive(srv, wsi, pss, in, len);
        return pss->session ? session_on_receive(pss->session, in, len) : -1;

    case LWS_CALLBACK_RECEIVE_PONG:
        if (pss->session)
            session_on_pong(pss->session);
        return 0;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (pss->probe)
            return eio_ws_writeable(wsi, pss);
        return pss->session ? session_on_writable(pss->session) : -1;

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return 0;

    case LWS_CALLBACK_CLOSED:
        if (pss)
            eio_ws_closed(pss, wsi);
        if (pss && pss->session) {
            session_free(pss->session);
            pss->session = NULL;
            server_maybe_finish_stop(srv);
        }
        return 0;

    default:
        return 0;
    }
}

static const struct lws_protocols ws_protocols[] = {
    /* lws keeps an rx buffer of this size per connection; messages larger
     * than it arrive in pieces, which session.c reassembles. Sends are not
     * tied to it (tx_packet_size, or lws would write 256 bytes per turn of
     * the loop): a write goes out in one call as far as the socket takes
     * it, lws keeping the rest. */
    {"companion", ws_callback, sizeof(struct ws_pss), 256, 0, NULL, SESSION_TX_PACKET},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- the listening socket ----
 *
 * The helper owns its listening socket instead of letting lws listen: lws
 * 4.1 keeps a vhost's listener open until every connection bound to the
 * vhost is gone, which is never while it is the listener itself, so a
 * stopped server kept its port. Accepted sockets are handed to one
 * persistent non-listening vhost; stopping closes our fd at once.
 */

struct listener {
    struct server *srv;
    int fd;
    int reserve_fd; /* kept open to shed connections when fds run out */
    struct loop_fd *watch;
};

static void on_accept(void *arg, unsigned events)
{
    struct listener *l = arg;
    struct server *srv = l->srv;
    (void)events;
    for (int i = 0; i < 128; i++) {
        int cfd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* The connection would wait in the backlog and wake us again
                 * at once: use the reserve fd to take it and drop it. */
                log_msg(srv->log, LOG_WARN, "out of file descriptors: refusing a connection");
                if (l->reserve_fd >= 0) {
                    close(l->reserve_fd);
                    int tmp = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
                    if (tmp >= 0)
                        close(tmp);
                    l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                }
                srv->counters.connections_refused++;
            }
            return;
        }
        /* lws sets this on sockets it accepts itself, not on adopted ones.
         * Without it a reply in two segments waits for the client's delayed
         * ACK: 40 ms. */
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (!lws_adopt_socket_vhost(srv->vhost, cfd))
            srv->counters.connections_refused++; /* lws has closed cfd */
    }
}

static int open_listener(const char *host, int port, int *bound, enum server_err *code, char *err,
                         size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", port);
    *code = SERVER_E_SETTINGS;
    if (getaddrinfo(host, portstr, &hints, &ai) != 0 || !ai) {
        snprintf(err, errlen, "server.host: %s is not an IP address (or localhost)", host);
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        /* REUSEADDR lets a restart bind through TIME_WAIT; never REUSEPORT,
         * which would let a second helper share the port. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 511) < 0) {
        int e = errno;
        if (e == EADDRINUSE) {
            *code = SERVER_E_PORT;
            snprintf(err, errlen, "port %d is already in use on %s", port, host);
        } else if (e == EADDRNOTAVAIL) {
            snprintf(err, errlen, "server.host: %s is not an address of this machine", host);
        } else if (e == EACCES) {
            *code = SERVER_E_PORT;
            snprintf(err, errlen, "port %d needs privileges this process lacks", port);
        } else {
            *code = SERVER_E_LISTEN;
            snprintf(err, errlen, "cannot listen on %s port %d: %s", host, port, strerror(e));
        }
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void close_listener(struct server *srv)
{
    struct listener *l = srv->listener;
    if (!l)
        return;
    srv->listener = NULL;
    /* Synchronously: the port must be free by the time stop is answered. */
    loop_fd_close_now(l->watch);
    if (l->reserve_fd >= 0)
        close(l->reserve_fd);
    free(l);
}

/* No lws "validity" timer: without a policy lws 4.1 arms one per connection
 * (PING after 300 s of no PONG, hang-up after 310 s) and re-arms it on every
 * PONG, each time inserting into its sorted timer list past every other
 * connection's: O(N) per connection and per heartbeat. It would also hang up,
 * without a close code, a client that keeps itself alive with `ping`
 * messages, which the protocol allows. The session tick (session.c) is the
 * one heartbeat: PINGs every interval, 4002 after the timeout. */
static const lws_retry_bo_t ws_no_validity = {.secs_since_valid_ping = 0,
                                              .secs_since_valid_hangup = 0};

static void stop_timer_cb(void *arg);

/* The vhost accepted sockets are adopted into: plain, or TLS with the
 * settings' files (checked by remote_tls_check first). Only HTTP/1.1 is
 * offered by ALPN: the gate and the upgrade are HTTP/1.1's. */
static struct lws_vhost *make_vhost(struct server *srv, int tls)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = ws_protocols;
    info.vhost_name = tls ? "companion-tls" : "companion";
    info.timeout_secs = 10;
    info.keepalive_timeout = 5;
    info.retry_and_idle_policy = &ws_no_validity;
    info.user = srv;
    if (tls) {
        info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = srv->st->tls_cert_file;
        info.ssl_private_key_filepath = srv->st->tls_key_file;
        info.alpn = "http/1.1";
        info.ssl_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
    }
    return lws_create_vhost(loop_lws_context(srv->loop), &info);
}

struct server *server_new(struct loop *l, const struct settings *st, struct logger *log,
                          const struct session_handler *handler, char *err, size_t errlen)
{
    struct server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->loop = l;
    srv->st = st;
    srv->log = log;
    srv->handler = *handler;
    srv->tick = loop_timer_new(l, session_tick, srv);
    srv->stop_timer = loop_timer_new(l, stop_timer_cb, srv);
    srv->vhost = srv->tick && srv->stop_timer ? make_vhost(srv, 0) : NULL;
    if (!srv->vhost) {
        snprintf(err, errlen, "cannot create the WebSocket vhost");
        loop_timer_free(srv->tick);
        loop_timer_free(srv->stop_timer);
        free(srv);
        return NULL;
    }
    return srv;
}

void server_free(struct server *srv)
{
    if (!srv)
        return;
    close_listener(srv);
    srv->freeing = 1;
    /* Every connection of the vhost closes now, with its session's owner
     * told (their tasks end with them), while srv is still here for the
     * callbacks; lws would otherwise close them later, with the context. */
    lws_vhost_destroy(srv->vhost);
    while (srv->sessions)
        session_free(srv->sessions);
    loop_timer_free(srv->tick);
    loop_timer_free(srv->stop_timer);
    free(srv->scratch);
    if (srv->pb)
        printbuf_free(srv->pb);
    free(srv);
}

static const char *iface_for(const char *host)
{
    return strcasecmp(host, "localhost") == 0 ? "127.0.0.1" : host;
}

static void finish_stop(struct server *srv);

enum server_err server_start(struct server *srv, char *err, size_t errlen)
{
    const struct settings *st = srv->st;
    if (srv->running)
        return SERVER_OK;
    if (srv->stopping) {
        finish_stop(srv); /* a stop still waiting for clients: finish it now */
        if (srv->running)
            return SERVER_OK; /* its completion was a restart */
    }
    if (settings_check_server(st, err, errlen) < 0 || remote_tls_check(st, err, errlen) < 0)
        return SERVER_E_SETTINGS;
    /* A TLS vhost is made at every start, so a renewed certificate is read
     * again by a restart; a plain one is kept. What is left on the old one
     * (clients that did not take their 1001 in time) is closed with it. */
    int tls = remote_tls_enabled(st);
    if (tls || srv->tls) {
        struct lws_vhost *vh = make_vhost(srv, tls);
        if (!vh) {
            snprintf(err, errlen,
                     tls ? "server.tls: libwebsockets refused the certificate or key (see the "
                           "log)"
                         : "cannot create the WebSocket vhost");
            return tls ? SERVER_E_SETTINGS : SERVER_E_INTERNAL;
        }
        struct lws_vhost *old = srv->vhost;
        srv->vhost = vh;
        srv->tls = tls;
        lws_vhost_destroy(old);
    }
    const char *iface = iface_for(st->host);
    struct listener *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return SERVER_E_INTERNAL;
    }
    l->srv = srv;
    enum server_err code;
    l->fd = open_listener(iface, st->port, &srv->bound_port, &code, err, errlen);
    if (l->fd < 0) {
        free(l);
        return code;
    }
    l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    l->watch = loop_fd_watch(srv->loop, l->fd, on_accept, l);
    if (!l->watch) {
        close(l->fd);
        if (l->reserve_fd >= 0)
            close(l->reserve_fd);
        free(l);
        snprintf(err, errlen, "cannot watch the listening socket");
        return SERVER_E_INTERNAL;
    }
    srv->listener = l;
    const char *shown = st->host;
    int v6 = strchr(iface, ':') != NULL;
    snprintf(srv->url, sizeof(srv->url),
             v6 && shown[0] != '[' ? "%s://[%s]:%d/ws" : "%s://%s:%d/ws", srv->tls ? "wss" : "ws",
             shown, srv->bound_port);
    srv->running = 1;
    srv->started_at_ms = clock_wall_ms();
    srv->started_mono_ms = clock_mono_ms();
    log_msg(srv->log, LOG_INFO, "listening on %s", srv->url);
    /* Without TLS remote_warnings says it, louder. */
    if (!guard_host_is_loopback(shown) && srv->tls)
        log_msg(srv->log, LOG_WARN,
                "server.host %s is reachable from other machines: anyone who can reach it may "
                "try tokens",
                shown);
    char warn[REMOTE_WARNINGS_MAX][REMOTE_WARNING_MAX];
    size_t nw = remote_warnings(st, warn, REMOTE_WARNINGS_MAX);
    for (size_t i = 0; i < nw; i++)
        log_msg(srv->log, LOG_WARN, "%s", warn[i]);
    return SERVER_OK;
}

static void finish_stop(struct server *srv)
{
    loop_timer_cancel(srv->stop_timer);
    if (!srv->stopping)
        return;
    srv->stopping = 0;
    srv->bound_port = 0;
    srv->url[0] = '\0';
    log_msg(srv->log, LOG_INFO, "server stopped");
    /* Each done in the order asked; one may start the server again. */
    int n = srv->n_stop_done;
    srv->n_stop_done = 0;
    for (int i = 0; i < n; i++)
        srv->stop_done[i].cb(srv->stop_done[i].ud);
}

static void stop_timer_cb(void *arg)
{
    finish_stop(arg);
}

/* Never finish from inside a closing session's callback: the last CLOSED
 * only schedules it for the next turn. */
void server_maybe_finish_stop(struct server *srv)
{
    if (srv->stopping && !srv->sessions)
        loop_timer_arm(srv->stop_timer, 0);
}

void server_stop(struct server *srv, void (*done)(void *ud), void *ud)
{
    if (done && srv->n_stop_done < SERVER_STOP_DONE_MAX) {
        srv->stop_done[srv->n_stop_done].cb = done;
        srv->stop_done[srv->n_stop_done].ud = ud;
        srv->n_stop_done++;
    }
    if (srv->running) {
        srv->running = 0;
        srv->stopping = 1;
        close_listener(srv);
        server_close_all(srv, 1001, "server stopping");
        loop_timer_arm(srv->stop_timer, STOP_GRACE_MS);
    }
    if (!srv->stopping) {
        /* Not running: nothing to wait for, but answer from the loop. */
        srv->stopping = 1;
        loop_timer_arm(srv->stop_timer, 0);
        return;
    }
    server_maybe_finish_stop(srv);
}

static void restart_after_stop(void *arg)
{
    struct server *srv = arg;
    char err[256];
    if (server_start(srv, err, sizeof(err)) != SERVER_OK)
        log_msg(srv->log, LOG_ERROR, "server could not re-bind: %s", err);
}

static int same_text(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

int server_reconfigure(struct server *srv, const struct settings *old)
{
    const struct settings *st = srv->st;
    if (!srv->running)
        return 0;
    if (strcmp(old->host, st->host) == 0 && old->port == st->port &&
        same_text(old->tls_cert_file, st->tls_cert_file) &&
        same_text(old->tls_key_file, st->tls_key_file))
        return 0;
    log_msg(srv->log, LOG_INFO, "server.host, port or tls changed: re-binding");
    server_stop(srv, restart_after_stop, srv);
    return 1;
}

int server_tls(const struct server *srv)
{
    return srv->tls;
}

int server_running(const struct server *srv)
{
    return srv->running;
}

int server_stopping(const struct server *srv)
{
    return srv->stopping;
}

const char *server_url(const struct server *srv)
{
    return srv->url;
}

int server_port(const struct server *srv)
{
    return srv->bound_port;
}

int64_t server_started_at_ms(const struct server *srv)
{
    return srv->started_at_ms;
}

int server_connections(const struct server *srv)
{
    return srv->n_connections;
}

int server_authenticating(const struct server *srv)
{
    return srv->n_unauthenticated;
}

const struct server_counters *server_counters(const struct server *srv)
{
    return &srv->counters;
}
