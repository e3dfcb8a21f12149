/*
 * session: one WebSocket from accept to close (see server.h): the outbound
 * queue, reassembly, closing after the queue drains, and the deadlines of
 * every session (one tick for all). Every write happens in
 * SERVER_WRITEABLE, one lws_write per callback, as lws requires, except a
 * reply sent when nothing is waiting, which goes out at once.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uuid/uuid.h>

#include "core/clock.h"
#include "server/server_impl.h"

/* A close that cannot be sent (the client does not read) is forced after this. */
#define SESSION_CLOSE_GRACE_S 5
/* Resolution of the authentication, expiry and heartbeat deadlines. */
#define SESSION_TICK_MS 250

/* A version 4 UUID from getrandom(2): libuuid's uuid_generate_random also
 * reseeds random(3) from the pid, uid and time on every call, which cost
 * about 5 us of each connection; libuuid still writes it out. */
static void session_new_id(char out[SESSION_ID_LEN + 1])
{
    uuid_t u;
    if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u)) {
        uuid_generate_random(u);
    } else {
        u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
        u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    }
    uuid_unparse_lower(u, out);
}

void session_creds_drop(struct session *s)
{
    if (!s->creds)
        return;
    guard_creds_clear(s->creds);
    free(s->creds);
    s->creds = NULL;
}

struct session *session_new(struct server *srv, struct lws *wsi, int dialect, int polling)
{
    const struct settings *st = srv->st;
    struct session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->srv = srv;
    s->wsi = polling ? NULL : wsi;
    s->dialect = dialect;
    s->polling = polling;
    if (dialect == SESSION_SOCKETIO) {
        s->creds = malloc(sizeof(*s->creds));
        if (!s->creds) {
            free(s);
            return NULL;
        }
        guard_creds_init(s->creds);
    }
    session_new_id(s->id);
    if (!lws_get_peer_simple(wsi, s->remote, sizeof(s->remote)))
        snprintf(s->remote, sizeof(s->remote), "unknown");
    s->connected_ms = clock_wall_ms();
    int64_t mono = clock_mono_ms();
    s->last_rx_ms = mono;
    s->connected_mono_ms = mono;

    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->n_connections++;
    srv->n_unauthenticated++;
    srv->counters.connections_total++;

    s->auth_deadline_ms = mono + (int64_t)st->auth_timeout_s * 1000;
    s->next_ping_ms = mono + (int64_t)st->heartbeat_interval_s * 1000;
    session_tick_arm(srv);
    return s;
}

static void out_clear(struct session *s)
{
    struct session_out *o = s->out_head;
    while (o) {
        struct session_out *next = o->next;
        free(o);
        o = next;
    }
    s->out_head = s->out_tail = NULL;
    s->out_bytes = 0;
}

void session_free(struct session *s)
{
    struct server *srv = s->srv;
    s->freeing = 1;
    if (srv->handler.closed)
        srv->handler.closed(srv->handler.ud, s);
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->n_connections--;
    if (!s->authed)
        srv->n_unauthenticated--;
    eio_session_gone(s);
    session_creds_drop(s);
    out_clear(s);
    free(s->rx);
    free(s);
}

