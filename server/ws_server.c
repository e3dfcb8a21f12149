/*
 * ws_server: the listening vhost. HTTP requests are gated here before any
 * upgrade (path, Host, Origin, connection caps, answered with a real status),
 * `GET /health` is served, and WebSocket events are handed to session.c.
 * Also starts, stops and re-binds the listener.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <strings.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app/dataplane.h"
#include "core/guard.h"
#include "app/helper.h"
#include "server/loopio.h"
#include "app/reaper.h"
#include "server/session.h"

/* How long server/stop waits for clients to take their 1001 before the
 * listener (and whatever is left) is torn down. */
#define STOP_GRACE_MS 1000
/* How long a connection may sit unauthenticated before it gives its place to
 * a newer one once limits.maxUnauthenticated are waiting. */
#define PENDING_GRACE_MS 1000

struct ws_pss {
    struct session *session;
    char *body; /* an HTTP answer waiting for HTTP_WRITEABLE */
    size_t body_len;
};

static struct helper *helper_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
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

static int refuse(struct helper *h, struct lws *wsi, unsigned status, const char *code,
                  const char *why)
{
    char json[256];
    h->counters.connections_refused++;
    snprintf(json, sizeof(json), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, why);
    log_msg(&h->log, LOG_INFO, "HTTP %u: %s", status, why);
    http_answer_now(wsi, status, json);
    return 1;
}

/* Host and Origin checks shared by /health and the upgrade. Returns 0 when
 * the request may go on, else the answer has been written. */
static int gate_request(struct helper *h, struct lws *wsi)
{
    char host[300] = "", origin[300] = "";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HOST) >= (int)sizeof(host) ||
        lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0 ||
        !guard_host_allowed(host, h->bound_port, &h->settings.allowed_hosts))
        return refuse(h, wsi, 403, "FORBIDDEN", "host not allowed");
    int olen = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (olen > 0 && (olen >= (int)sizeof(origin) ||
                     lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0 ||
                     !guard_origin_allowed(origin, &h->settings.allowed_origins)))
        return refuse(h, wsi, 403, "FORBIDDEN", "origin not allowed");
    return 0;
}

static int uri_path_is(struct lws *wsi, const char *want)
{
    char uri[256];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) >= (int)sizeof(uri) ||
        lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
        return 0;
    return strcmp(uri, want) == 0;
}

