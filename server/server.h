/*
 * server: the WebSocket transport, the only part of the helper that knows
 * libwebsockets' sockets. It owns the listening socket, gates HTTP requests
 * before any upgrade (path, Host, Origin, connection caps, with a real
 * status), serves `GET /health`, and owns each session's transport state:
 * reassembly under limits.maxMessageBytes, the bounded outbound queue
 * (a client that does not read is closed 1008), closing with a code after
 * the queue drains, the authentication deadline, the token's expiry, the
 * heartbeat (PING frames, 4002 after the idle limit) and the connection
 * counts.
 *
 * The same sessions also speak Engine.IO 4 / Socket.IO 5 on /socket.io/?EIO=4
 * (long-polling or WebSocket, eio.c) and the envelope dialect on
 * /socket.io/ without EIO; session_dialect says which.
 *
 * What messages mean is the owner's business: it hands in a
 * session_handler at construction and is called when a session opens (with
 * the credentials the upgrade request carried), for each message, and when
 * it closes. Per-client data (user, scopes, subscriptions) hangs off the
 * session through session_set_data and belongs to the owner.
 *
 * Ownership: server_new returns a server freed with server_free, which
 * closes every session (calling `closed` for each) first. The settings and
 * logger passed in are borrowed and must outlive it.
 */
#ifndef COMPANION_SERVER_H
#define COMPANION_SERVER_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "core/metrics.h"

struct guard_creds;
struct logger;
struct loop;
struct server;
struct session;
struct settings;

struct session_handler {
    void *ud;
    /* After the upgrade. creds holds what the request carried
     * (Authorization: Bearer, ?token=, ?workspaceId=), possibly nothing. */
    void (*opened)(void *ud, struct session *s, const struct guard_creds *creds);
    /* One whole text (or binary) message; msg is valid during the call. */
    void (*message)(void *ud, struct session *s, const char *msg, size_t len, int binary);
    /* The session is going: nothing more can be sent on it. */
    void (*closed)(void *ud, struct session *s);
    /* GET /metrics: appends the Prometheus text (the owner's and this
     * transport's counters, read through server_counters). Optional. */
    void (*metrics)(void *ud, struct metrics_buf *out);
    void *metrics_ud;
    /* Socket.IO sessions (session_dialect SESSION_SOCKETIO): `opened` runs
     * at the client's CONNECT on the main namespace, with the auth
     * object's token (or the query's); the owner answers with
     * session_sio_connected or session_sio_connect_error. Then each EVENT
     * comes here (args: the packet's array, name first, borrowed; ack: the
     * id to answer with session_sio_ack, or -1), and every message the
     * owner queues with session_send_obj goes to sio_outgoing (owned)
     * instead, for the owner to turn into events or drop. */
    void (*sio_event)(void *ud, struct session *s, const char *name, json_object *args,
                      int64_t ack);
    void (*sio_outgoing)(void *ud, struct session *s, json_object *msg);
};

/* What a session speaks, from its URL: /ws is the native protocol;
 * /socket.io/ with EIO=4 is Engine.IO 4 / Socket.IO 5 (polling or
 * WebSocket); /socket.io/ without EIO is the envelope dialect (native
 * messages, each server frame also carrying `sessionId`). */
enum session_dialect {
    SESSION_NATIVE = 0,
    SESSION_SOCKETIO,
    SESSION_ENVELOPE,
};

/* What the transport counts (server/status adds the owner's own). */
struct server_counters {
    uint64_t connections_total;
    uint64_t connections_refused; /* 403/404/503 before the upgrade */
    uint64_t auth_timeouts;
    uint64_t messages_out;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t slow_consumers;
    uint64_t heartbeat_timeouts;
    uint64_t oversize_messages;
    struct metrics_table out_by_type;    /* messages queued, by their `type` */
    struct metrics_table errors_by_code; /* `error` messages, by data.code */
};

