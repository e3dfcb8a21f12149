/*
 * eio: Engine.IO 4 on /socket.io/?EIO=4 with Socket.IO 5 on top, as
 * socket.io-client and python-socketio speak it by default:
 *
 *  - long-polling: a GET without sid is the handshake (a session is made,
 *    answered with the open packet); a GET with sid is held until something
 *    is queued for the session (at the latest the ping every pingInterval)
 *    and answered with every queued packet joined by 0x1e; a POST carries
 *    packets (at most limits.maxMessageBytes, else 413 and the session
 *    ends). A session nobody polls is closed by the heartbeat like any
 *    other (pingInterval + pingTimeout without a packet) and freed by the
 *    session tick.
 *  - the upgrade: a WebSocket with the session's sid probes (2probe ->
 *    3probe, the held GET answered with a noop), then 5 moves the session
 *    onto it.
 *  - WebSocket only: a WebSocket without sid gets its own session and the
 *    open packet as its first frame.
 *
 * Socket.IO packets are decoded by core/sio.c; CONNECT goes to the owner's
 * `opened` (with the auth object's token, else the query's), EVENTs to its
 * `sio_event`. Only the main namespace exists. Same gates and caps as /ws
 * (ws_server.c checks Host, Origin and caps before calling here); CORS
 * headers only echo an Origin that passed the gate.
 *
 * Ownership: a held GET's connection points at its session and the session
 * at it (poll_wsi); whichever goes first clears the other. POST bodies are
 * the connection's (ws_pss), freed when it closes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/sio.h"
#include "server/server_impl.h"

/* The longest Origin kept for a CORS answer (as the handshake checks read). */
#define EIO_ORIGIN_MAX 300

int eio_query_arg(struct lws *wsi, const char *name, char *buf, int len)
{
    /* lws copies the whole "name=value" and points past the name; an
     * argument longer than its buffer ends the search, so the buffer is
     * roomy and the value must fit in buf. */
    char tmp[512];
    buf[0] = '\0';
    const char *v = lws_get_urlarg_by_name(wsi, name, tmp, sizeof(tmp));
    if (!v || strlen(v) >= (size_t)len)
        return 0;
    memcpy(buf, v, strlen(v) + 1);
    return 1;
}

static int arg(struct lws *wsi, const char *name, char *buf, int len)
{
    return eio_query_arg(wsi, name, buf, len);
}

/* A complete answer: headers now, the body on HTTP_WRITEABLE (ws_server.c
 * writes pss->body). CORS headers echo an allowed Origin only. */
static int reply(struct lws *wsi, struct ws_pss *pss, unsigned status, const char *ctype,
                 const char *body, size_t len)
{
    pss->body = malloc(LWS_PRE + len + 1);
    if (!pss->body)
        return -1;
    memcpy(pss->body + LWS_PRE, body, len);
    pss->body_len = len;
    unsigned char buf[LWS_PRE + 1024];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    if (lws_add_http_common_headers(wsi, status, ctype, len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (unsigned char *)"no-store",
                                     8, &p, end))
        return -1;
    if (pss->origin &&
        (lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-origin:",
                                     (const unsigned char *)pss->origin, (int)strlen(pss->origin),
                                     &p, end) ||
         lws_add_http_header_by_name(wsi,
                                     (const unsigned char *)"access-control-allow-credentials:",
                                     (const unsigned char *)"true", 4, &p, end) ||
         lws_add_http_header_by_name(
             wsi, (const unsigned char *)"vary:", (const unsigned char *)"Origin", 6, &p, end)))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

/* Engine.IO's own errors: 400 {"code", "message"}. */
static int eio_error(struct server *srv, struct lws *wsi, struct ws_pss *pss, unsigned status,
                     int code, const char *message)
{
    char json[200];
    int n = snprintf(json, sizeof(json), "{\"code\":%d,\"message\":\"%s\"}", code, message);
    log_msg(srv->log, LOG_INFO, "Engine.IO %u: %s", status, message);
    if (reply(wsi, pss, status, "application/json", json, (size_t)n) < 0)
        return -1;
    return 0;
}

static int64_t ping_interval_ms(const struct settings *st)
{
    return (int64_t)st->heartbeat_interval_s * 1000;
}

/* Engine.IO closes a session that has not answered a ping within
 * pingInterval + pingTimeout; the session tick closes one silent for
 * heartbeat.timeoutSeconds. */
static int64_t ping_timeout_ms(const struct settings *st)
{
    int64_t t = (int64_t)(st->heartbeat_timeout_s - st->heartbeat_interval_s) * 1000;
    return t > 0 ? t : 1000;
}