struct session *session_find(struct server *srv, const char *id)
{
    for (struct session *s = srv->sessions; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

int session_dialect(const struct session *s)
{
    return s->dialect;
}

void session_kick(struct session *s)
{
    if (s->wsi)
        lws_callback_on_writable(s->wsi);
    else if (s->poll_wsi)
        lws_callback_on_writable(s->poll_wsi);
}

const char *session_id(const struct session *s)
{
    return s->id;
}

const char *session_remote(const struct session *s)
{
    return s->remote;
}

int64_t session_connected_ms(const struct session *s)
{
    return s->connected_ms;
}

void session_set_data(struct session *s, void *data)
{
    s->data = data;
}

void *session_data(const struct session *s)
{
    return s->data;
}

int session_is_closing(const struct session *s)
{
    return s->close_code != 0 || s->freeing;
}

int session_close_code(const struct session *s)
{
    return s->close_code;
}

const char *session_close_reason(const struct session *s)
{
    return s->close_code ? s->close_reason : "client closed";
}

void session_close(struct session *s, int code, const char *reason)
{
    if (s->close_code || s->freeing)
        return;
    s->close_code = code;
    snprintf(s->close_reason, sizeof(s->close_reason), "%s", reason ? reason : "");
    /* A slow consumer's queue is what got it closed: sending it would take
     * as long as the client likes, so drop it and send only the close. */
    if (code == 1008)
        out_clear(s);
    s->closed_mono_ms = clock_mono_ms();
    if (!s->wsi) {
        /* Polling: the held GET takes what is queued; the tick frees it. */
        session_kick(s);
        return;
    }
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_REASON_BASE, SESSION_CLOSE_GRACE_S);
    lws_callback_on_writable(s->wsi);
}

int session_send_obj(struct session *s, json_object *msg)
{
    struct server *srv = s->srv;
    if (s->close_code || s->freeing) {
        json_object_put(msg);
        return -1;
    }
    json_object *type;
    if (json_object_object_get_ex(msg, "type", &type))
        metrics_table_add(&srv->counters.out_by_type, json_object_get_string(type), 1);
    if (s->dialect == SESSION_SOCKETIO) {
        if (srv->handler.sio_outgoing && s->sio_connected)
            srv->handler.sio_outgoing(srv->handler.ud, s, msg);
        else
            json_object_put(msg);
        return 0;
    }
    if (s->dialect == SESSION_ENVELOPE && !json_object_object_get_ex(msg, "sessionId", NULL))
        json_object_object_add(msg, "sessionId", json_object_new_string(s->id));
    json_object_object_add(msg, "timestamp", json_object_new_int64(clock_wall_ms()));
    size_t len;
    const char *text = json_object_to_json_string_length(
        msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    int r = session_queue_text(s, text, len);
    json_object_put(msg);
    return r;
}

int session_queue_text(struct session *s, const char *text, size_t len)
{
    struct server *srv = s->srv;
    if (s->close_code || s->freeing)
        return -1;
    size_t max = (size_t)srv->st->max_queued_bytes;
    if (len > max) {
        /* Too big for any queue: the client is not slow, the message is
         * large. The caller says so instead. */
        return SESSION_TOO_LARGE;
    }
    if (s->out_bytes + len > max) {
        srv->counters.slow_consumers++;
        log_msg(srv->log, LOG_WARN, "session %s: client does not read (%zu bytes queued), closing",
                s->id, s->out_bytes);
        session_close(s, 1008, "slow consumer");
        return -1;
    }
    /* Nothing waiting and lws holds no part of an earlier write: send now,
     * not on the next turn of the loop after a POLLOUT (that would cost two
     * epoll_ctl calls and a loop turn per reply). What the socket does not
     * take, lws keeps and sends before any later write, and until then
     * lws_partial_buffered() routes later replies through the queue. This
     * asks lws, not the kernel: lws_send_pipe_choked() would poll(2) the
     * socket for every reply. */
    if (s->wsi && !s->out_head && !s->ping_due && !lws_partial_buffered(s->wsi)) {
        if (LWS_PRE + len > srv->scratch_cap) {
            size_t cap = srv->scratch_cap ? srv->scratch_cap : 4096;
            while (cap < LWS_PRE + len)
                cap *= 2;
            unsigned char *nb = realloc(srv->scratch, cap);
            if (!nb) {
                session_close(s, 1011, "out of memory");
                return -1;
            }
            srv->scratch = nb;
            srv->scratch_cap = cap;
        }
        memcpy(srv->scratch + LWS_PRE, text, len);
        int n = lws_write(s->wsi, srv->scratch + LWS_PRE, len, LWS_WRITE_TEXT);
        if (n < (int)len) {
            /* The socket is broken: lws closes it (no close frame can go). */
            s->close_code = 1006;
            lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_ASYNC);
            return -1;
        }
        srv->counters.messages_out++;
        srv->counters.bytes_out += len;
        return 0;
    }
    struct session_out *o = malloc(sizeof(*o) + LWS_PRE + len);
    if (!o) {
        session_close(s, 1011, "out of memory");
        return -1;
    }
    o->next = NULL;
    o->len = len;
    memcpy(o->buf + LWS_PRE, text, len);
    if (s->out_tail)
        s->out_tail->next = o;
    else
        s->out_head = o;
    s->out_tail = o;
    s->out_bytes += len;
    session_kick(s);
    return 0;
}

/* A native session's message as text, without a json-c object around it:
 * {"type":T,"id":I,"data":D,"timestamp":N}, the same bytes session_send_obj
 * would make (json-c writes an object's keys in the order they were added).
 * Saves two objects (a hash table each) and their walk per reply. */
static int send_native(struct session *s, const char *type, json_object *id, json_object *data)
{
    struct server *srv = s->srv;
    if (!srv->pb && !(srv->pb = printbuf_new())) {
        json_object_put(data);
        session_close(s, 1011, "out of memory");
        return -1;
    }
    struct printbuf *pb = srv->pb;
    const int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
    size_t n;
    const char *t;
    printbuf_reset(pb);
    printbuf_strappend(pb, "{\"type\":\"");
    printbuf_memappend(pb, type, (int)strlen(type)); /* ours: plain ASCII names */
    printbuf_strappend(pb, "\"");
    if (id) {
        t = json_object_to_json_string_length(id, flags, &n);
        printbuf_strappend(pb, ",\"id\":");
        printbuf_memappend(pb, t, (int)n);
    }
    if (data) {
        t = json_object_to_json_string_length(data, flags, &n);
        printbuf_strappend(pb, ",\"data\":");
        printbuf_memappend(pb, t, (int)n);
    }
    sprintbuf(pb, ",\"timestamp\":%lld}", (long long)clock_wall_ms());
    json_object_put(data);
    metrics_table_add(&srv->counters.out_by_type, type, 1);
    return session_queue_text(s, pb->buf, (size_t)pb->bpos);
}

int session_send(struct session *s, const char *type, json_object *id, json_object *data)
{
    if (s->dialect == SESSION_NATIVE) {
        if (s->close_code || s->freeing) {
            json_object_put(data);
            return -1;
        }
        return send_native(s, type, id, data);
    }
    json_object *msg = json_object_new_object();
    json_object_object_add(msg, "type", json_object_new_string(type));
    if (id)
        json_object_object_add(msg, "id", json_object_get(id));
    if (data)
        json_object_object_add(msg, "data", data);
    return session_send_obj(s, msg);
}

void session_send_error(struct session *s, json_object *id, const char *code, const char *message)
{
    metrics_table_add(&s->srv->counters.errors_by_code, code, 1);
    json_object *data = json_object_new_object();
    json_object_object_add(data, "code", json_object_new_string(code));
    json_object_object_add(data, "message", json_object_new_string(message));
    session_send(s, "error", id, data);
}

int session_on_writable(struct session *s)
{
    struct server *srv = s->srv;
    if (s->ping_due && !s->close_code) {
        /* lws 4.1 never reports an empty PONG, so the PING carries bytes. */
        unsigned char buf[LWS_PRE + 8];
        memcpy(buf + LWS_PRE, "cmpn-hb", 8);
        s->ping_due = 0;
        if (lws_write(s->wsi, buf + LWS_PRE, 8, LWS_WRITE_PING) < 0)
            return -1;
        if (s->out_head)
            lws_callback_on_writable(s->wsi);
        return 0;
    }
    struct session_out *o = s->out_head;
    if (o) {
        int n = lws_write(s->wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_TEXT);
        if (n < (int)o->len)
            return -1;
        s->out_head = o->next;
        if (!s->out_head)
            s->out_tail = NULL;
        s->out_bytes -= o->len;
        srv->counters.messages_out++;
        srv->counters.bytes_out += o->len;
        free(o);
        if (s->out_head || s->close_code)
            lws_callback_on_writable(s->wsi);
        return 0;
    }
    if (s->close_code && !s->close_sent) {
        /* Once: a second -1 after lws has queued the close frame makes it
         * drop the connection at once, and the client loses the close code
         * and whatever it had not read yet. */
        s->close_sent = 1;
        lws_close_reason(s->wsi, (enum lws_close_status)s->close_code,
                         (unsigned char *)s->close_reason, strlen(s->close_reason));
        return -1;
    }
    return 0;
}

static void deliver(struct session *s, const char *msg, size_t len, int binary)
{
    struct server *srv = s->srv;
    if (s->dialect == SESSION_SOCKETIO) {
        if (binary)
            eio_refuse(s, "binary frames are not supported");
        else
            eio_packet(s, msg, len);
        return;
    }
    if (srv->handler.message)
        srv->handler.message(srv->handler.ud, s, msg, len, binary);
}

int session_on_receive(struct session *s, const void *in, size_t len)
{
    struct server *srv = s->srv;
    struct lws *wsi = s->wsi;
    s->last_rx_ms = clock_mono_ms();
    srv->counters.bytes_in += len;
    int first = lws_is_first_fragment(wsi);
    int last = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);

