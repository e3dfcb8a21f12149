/*
 * server_impl: the transport's own state, shared by ws_server.c (the
 * listener, HTTP gate, lws callbacks, start/stop) and session.c (one
 * WebSocket's queue, reassembly, timers). Nothing outside server/ includes
 * it.
 */
#ifndef COMPANION_SERVER_IMPL_H
#define COMPANION_SERVER_IMPL_H

#include <json-c/printbuf.h>
#include <libwebsockets.h>

#include "core/guard.h"
#include "core/log.h"
#include "core/settings.h"
#include "server/loop.h"
#include "server/server.h"
#include "server/webapp.h"

/* The most lws hands the socket in one write. */
#define SESSION_TX_PACKET    (256 * 1024)
#define SESSION_REASON_MAX   123 /* a close frame's reason, in bytes */
#define SERVER_STOP_DONE_MAX 4

struct listener;

struct server {
    struct loop *loop;
    const struct settings *st; /* borrowed: the owner's current settings */
    struct logger *log;
    struct session_handler handler;
    struct lws_vhost *vhost; /* serves the sockets our listener accepts */
    int tls;                 /* vhost speaks TLS (server.tls, made at start) */
    struct listener *listener;

    int running, stopping;
    int bound_port;
    char url[300];
    int64_t started_at_ms;   /* wall clock */
    int64_t started_mono_ms; /* for /health's uptime */
    struct loop_timer *stop_timer;
    struct {
        void (*cb)(void *ud);
        void *ud;
    } stop_done[SERVER_STOP_DONE_MAX];
    int n_stop_done;

    struct session *sessions; /* every open WebSocket, doubly linked */
    int n_connections;
    int n_unauthenticated;
    struct server_counters counters;
    struct loop_timer *tick; /* every session's deadlines */
    int freeing;
    /* The direct send's frame buffer (LWS_PRE of headroom, then the text),
     * kept between sends so a reply costs no allocation; grown on demand,
     * freed with the server. */
    unsigned char *scratch;
    size_t scratch_cap;
    struct printbuf *pb; /* session_send's text, kept likewise; NULL until first used */
};

struct session_out {
    struct session_out *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then len bytes */
};

struct session {
    struct session *prev, *next;
    struct server *srv;
    struct lws *wsi;
    char id[SESSION_ID_LEN + 1];
    char remote[64];
    int64_t connected_ms;      /* wall clock */
    int64_t connected_mono_ms; /* monotonic */
    void *data;                /* the owner's */

    int authed;
    char *rx; /* a message arriving in several fragments */
    size_t rx_len, rx_cap;
    int rx_binary;

    struct session_out *out_head, *out_tail;
    size_t out_bytes;
    int ping_due;

    int close_code; /* nonzero: close once the queue is empty */
    int close_sent; /* the close frame has been handed to lws */
    char close_reason[SESSION_REASON_MAX + 1];

    int64_t last_rx_ms;       /* monotonic */
    int64_t auth_deadline_ms; /* monotonic: when an unauthenticated session is closed */
    int64_t expiry_ms;        /* wall clock: the token's exp + leeway */
    int64_t next_ping_ms;     /* monotonic: when the next PING frame goes out */
    int freeing;

    int dialect; /* enum session_dialect */
    /* Engine.IO (SESSION_SOCKETIO): wsi is NULL while the session polls;
     * poll_wsi is the GET held until there is something to send, probe_wsi
     * a WebSocket probing to take over (see eio.c). */
    int polling;
    int sio_opened; /* the CONNECT was handed to the owner */
    int sio_connected;
    struct lws *poll_wsi;
    struct lws *probe_wsi;
    int64_t closed_mono_ms; /* a polling session closing: when */
    /* What the handshake's query carried, kept for the Socket.IO CONNECT
     * that comes later (owned; NULL for other dialects, and once the
     * CONNECT has used it: it is 8 KiB, which an idle session must not
     * keep). */
    struct guard_creds *creds;
};