char *eio_open_packet(struct session *s, int upgrades, size_t *len)
{
    const struct settings *st = s->srv->st;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "sid", json_object_new_string(s->id));
    json_object *u = json_object_new_array();
    if (upgrades)
        json_object_array_add(u, json_object_new_string("websocket"));
    json_object_object_add(o, "upgrades", u);
    json_object_object_add(o, "pingInterval", json_object_new_int64(ping_interval_ms(st)));
    json_object_object_add(o, "pingTimeout", json_object_new_int64(ping_timeout_ms(st)));
    json_object_object_add(o, "maxPayload", json_object_new_int64(st->max_message_bytes));
    size_t jl;
    const char *js = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &jl);
    char *out = malloc(jl + 2);
    if (out) {
        out[0] = '0';
        memcpy(out + 1, js, jl + 1);
        *len = jl + 1;
    }
    json_object_put(o);
    return out;
}

/* Caps as for /ws: 0 when a new session may be made. */
static const char *caps_refuse(struct server *srv)
{
    if (!srv->running)
        return "server stopping";
    if (srv->n_connections >= srv->st->max_connections)
        return "too many connections";
    if (srv->n_unauthenticated >= srv->st->max_unauthenticated)
        session_evict_pending(srv, 1000);
    return NULL;
}

int eio_http(struct server *srv, struct lws *wsi, struct ws_pss *pss)
{
    char *uri;
    int uri_len;
    int method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
    /* Kept per request, not in every connection's pss: most connections
     * are WebSockets that never answer CORS. */
    free(pss->origin);
    pss->origin = NULL;
    int olen = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (olen > 0 && olen < EIO_ORIGIN_MAX && (pss->origin = malloc((size_t)olen + 1)) != NULL &&
        lws_hdr_copy(wsi, pss->origin, olen + 1, WSI_TOKEN_ORIGIN) <= 0) {
        free(pss->origin);
        pss->origin = NULL;
    }
    char eio[8], transport[16], sid[SESSION_ID_LEN + 2];
    if (!arg(wsi, "EIO=", eio, sizeof(eio))) {
        srv->counters.connections_refused++;
        return eio_error(srv, wsi, pss, 400, 0,
                         "the envelope dialect on /socket.io/ is WebSocket only; Socket.IO "
                         "needs EIO=4");
    }
    if (strcmp(eio, "4") != 0) {
        srv->counters.connections_refused++;
        return eio_error(srv, wsi, pss, 400, 5, "Unsupported protocol version");
    }
    if (method == LWSHUMETH_OPTIONS) {
        /* A preflight: what an allowed page may send (none for others,
         * which the gate has refused already). */
        return reply(wsi, pss, 204, "text/plain", "", 0);
    }
    if (!arg(wsi, "transport=", transport, sizeof(transport)) || strcmp(transport, "polling") != 0)
        return eio_error(srv, wsi, pss, 400, 0, "Transport unknown");
    int has_sid = arg(wsi, "sid=", sid, sizeof(sid));
    if (!has_sid) {
        if (method != LWSHUMETH_GET)
            return eio_error(srv, wsi, pss, 400, 2, "Bad handshake method");
        const char *why = caps_refuse(srv);
        if (why) {
            srv->counters.connections_refused++;
            return eio_error(srv, wsi, pss, 503, 3, why);
        }
        struct session *s = session_new(srv, wsi, SESSION_SOCKETIO, 1);
        if (!s)
            return -1;
        ws_read_query_creds(wsi, s->creds);
        size_t len;
        char *open = eio_open_packet(s, 1, &len);
        int r = open ? reply(wsi, pss, 200, "text/plain; charset=UTF-8", open, len) : -1;
        free(open);
        return r;
    }
    struct session *s = session_find(srv, sid);
    if (!s || s->dialect != SESSION_SOCKETIO || (!s->polling && method == LWSHUMETH_GET))
        return eio_error(srv, wsi, pss, 400, 1, "Session ID unknown");
    s->last_rx_ms = clock_mono_ms();
    if (method == LWSHUMETH_GET) {
        if (s->poll_wsi) {
            session_close(s, 1002, "overlapping GET requests");
            return eio_error(srv, wsi, pss, 400, 3, "overlapping GET requests");
        }
        s->poll_wsi = wsi;
        pss->poll_session = s;
        /* The ping comes every pingInterval; this is only a safety net. */
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
                        (int)((ping_interval_ms(srv->st) + ping_timeout_ms(srv->st)) / 1000) + 5);
        if (s->out_head || s->close_code)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (method != LWSHUMETH_POST)
        return eio_error(srv, wsi, pss, 400, 3, "Bad request");
    int cl = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (cl > 0) {
        char v[24];
        lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP_CONTENT_LENGTH);
        if (strtoll(v, NULL, 10) > srv->st->max_message_bytes) {
            srv->counters.oversize_messages++;
            session_close(s, 1009, "payload too large");
            return eio_error(srv, wsi, pss, 413, 3, "payload too large");
        }
    }
    pss->post = 1;
    memcpy(pss->post_sid, s->id, sizeof(pss->post_sid)); /* sid is s->id */
    return 0;
}

