/*
 * session: one WebSocket connection from accept to close.
 *
 * Owns the connection's state (authenticated or not, user, scopes, token
 * expiry), the reassembly of fragmented messages under maxMessageBytes, the
 * bounded outbound queue (a client that stops reading is closed 1008 and its
 * queue dropped, so the helper's memory stays flat), closing with a code
 * after the queue drains, the authentication and heartbeat timers, and the
 * per-session rate limit. What messages mean is dataplane.c's business.
 */
#ifndef COMPANION_SESSION_H
#define COMPANION_SESSION_H

#include <libwebsockets.h>
#include <stdint.h>

#include "app/helper.h"

struct call;

#define SESSION_ID_LEN 36
/* The most lws hands the socket in one write (ws_server.c). */
#define SESSION_TX_PACKET  (256 * 1024)
#define SESSION_REASON_MAX 123 /* a close frame's reason, in bytes */

struct session_out {
    struct session_out *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then len bytes */
};

struct session {
    struct session *prev, *next;
    struct helper *h;
    struct lws *wsi;
    char id[SESSION_ID_LEN + 1];
    char remote[64];
    int64_t connected_ms;

    int authed;
    char *user_id;
    unsigned scopes;
    int64_t exp_s;

    char *rx; /* a message arriving in several fragments */
    size_t rx_len, rx_cap;
    int rx_binary;

    struct session_out *out_head, *out_tail;
    size_t out_bytes;
    int ping_due;

    int close_code; /* nonzero: close once the queue is empty */
    int close_sent; /* the close frame has been handed to lws */
    char close_reason[SESSION_REASON_MAX + 1];

    int64_t connected_mono_ms; /* monotonic */
    int64_t last_rx_ms;        /* monotonic */
    int64_t auth_deadline_ms;  /* monotonic: when an unauthenticated session is closed */
    int64_t expiry_ms;         /* wall clock: the token's exp + leeway */
    int64_t next_ping_ms;      /* monotonic: when the next PING frame goes out */

    struct call *calls;    /* commands still running for this session */
    const char *chat_word; /* set while a chat message is being dispatched */
    unsigned event_mask;   /* subscribed event kinds */
    int chat_notify;       /* "notify on": events as chat_reply text */
    int freeing;           /* in session_free: receives nothing more */

    double tokens; /* rate limit bucket */
    int64_t tokens_ms;
    double abuse; /* refusals not yet drained; see session_rate_take */
};

/* At LWS_CALLBACK_ESTABLISHED. NULL when out of memory. */
struct session *session_new(struct helper *h, struct lws *wsi);
/* At LWS_CALLBACK_CLOSED: unlinks and frees. */
void session_free(struct session *s);

/* LWS_CALLBACK_RECEIVE. Returns -1 to drop the connection (after setting a
 * close reason), 0 otherwise. */
int session_on_receive(struct session *s, const void *in, size_t len);
void session_on_pong(struct session *s);
/* LWS_CALLBACK_SERVER_WRITEABLE. Returns -1 to close. */
int session_on_writable(struct session *s);

/* Queues {type, id?, data?, timestamp} (data owned, id borrowed). Returns 0,
 * -1 when the session is closing or just overflowed (and is now closing), or
 * SESSION_TOO_LARGE when the message alone is larger than
 * limits.maxQueuedBytes (dropped; the session stays open). */
#define SESSION_TOO_LARGE (-2)
int session_send(struct session *s, const char *type, json_object *id, json_object *data);
/* Queues a whole message object (owned); adds timestamp. */
int session_send_obj(struct session *s, json_object *msg);
void session_send_error(struct session *s, json_object *id, const char *code, const char *message);

/* Closes with code/reason once what is queued has gone out (or at once, for
 * codes that mean the queue is useless: 1008 slow consumer). */
void session_close(struct session *s, int code, const char *reason);
int session_is_closing(const struct session *s);

/* Marks the session authenticated and starts the expiry timer. */
void session_set_authed(struct session *s, char *user_id, unsigned scopes, int64_t exp_s);
/* Restarts the expiry timer after a token refresh. */
void session_set_expiry(struct session *s, int64_t exp_s);

/* Arms the helper's session tick (authentication and token deadlines,
 * PINGs, the idle limit) if sessions exist and it is not armed. */
void session_tick_arm(struct helper *h);

/* Takes one token from the rate bucket: 1 allowed, 0 refused. */
int session_rate_take(struct session *s);

/* Closes every session with code/reason; returns how many. */
int session_close_all(struct helper *h, int code, const char *reason);

/* Closes (4001) the oldest session that has been waiting to authenticate
 * longer than grace_ms, to make room for a new connection. 1 when one was. */
int session_evict_pending(struct helper *h, int64_t grace_ms);

struct session *session_find(struct helper *h, const char *id);
/* {sessionId, userId, remoteAddress, connectedAt, scopes} */
json_object *session_status_json(const struct session *s);

#endif
