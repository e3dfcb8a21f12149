/*
 * server_impl: the transport's own state, shared by ws_server.c (the
 * listener, HTTP gate, lws callbacks, start/stop) and session.c (one
 * WebSocket's queue, reassembly, timers). Nothing outside server/ includes
 * it.
 */
#ifndef COMPANION_SERVER_IMPL_H
#define COMPANION_SERVER_IMPL_H

#include <libwebsockets.h>

#include "core/log.h"
#include "core/settings.h"
#include "server/loop.h"
#include "server/server.h"

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
};

/* session.c, for ws_server.c */
struct session *session_new(struct server *srv, struct lws *wsi);
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

#endif