static int on_http(struct helper *h, struct lws *wsi, struct ws_pss *pss, const char *path)
{
    if (gate_request(h, wsi))
        return 1;
    char *uri;
    int uri_len;
    int method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
    if (strcmp(path, "/health") != 0)
        return refuse(h, wsi, 404, "NOT_FOUND", "not found");
    if (method != LWSHUMETH_GET)
        return refuse(h, wsi, 405, "METHOD_NOT_ALLOWED", "only GET");

    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string("ok"));
    json_object_object_add(o, "version", json_object_new_string(COMPANION_VERSION));
    json_object_object_add(o, "uptime",
                           json_object_new_int64((clock_mono_ms() - h->started_mono_ms) / 1000));
    json_object_object_add(o, "connections", json_object_new_int(h->n_connections));
    size_t len;
    const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    pss->body = malloc(LWS_PRE + len);
    if (!pss->body) {
        json_object_put(o);
        return -1;
    }
    memcpy(pss->body + LWS_PRE, text, len);
    pss->body_len = len;
    json_object_put(o);

    unsigned char buf[LWS_PRE + 512];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    if (lws_add_http_common_headers(wsi, 200, "application/json", len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (unsigned char *)"no-store",
                                     8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_confirm_upgrade(struct helper *h, struct lws *wsi, const char *proto)
{
    if (!proto || strcmp(proto, "websocket") != 0)
        return refuse(h, wsi, 400, "BAD_REQUEST", "only websocket upgrades");
    if (gate_request(h, wsi))
        return 1;
    if (!uri_path_is(wsi, "/ws"))
        return refuse(h, wsi, 404, "NOT_FOUND", "the WebSocket endpoint is /ws");
    if (!h->running)
        return refuse(h, wsi, 503, "UNAVAILABLE", "server stopping");
    if (h->n_connections >= h->settings.max_connections)
        return refuse(h, wsi, 503, "UNAVAILABLE", "too many connections");
    /* Within maxConnections an honest client is never refused: when too
     * many connections are still authenticating, the oldest one that has
     * had PENDING_GRACE_MS makes room (an idle socket, not a client that
     * answers promptly); younger ones are let in, bounded by maxConnections
     * above. So a flood of idle sockets delays nobody for long, and a burst
     * of clients authenticating at once is not turned away. */
    if (h->n_unauthenticated >= h->settings.max_unauthenticated)
        session_evict_pending(h, PENDING_GRACE_MS);
    return 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct helper *h = helper_of(wsi);
    struct ws_pss *pss = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_http(h, wsi, pss, in ? (const char *)in : "");

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (pss && pss->body) {
            int n = lws_write(wsi, (unsigned char *)pss->body + LWS_PRE, pss->body_len,
                              LWS_WRITE_HTTP_FINAL);
            free(pss->body);
            pss->body = NULL;
            if (n < 0)
                return -1;
            if (lws_http_transaction_completed(wsi))
                return -1;
        }
        return 0;

    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (pss) {
            free(pss->body);
            pss->body = NULL;
        }
        return 0;

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return on_confirm_upgrade(h, wsi, in);

    case LWS_CALLBACK_ESTABLISHED:
        pss->session = session_new(h, wsi);
        if (!pss->session)
            return -1;
        dataplane_on_established(pss->session);
        return 0;

    case LWS_CALLBACK_RECEIVE:
        return pss->session ? session_on_receive(pss->session, in, len) : -1;

    case LWS_CALLBACK_RECEIVE_PONG:
        if (pss->session)
            session_on_pong(pss->session);
        return 0;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        return pss->session ? session_on_writable(pss->session) : -1;

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return 0;

    case LWS_CALLBACK_CLOSED:
        if (pss && pss->session) {
            session_free(pss->session);
            pss->session = NULL;
            if (h->stopping && !h->sessions)
                helper_server_stop(h, NULL);
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

static void finish_stop(struct helper *h);

struct listener {
    struct helper *h;
    int fd;
    int reserve_fd; /* kept open to shed connections when fds run out */
    void *watch;
};

static void on_accept(void *arg)
{
    struct listener *l = arg;
    struct helper *h = l->h;
    for (int i = 0; i < 128; i++) {
        int cfd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* The connection would wait in the backlog and wake us again
                 * at once: use the reserve fd to take it and drop it. */
                log_msg(&h->log, LOG_WARN, "out of file descriptors: refusing a connection");
                if (l->reserve_fd >= 0) {
                    close(l->reserve_fd);
                    int tmp = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
                    if (tmp >= 0)
                        close(tmp);
                    l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                }
                h->counters.connections_refused++;
            }
            return;
        }
        /* lws sets this on sockets it accepts itself, not on adopted ones.
         * Without it a reply in two segments waits for the client's delayed
         * ACK: 40 ms. */
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (!lws_adopt_socket_vhost(h->ws_vhost, cfd))
            h->counters.connections_refused++; /* lws has closed cfd */
    }
}

static int open_listener(const char *host, int port, int *bound, int *rpc_code, char *err,
                         size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", port);
    *rpc_code = RPC_INVALID_PARAMS;
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
            *rpc_code = RPC_SERVER_ERROR;
            snprintf(err, errlen, "port %d is already in use on %s", port, host);
        } else if (e == EADDRNOTAVAIL) {
            snprintf(err, errlen, "server.host: %s is not an address of this machine", host);
        } else if (e == EACCES) {
            *rpc_code = RPC_SERVER_ERROR;
            snprintf(err, errlen, "port %d needs privileges this process lacks", port);
        } else {
            *rpc_code = RPC_SERVER_ERROR;
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

static void close_listener(struct helper *h)
{
    struct listener *l = h->listener;
    if (!l)
        return;
    h->listener = NULL;
    /* Synchronously: the port must be free by the time stop is answered. */
    loopio_close_now(l->watch);
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

int ws_server_init(struct helper *h, char *err, size_t errlen)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = ws_protocols;
    info.vhost_name = "companion";
    info.timeout_secs = 10;
    info.keepalive_timeout = 5;
    info.retry_and_idle_policy = &ws_no_validity;
    h->ws_vhost = lws_create_vhost(h->ctx, &info);
    if (!h->ws_vhost) {
        snprintf(err, errlen, "cannot create the WebSocket vhost");
        return -1;
    }
    return 0;
}

static const char *iface_for(const char *host)
{
    return strcasecmp(host, "localhost") == 0 ? "127.0.0.1" : host;
}

int helper_server_start(struct helper *h, int *rpc_code, char *err, size_t errlen)
{
    *rpc_code = 0;
    if (h->running)
        return 0;
    if (h->stopping) {
        finish_stop(h); /* a stop still waiting for clients: finish it now */
        if (h->running)
            return 0; /* its completion was a restart */
    }
    if (settings_check_server(&h->settings, err, errlen) < 0) {
        *rpc_code = RPC_INVALID_PARAMS;
        return -1;
    }
    const char *iface = iface_for(h->settings.host);
    struct listener *l = calloc(1, sizeof(*l));
    if (!l) {
        *rpc_code = RPC_INTERNAL_ERROR;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    l->h = h;
    l->fd = open_listener(iface, h->settings.port, &h->bound_port, rpc_code, err, errlen);
    if (l->fd < 0) {
        free(l);
        return -1;
    }
    l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    l->watch = h->task_loop.watch_fd(h, l->fd, on_accept, l);
    if (!l->watch) {
        close(l->fd);
        if (l->reserve_fd >= 0)
            close(l->reserve_fd);
        free(l);
        *rpc_code = RPC_INTERNAL_ERROR;
        snprintf(err, errlen, "cannot watch the listening socket");
        return -1;
    }
    h->listener = l;
    /* Tasks are started by clients only, so their reaper is needed from
     * here on; a reaper that could not start is tried again next time. */
    if (h->reaper_fd < 0)
        h->reaper_fd = reaper_start();
    const char *shown = h->settings.host;
    int v6 = strchr(iface, ':') != NULL;
    snprintf(h->url, sizeof(h->url), v6 && shown[0] != '[' ? "ws://[%s]:%d/ws" : "ws://%s:%d/ws",
             shown, h->bound_port);
    h->running = 1;
    h->started_at_ms = clock_wall_ms();
    h->started_mono_ms = clock_mono_ms();
    log_msg(&h->log, LOG_INFO, "listening on %s", h->url);
    if (!guard_host_is_loopback(shown))
        log_msg(&h->log, LOG_WARN,
                "server.host %s is reachable from other machines: anyone who can reach it may "
                "try tokens",
                shown);
    return 0;
}

static void finish_stop(struct helper *h)
{
    lws_sul_cancel(&h->sul_stop);
    if (!h->stopping)
        return;
    h->stopping = 0;
    h->bound_port = 0;
    h->url[0] = '\0';
    log_msg(&h->log, LOG_INFO, "server stopped");
    if (h->pending_stop) {
        struct rpc_req *req = h->pending_stop;
        h->pending_stop = NULL;
        /* shutdown answers null, as in LSP; server/stop answers {}. */
        rpc_respond(req, h->pending_stop_null ? NULL : json_object_new_object());
    }
    void (*done)(struct helper *) = h->stop_done;
    h->stop_done = NULL;
    if (done)
        done(h);
}

static void stop_timer_cb(lws_sorted_usec_list_t *sul)
{
    finish_stop(lws_container_of(sul, struct helper, sul_stop));
}

void helper_server_stop(struct helper *h, void (*done)(struct helper *h))
{
    if (done)
        h->stop_done = done;
    if (h->running) {
        h->running = 0;
        h->stopping = 1;
        close_listener(h);
        for (struct session *s = h->sessions; s; s = s->next)
            session_close(s, 1001, "server stopping");
        helper_sul_schedule(h, &h->sul_stop, stop_timer_cb,
                            (lws_usec_t)STOP_GRACE_MS * LWS_US_PER_MS);
    }
    if (!h->stopping) {
        /* Not running: nothing to wait for, but answer from the loop. */
        h->stopping = 1;
        helper_sul_schedule(h, &h->sul_stop, stop_timer_cb, 1);
        return;
    }
    /* Never finish from inside a closing session's callback: the last
     * CLOSED, or this call, only schedules it for the next turn. */
    if (!h->sessions)
        helper_sul_schedule(h, &h->sul_stop, stop_timer_cb, 1);
}

static void restart_after_stop(struct helper *h)
{
    char err[256];
    int code;
    if (helper_server_start(h, &code, err, sizeof(err)) < 0)
        log_msg(&h->log, LOG_ERROR, "server could not re-bind: %s", err);
}

int helper_server_reconfigure(struct helper *h, const struct settings *old)
{
    if (!h->running)
        return 0;
    if (strcmp(old->host, h->settings.host) == 0 && old->port == h->settings.port)
        return 0;
    log_msg(&h->log, LOG_INFO, "server.host/port changed: re-binding");
    helper_server_stop(h, restart_after_stop);
    return 1;
}
