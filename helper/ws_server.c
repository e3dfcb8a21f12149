/*
 * ws_server: the listening vhost. HTTP requests are gated here before any
 * upgrade (path, Host, Origin, connection caps, answered with a real status),
 * `GET /health` is served, and WebSocket events are handed to session.c.
 * Also starts, stops and re-binds the listener.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helper/dataplane.h"
#include "helper/guard.h"
#include "helper/helper.h"
#include "helper/session.h"

/* How long server/stop waits for clients to take their 1001 before the
 * listener (and whatever is left) is torn down. */
#define STOP_GRACE_MS 1000

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
                           json_object_new_int64((helper_now_ms() - h->started_at_ms) / 1000));
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
    if (h->n_unauthenticated >= h->settings.max_unauthenticated)
        return refuse(h, wsi, 503, "UNAVAILABLE", "too many connections authenticating");
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
            if (!h->running && h->ws_vhost)
                helper_server_stop(h, NULL);
        }
        return 0;

    default:
        return 0;
    }
}

static const struct lws_protocols ws_protocols[] = {
    {"companion", ws_callback, sizeof(struct ws_pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Why did binding fail? lws only says NULL, so try the same bind ourselves. */
static int probe_bind(const char *host, int port, char *why, size_t len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &ai);
    if (rc != 0) {
        snprintf(why, len, "server.host: %s is not an IP address of this machine", host);
        return RPC_INVALID_PARAMS;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1, code = RPC_SERVER_ERROR;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno == EADDRINUSE)
            snprintf(why, len, "port %d is already in use on %s", port, host);
        else if (errno == EADDRNOTAVAIL) {
            snprintf(why, len, "server.host: %s is not an address of this machine", host);
            code = RPC_INVALID_PARAMS;
        } else if (errno == EACCES)
            snprintf(why, len, "port %d needs privileges this process lacks", port);
        else
            snprintf(why, len, "cannot listen on %s port %d: %s", host, port, strerror(errno));
    } else {
        snprintf(why, len, "cannot listen on %s port %d", host, port);
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return code;
}

static const char *iface_for(const char *host)
{
    /* lws takes an address or an interface name, not a host name. */
    return strcasecmp(host, "localhost") == 0 ? "127.0.0.1" : host;
}

int helper_server_start(struct helper *h, int *rpc_code, char *err, size_t errlen)
{
    *rpc_code = 0;
    if (h->running)
        return 0;
    if (h->ws_vhost) {
        /* A stop still in progress: finish it now. */
        lws_sul_cancel(&h->sul_stop);
        lws_vhost_destroy(h->ws_vhost);
        h->ws_vhost = NULL;
    }
    if (settings_check_server(&h->settings, err, errlen) < 0) {
        *rpc_code = RPC_INVALID_PARAMS;
        return -1;
    }
    const char *iface = iface_for(h->settings.host);
    int v6 = strchr(iface, ':') != NULL;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = h->settings.port;
    info.iface = iface;
    info.protocols = ws_protocols;
    info.vhost_name = "companion";
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND |
                   (v6 ? 0 : LWS_SERVER_OPTION_DISABLE_IPV6);
    info.timeout_secs = 10;
    info.keepalive_timeout = 5;
    h->ws_vhost = lws_create_vhost(h->ctx, &info);
    if (!h->ws_vhost) {
        *rpc_code = probe_bind(iface, h->settings.port, err, errlen);
        return -1;
    }
    h->bound_port = lws_get_vhost_listen_port(h->ws_vhost);
    const char *shown = h->settings.host;
    snprintf(h->url, sizeof(h->url), v6 && shown[0] != '[' ? "ws://[%s]:%d/ws" : "ws://%s:%d/ws",
             shown, h->bound_port);
    h->running = 1;
    h->started_at_ms = helper_now_ms();
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
    if (h->ws_vhost) {
        lws_vhost_destroy(h->ws_vhost);
        h->ws_vhost = NULL;
        log_msg(&h->log, LOG_INFO, "server stopped");
    }
    h->bound_port = 0;
    h->url[0] = '\0';
    if (h->pending_stop) {
        struct rpc_req *req = h->pending_stop;
        h->pending_stop = NULL;
        rpc_respond(req, json_object_new_object());
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
        for (struct session *s = h->sessions; s; s = s->next)
            session_close(s, 1001, "server stopping");
        lws_sul_schedule(h->ctx, 0, &h->sul_stop, stop_timer_cb,
                         (lws_usec_t)STOP_GRACE_MS * LWS_US_PER_MS);
    }
    /* Never destroy the vhost from inside one of its own callbacks: the
     * last CLOSED, or this call, only schedules it for the next turn. */
    if (!h->sessions || !h->ws_vhost)
        lws_sul_schedule(h->ctx, 0, &h->sul_stop, stop_timer_cb, 1);
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