/* Per HTTP or WebSocket connection (lws's per-session user data). */
struct ws_pss {
    struct session *session;
    char *body; /* an HTTP answer waiting for HTTP_WRITEABLE */
    size_t body_len;
    struct webapp_reply web; /* a file of the phone client being written */
    /* Engine.IO polling (eio.c) */
    struct session *poll_session; /* a GET held for this session */
    int eio_closing;              /* answer the held GET with a close packet */
    int post;                     /* a POST whose body is arriving */
    char post_sid[SESSION_ID_LEN + 1];
    char *post_body;
    size_t post_len;
    int post_refused;
    char *origin; /* an allowed Origin to answer CORS for (owned; only HTTP polling sets it) */
    /* A WebSocket probing a polling session (eio.c) */
    struct session *probe;
    int probe_reply; /* "3probe" to write */
};

/* session.c, for ws_server.c and eio.c. A polling session is made with
 * the handshake's wsi (for the peer address) and polling 1. */
struct session *session_new(struct server *srv, struct lws *wsi, int dialect, int polling);
/* Wipes and frees the Socket.IO credentials kept since the handshake. */
void session_creds_drop(struct session *s);
/* Queues one whole frame (WebSocket) or packet (polling) of text. */
int session_queue_text(struct session *s, const char *text, size_t len);
/* Asks for a write on whichever connection carries the session now. */
void session_kick(struct session *s);
struct session *session_find(struct server *srv, const char *id);
/* ws_server.c: a stop waiting for its sessions finishes once none is left
 * (on a later turn of the loop). */
void server_maybe_finish_stop(struct server *srv);
void session_free(struct session *s);
int session_on_receive(struct session *s, const void *in, size_t len);
void session_on_pong(struct session *s);
int session_on_writable(struct session *s);
/* Closes (4001) the oldest session waiting to authenticate longer than
 * grace_ms, to make room. 1 when one was. */
int session_evict_pending(struct server *srv, int64_t grace_ms);
/* Arms the session tick if sessions exist and it is not armed. */
void session_tick_arm(struct server *srv);
void session_tick(void *srv);

/* eio.c: Engine.IO 4 transports on /socket.io/ (see eio.c). */
/* A query argument's value (name with its '='): 1, or 0 when absent. */
int eio_query_arg(struct lws *wsi, const char *name, char *buf, int len);
/* ws_server.c: every query argument of the request into c (guard_creds_arg),
 * long or not; c->bad when there are too many. */
void ws_read_query_creds(struct lws *wsi, struct guard_creds *c);
int eio_http(struct server *srv, struct lws *wsi, struct ws_pss *pss);
int eio_http_body(struct server *srv, struct lws *wsi, struct ws_pss *pss, const void *in,
                  size_t len);
int eio_http_body_done(struct server *srv, struct lws *wsi, struct ws_pss *pss);
/* HTTP_WRITEABLE for a held GET: 1 when it was not one. */
int eio_http_writeable(struct server *srv, struct lws *wsi, struct ws_pss *pss);
void eio_http_closed(struct ws_pss *pss, struct lws *wsi);
/* A WebSocket upgrade on /socket.io/ established: 0, or -1 to drop it. */
int eio_ws_established(struct server *srv, struct lws *wsi, struct ws_pss *pss);
int eio_ws_receive(struct server *srv, struct lws *wsi, struct ws_pss *pss, const void *in,
                   size_t len);
int eio_ws_writeable(struct lws *wsi, struct ws_pss *pss);
void eio_ws_closed(struct ws_pss *pss, struct lws *wsi);
/* One Engine.IO packet of a session, from a POST body or a frame. */
void eio_packet(struct session *s, const char *p, size_t len);
/* The session's handshake: the open packet's text (malloc'd). */
char *eio_open_packet(struct session *s, int upgrades, size_t *len);
/* Queues a Socket.IO error event and closes with 1002 (bad packets). */
void eio_refuse(struct session *s, const char *why);
/* Releases the polling and probe connections of a session being freed. */
void eio_session_gone(struct session *s);

#endif