int eio_http_body(struct server *srv, struct lws *wsi, struct ws_pss *pss, const void *in,
                  size_t len)
{
    (void)wsi;
    if (!pss->post || pss->post_refused || !len)
        return 0;
    if (pss->post_len + len > (size_t)srv->st->max_message_bytes) {
        pss->post_refused = 1;
        free(pss->post_body);
        pss->post_body = NULL;
        return 0;
    }
    char *nb = realloc(pss->post_body, pss->post_len + len + 1);
    if (!nb)
        return -1;
    memcpy(nb + pss->post_len, in, len);
    pss->post_body = nb;
    pss->post_len += len;
    return 0;
}

int eio_http_body_done(struct server *srv, struct lws *wsi, struct ws_pss *pss)
{
    if (!pss->post)
        return 0;
    pss->post = 0;
    struct session *s = session_find(srv, pss->post_sid);
    if (pss->post_refused) {
        srv->counters.oversize_messages++;
        if (s)
            session_close(s, 1009, "payload too large");
        return eio_error(srv, wsi, pss, 413, 3, "payload too large");
    }
    if (!s || s->dialect != SESSION_SOCKETIO)
        return eio_error(srv, wsi, pss, 400, 1, "Session ID unknown");
    srv->counters.bytes_in += pss->post_len;
    size_t off = 0, pl;
    const char *p;
    const char *body = pss->post_body ? pss->post_body : "";
    while (!s->close_code && sio_payload_next(body, pss->post_len, &off, &p, &pl))
        eio_packet(s, p, pl);
    free(pss->post_body);
    pss->post_body = NULL;
    pss->post_len = 0;
    return reply(wsi, pss, 200, "text/html", "ok", 2);
}

int eio_http_writeable(struct server *srv, struct lws *wsi, struct ws_pss *pss)
{
    struct session *s = pss->poll_session;
    if (!s && !pss->eio_closing)
        return 1;
    char *body = NULL;
    size_t len = 0;
    if (s && s->polling && s->out_head) {
        for (struct session_out *o = s->out_head; o; o = o->next)
            len += o->len + 1;
        body = malloc(len);
        if (!body)
            return -1;
        len = 0;
        struct session_out *o = s->out_head;
        while (o) {
            struct session_out *next = o->next;
            if (len)
                body[len++] = '\x1e';
            memcpy(body + len, o->buf + LWS_PRE, o->len);
            len += o->len;
            srv->counters.messages_out++;
            srv->counters.bytes_out += o->len;
            free(o);
            o = next;
        }
        s->out_head = s->out_tail = NULL;
        s->out_bytes = 0;
    } else if (!s || s->close_code) {
        body = strdup("1"); /* Engine.IO close */
        len = 1;
    } else if (!s->polling) {
        body = strdup("6"); /* upgraded: the last GET ends with a noop */
        len = 1;
    } else {
        return 0; /* woken for nothing: keep holding */
    }
    if (s) {
        s->poll_wsi = NULL;
        pss->poll_session = NULL;
    }
    pss->eio_closing = 0;
    int r = body ? reply(wsi, pss, 200, "text/plain; charset=UTF-8", body, len) : -1;
    free(body);
    return r;
}

void eio_http_closed(struct ws_pss *pss, struct lws *wsi)
{
    if (pss->poll_session && pss->poll_session->poll_wsi == wsi)
        pss->poll_session->poll_wsi = NULL;
    pss->poll_session = NULL;
    free(pss->post_body);
    pss->post_body = NULL;
    pss->post_len = 0;
    free(pss->origin);
    pss->origin = NULL;
}