    if (first) {
        s->rx_len = 0;
        s->rx_binary = lws_frame_is_binary(wsi);
    }
    if (s->rx_len + len > (size_t)srv->st->max_message_bytes) {
        srv->counters.oversize_messages++;
        static const char reason[] = "message too big";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)reason,
                         sizeof(reason) - 1);
        return -1;
    }
    if (s->close_code)
        return 0; /* closing: what arrives now is not acted upon */

    /* Most messages come in one piece: use lws's buffer without a copy. */
    if (first && last) {
        deliver(s, in, len, s->rx_binary);
        return 0;
    }
    if (s->rx_len + len + 1 > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : 1024;
        while (cap < s->rx_len + len + 1)
            cap *= 2;
        char *nb = realloc(s->rx, cap);
        if (!nb) {
            session_close(s, 1011, "out of memory");
            return 0;
        }
        s->rx = nb;
        s->rx_cap = cap;
    }
    memcpy(s->rx + s->rx_len, in, len);
    s->rx_len += len;
    if (last) {
        deliver(s, s->rx, s->rx_len, s->rx_binary);
        /* Idle connections keep no buffer: most messages arrive in one
         * piece, and the next one in several gets a new one. */
        free(s->rx);
        s->rx = NULL;
        s->rx_len = s->rx_cap = 0;
    }
    return 0;
}