enum server_err {
    SERVER_OK = 0,
    SERVER_E_SETTINGS, /* bad host, port or auth settings */
    SERVER_E_PORT,     /* the port is taken, or needs privileges */
    SERVER_E_LISTEN,   /* listening failed otherwise */
    SERVER_E_INTERNAL, /* out of memory, no watcher */
};

struct server *server_new(struct loop *l, const struct settings *st, struct logger *log,
                          const struct session_handler *handler, char *err, size_t errlen);
void server_free(struct server *srv);

/* Starts listening with the current settings. */
enum server_err server_start(struct server *srv, char *err, size_t errlen);
/* Closes every client with 1001, then the listener; done(ud) runs on a later
 * turn of the loop when both are gone (at most a second), also when the
 * server was not running. Several pending stops each get their done. */
void server_stop(struct server *srv, void (*done)(void *ud), void *ud);
/* Re-applies host, port and server.tls to a running server (old: the
 * settings it runs with until now): clients get 1001 and the listener
 * re-binds (errors are logged). Returns 1 when a re-bind started. */
int server_reconfigure(struct server *srv, const struct settings *old);

int server_running(const struct server *srv);
int server_tls(const struct server *srv); /* the listener speaks TLS (https, wss) */
int server_stopping(const struct server *srv);
/* The listener's own ws(s)://HOST:PORT/ws ("" when not running); what
 * clients are told is remote_ws_url's (server.publicUrl first). */
const char *server_url(const struct server *srv);
int server_port(const struct server *srv); /* bound port; 0 when not running */
int64_t server_started_at_ms(const struct server *srv);
int server_connections(const struct server *srv);
int server_authenticating(const struct server *srv);
const struct server_counters *server_counters(const struct server *srv);
/* Closes every session with code and reason; returns how many. */
int server_close_all(struct server *srv, int code, const char *reason);

/* ---- one session ---- */

#define SESSION_ID_LEN 36
/* Returned by session_send* when the message alone is larger than
 * limits.maxQueuedBytes (dropped; the session stays open). */
#define SESSION_TOO_LARGE (-2)

const char *session_id(const struct session *s);
const char *session_remote(const struct session *s);
int64_t session_connected_ms(const struct session *s); /* wall clock */
void session_set_data(struct session *s, void *data);
void *session_data(const struct session *s);

/* Queues a whole message object (owned) and adds its timestamp. Returns 0,
 * -1 when the session is closing or just overflowed (and is now closing),
 * or SESSION_TOO_LARGE. */
int session_send_obj(struct session *s, json_object *msg);
/* {type, id?, data?, timestamp} (data owned, id borrowed). */
int session_send(struct session *s, const char *type, json_object *id, json_object *data);
void session_send_error(struct session *s, json_object *id, const char *code, const char *message);

/* Closes with code/reason once what is queued has gone out (or at once, for
 * 1008 slow consumer). */
void session_close(struct session *s, int code, const char *reason);
int session_is_closing(const struct session *s);
/* Why it closed: the code and reason it was closed with, or 0 and "client
 * closed" when the client closed it. */
int session_close_code(const struct session *s);
const char *session_close_reason(const struct session *s);

/* Authenticated until expiry_wall_ms (the token's exp + leeway): ends the
 * authentication deadline; past the expiry the session is closed 4001. */
void session_set_authed(struct session *s, int64_t expiry_wall_ms);
int session_is_authed(const struct session *s);
int session_dialect(const struct session *s);

/* Socket.IO sessions: an event on the main namespace (payload owned, may be
 * NULL); the answer to a client's ack id (args: an owned array); the
 * CONNECT's answer {sid}; its refusal {message} (then closed 4001). */
int session_sio_emit(struct session *s, const char *event, json_object *payload);
int session_sio_ack(struct session *s, int64_t ack, json_object *args);
void session_sio_connected(struct session *s);
void session_sio_connect_error(struct session *s, const char *message);

#endif