int eio_ws_established(struct server *srv, struct lws *wsi, struct ws_pss *pss)
{
    char sid[SESSION_ID_LEN + 2];
    if (arg(wsi, "sid=", sid, sizeof(sid))) {
        struct session *s = session_find(srv, sid);
        if (!s || s->dialect != SESSION_SOCKETIO || !s->polling || s->probe_wsi || s->close_code)
            return -1;
        s->probe_wsi = wsi;
        pss->probe = s;
        return 0;
    }
    struct session *s = session_new(srv, wsi, SESSION_SOCKETIO, 0);
    if (!s)
        return -1;
    pss->session = s;
    ws_read_query_creds(wsi, s->creds);
    size_t len;
    char *open = eio_open_packet(s, 0, &len);
    if (!open)
        return -1;
    session_queue_text(s, open, len);
    free(open);
    return 0;
}

int eio_ws_receive(struct server *srv, struct lws *wsi, struct ws_pss *pss, const void *in,
                   size_t len)
{
    (void)srv;
    struct session *s = pss->probe;
    if (!s)
        return -1;
    if (len == 6 && memcmp(in, "2probe", 6) == 0) {
        pss->probe_reply = 1;
        lws_callback_on_writable(wsi);
        /* The client pauses polling: its held GET must come back. */
        session_queue_text(s, "6", 1);
        return 0;
    }
    if (len == 1 && ((const char *)in)[0] == '5') {
        s->wsi = wsi;
        s->polling = 0;
        s->probe_wsi = NULL;
        pss->probe = NULL;
        pss->session = s;
        s->last_rx_ms = clock_mono_ms();
        if (s->poll_wsi)
            lws_callback_on_writable(s->poll_wsi);
        lws_callback_on_writable(wsi);
        return 0;
    }
    return -1;
}

int eio_ws_writeable(struct lws *wsi, struct ws_pss *pss)
{
    if (!pss->probe)
        return 1;
    if (pss->probe_reply) {
        unsigned char buf[LWS_PRE + 8];
        memcpy(buf + LWS_PRE, "3probe", 6);
        pss->probe_reply = 0;
        if (lws_write(wsi, buf + LWS_PRE, 6, LWS_WRITE_TEXT) < 6)
            return -1;
    }
    return 0;
}

void eio_ws_closed(struct ws_pss *pss, struct lws *wsi)
{
    if (pss->probe && pss->probe->probe_wsi == wsi)
        pss->probe->probe_wsi = NULL;
    pss->probe = NULL;
    free(pss->origin); /* an HTTP request's, if lws kept its pss for the WebSocket */
    pss->origin = NULL;
}

void eio_session_gone(struct session *s)
{
    if (s->poll_wsi) {
        struct ws_pss *pss = lws_wsi_user(s->poll_wsi);
        if (pss) {
            pss->poll_session = NULL;
            pss->eio_closing = 1;
        }
        lws_callback_on_writable(s->poll_wsi);
        s->poll_wsi = NULL;
    }
    if (s->probe_wsi) {
        struct ws_pss *pss = lws_wsi_user(s->probe_wsi);
        if (pss)
            pss->probe = NULL;
        lws_set_timeout(s->probe_wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_ASYNC);
        s->probe_wsi = NULL;
    }
}

/* ---- Socket.IO over either transport ---- */

static int queue_owned(struct session *s, char *text, size_t len)
{
    if (!text)
        return -1;
    int r = session_queue_text(s, text, len);
    free(text);
    return r;
}

void eio_refuse(struct session *s, const char *why)
{
    metrics_table_add(&s->srv->counters.errors_by_code, "INVALID_MESSAGE", 1);
    log_msg(s->srv->log, LOG_INFO, "session %s: Socket.IO packet refused: %s", s->id, why);
    json_object *e = json_object_new_object();
    json_object_object_add(e, "code", json_object_new_string("INVALID_MESSAGE"));
    json_object_object_add(e, "message", json_object_new_string(why));
    size_t len;
    char *t = sio_event_encode("error", e, -1, &len);
    queue_owned(s, t, len);
    session_close(s, 1002, "parse error");
}