void session_on_pong(struct session *s)
{
    s->last_rx_ms = clock_mono_ms();
}

void session_set_authed(struct session *s, int64_t expiry_wall_ms)
{
    if (!s->authed) {
        s->authed = 1;
        s->srv->n_unauthenticated--;
    }
    s->expiry_ms = expiry_wall_ms;
}

int session_is_authed(const struct session *s)
{
    return s->authed;
}

/* One timer for every session: lws keeps timers in a sorted list, so a
 * timer per session made each connection and each heartbeat cost O(N). The
 * tick walks the sessions instead (O(N) a quarter second, a few ns each). */
void session_tick(void *arg)
{
    struct server *srv = arg;
    const struct settings *st = srv->st;
    int64_t now = clock_mono_ms(), wall = clock_wall_ms();
    int64_t interval = (int64_t)st->heartbeat_interval_s * 1000;
    int64_t idle = (int64_t)st->heartbeat_timeout_s * 1000;
    struct session *next;
    for (struct session *s = srv->sessions; s; s = next) {
        next = s->next;
        if (!s->wsi && s->close_code) {
            /* A polling session closing: gone once its queue went out (or
             * nobody came for it within the grace). */
            if (!s->out_head || now - s->closed_mono_ms >= SESSION_CLOSE_GRACE_S * 1000) {
                session_free(s);
                server_maybe_finish_stop(srv);
            }
            continue;
        }
        if (session_is_closing(s))
            continue;
        if (!s->authed && now >= s->auth_deadline_ms) {
            srv->counters.auth_timeouts++;
            session_close(s, 4001, "authentication timeout");
        } else if (s->authed && wall >= s->expiry_ms) {
            /* exp is a wall-clock claim: this one follows the wall clock. */
            session_close(s, 4001, "token expired");
        } else if (now - s->last_rx_ms >= idle) {
            srv->counters.heartbeat_timeouts++;
            session_close(s, 4002, "heartbeat timeout");
        } else if (now >= s->next_ping_ms) {
            s->next_ping_ms = now + interval;
            if (s->dialect == SESSION_SOCKETIO) {
                session_queue_text(s, "2", 1); /* Engine.IO's ping */
            } else {
                s->ping_due = 1;
                lws_callback_on_writable(s->wsi);
            }
        }
    }
    session_tick_arm(srv);
}

void session_tick_arm(struct server *srv)
{
    if (loop_timer_armed(srv->tick) || !srv->sessions)
        return;
    loop_timer_arm(srv->tick, SESSION_TICK_MS);
}

int session_evict_pending(struct server *srv, int64_t grace_ms)
{
    struct session *oldest = NULL;
    int64_t now = clock_mono_ms();
    for (struct session *s = srv->sessions; s; s = s->next)
        if (!s->authed && !session_is_closing(s) && now - s->connected_mono_ms > grace_ms &&
            (!oldest || s->connected_mono_ms <= oldest->connected_mono_ms))
            oldest = s;
    if (!oldest)
        return 0;
    log_msg(srv->log, LOG_INFO,
            "session %s from %s: closed, still not authenticated while others wait", oldest->id,
            oldest->remote);
    srv->counters.auth_timeouts++;
    session_close(oldest, 4001, "authentication timeout: others are waiting");
    return 1;
}

int server_close_all(struct server *srv, int code, const char *reason)
{
    int n = 0;
    for (struct session *x = srv->sessions; x; x = x->next, n++)
        session_close(x, code, reason);
    return n;
}