static void on_connect(struct session *s, struct sio_packet *pkt)
{
    struct server *srv = s->srv;
    if (strcmp(pkt->nsp, "/") != 0) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "message", json_object_new_string("Invalid namespace"));
        size_t len;
        char *t = sio_packet_encode(SIO_CONNECT_ERROR, pkt->nsp, -1, e, &len);
        queue_owned(s, t, len);
        json_object_put(e);
        return;
    }
    if (s->sio_opened)
        return; /* a second CONNECT: the first one stands */
    s->sio_opened = 1;
    struct guard_creds c;
    guard_creds_init(&c);
    json_object *tok = NULL, *wsid = NULL;
    if (pkt->data && json_object_object_get_ex(pkt->data, "token", &tok)) {
        if (!json_object_is_type(tok, json_type_string) || json_object_get_string_len(tok) == 0 ||
            json_object_get_string_len(tok) > GUARD_TOKEN_MAX) {
            c.bad = "auth.token: expected a token string";
            c.has_token = 1;
        } else {
            size_t n = (size_t)json_object_get_string_len(tok) + 7;
            char *a = malloc(n);
            if (a) {
                snprintf(a, n, "token=%s", json_object_get_string(tok));
                guard_creds_arg(&c, a, n - 1);
                explicit_bzero(a, n);
                free(a);
            }
        }
        if (json_object_object_get_ex(pkt->data, "workspaceId", &wsid) &&
            json_object_is_type(wsid, json_type_string) &&
            json_object_get_string_len(wsid) <= GUARD_WSID_MAX) {
            snprintf(c.workspace_id, sizeof(c.workspace_id), "%s", json_object_get_string(wsid));
            c.has_workspace_id = 1;
        }
    } else if (s->creds) {
        c = *s->creds;
    }
    session_creds_drop(s); /* only the first CONNECT uses them */
    if (srv->handler.opened)
        srv->handler.opened(srv->handler.ud, s, &c);
    guard_creds_clear(&c);
}

void eio_packet(struct session *s, const char *p, size_t len)
{
    struct server *srv = s->srv;
    if (s->close_code)
        return;
    int type;
    const char *d;
    size_t dl;
    char why[160];
    if (sio_eio_parse(p, len, &type, &d, &dl, why, sizeof(why)) < 0) {
        eio_refuse(s, why);
        return;
    }
    switch (type) {
    case SIO_EIO_PONG:
    case SIO_EIO_NOOP:
        return;
    case SIO_EIO_PING:
        queue_owned(s, strndup("3", 1), 1);
        return;
    case SIO_EIO_CLOSE:
        session_close(s, 1000, "client closed");
        return;
    case SIO_EIO_MESSAGE:
        break;
    default:
        eio_refuse(s, "unexpected Engine.IO packet");
        return;
    }
    struct sio_packet pkt;
    if (sio_packet_parse(d, dl, &pkt, why, sizeof(why)) < 0) {
        sio_packet_clear(&pkt);
        eio_refuse(s, why);
        return;
    }
    switch (pkt.type) {
    case SIO_CONNECT:
        on_connect(s, &pkt);
        break;
    case SIO_DISCONNECT:
        if (strcmp(pkt.nsp, "/") == 0)
            session_close(s, 1000, "client disconnected");
        break;
    case SIO_EVENT:
        if (strcmp(pkt.nsp, "/") != 0)
            break; /* a namespace that was refused: nobody listens */
        if (!s->sio_connected) {
            sio_packet_clear(&pkt);
            eio_refuse(s, "an event before the CONNECT was accepted");
            return;
        }
        if (srv->handler.sio_event)
            srv->handler.sio_event(srv->handler.ud, s, pkt.event, pkt.data, pkt.ack);
        break;
    case SIO_ACK:
        break; /* the server asks for no acks */
    default:
        sio_packet_clear(&pkt);
        eio_refuse(s, "a client does not send that packet type");
        return;
    }
    sio_packet_clear(&pkt);
}

int session_sio_emit(struct session *s, const char *event, json_object *payload)
{
    if (s->close_code || s->freeing) {
        json_object_put(payload);
        return -1;
    }
    metrics_table_add(&s->srv->counters.out_by_type, event, 1);
    size_t len;
    char *t = sio_event_encode(event, payload, -1, &len);
    return queue_owned(s, t, len);
}

int session_sio_ack(struct session *s, int64_t ack, json_object *args)
{
    size_t len;
    char *t = sio_packet_encode(SIO_ACK, "/", ack, args, &len);
    json_object_put(args);
    return queue_owned(s, t, len);
}

void session_sio_connected(struct session *s)
{
    if (s->sio_connected)
        return;
    s->sio_connected = 1;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "sid", json_object_new_string(s->id));
    size_t len;
    char *t = sio_packet_encode(SIO_CONNECT, "/", -1, o, &len);
    json_object_put(o);
    queue_owned(s, t, len);
}

void session_sio_connect_error(struct session *s, const char *message)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "message", json_object_new_string(message));
    size_t len;
    char *t = sio_packet_encode(SIO_CONNECT_ERROR, "/", -1, o, &len);
    json_object_put(o);
    queue_owned(s, t, len);
    session_close(s, 4001, "authentication failed");
}
