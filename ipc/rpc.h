/*
 * rpc: JSON-RPC 2.0 over the framer, for the editor control plane.
 *
 * Owns: the incoming framer, dispatch through a method table with the LSP
 * lifecycle (-32002 before `initialize`, -32600 after `shutdown`), the
 * standard error codes, `$/cancelRequest`, requests this side sends to the
 * editor (ids, callbacks, deadlines), and the outbound byte queue that the
 * caller drains into stdout whenever it is writable. Knows nothing of file
 * descriptors or event loops: the caller feeds bytes in, drains bytes out,
 * and calls rpc_expire() at rpc_next_deadline().
 */
#ifndef COMPANION_IPC_RPC_H
#define COMPANION_IPC_RPC_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define RPC_PARSE_ERROR            -32700
#define RPC_INVALID_REQUEST        -32600
#define RPC_METHOD_NOT_FOUND       -32601
#define RPC_INVALID_PARAMS         -32602
#define RPC_INTERNAL_ERROR         -32603
#define RPC_SERVER_NOT_INITIALIZED -32002
#define RPC_SERVER_ERROR           -32001 /* contract: the port is taken */
#define RPC_REQUEST_CANCELLED      -32800
#define RPC_REQUEST_TIMEOUT        -32803 /* our outgoing request got no answer in time */

/* Notifications are dropped (and counted) once this many bytes wait for the
 * editor to read stdout; responses are always queued. */
#define RPC_OUT_SOFT_CAP (1u * 1024 * 1024)

struct rpc;
struct rpc_req; /* an incoming request waiting for its answer */

enum rpc_method_flags {
    RPC_NOTIFICATION = 1 << 0, /* the method is a notification (else a request) */
    RPC_BEFORE_INIT = 1 << 1,  /* allowed before `initialize` has succeeded */
};

/* Request handler: must answer `req` exactly once, now or later, with
 * rpc_respond or rpc_respond_error. Notification handler: req is NULL.
 * params (NULL when absent) is borrowed for the call: json_object_get it to
 * keep it for async work. */
typedef void (*rpc_handler)(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud);

struct rpc_method {
    const char *name;
    unsigned flags;
    rpc_handler fn;
};

struct rpc_callbacks {
    /* The outbound queue went from empty to non-empty: ask for writability. */
    void (*want_write)(struct rpc *rpc, void *ud);
    /* $/cancelRequest named a request still waiting: the owner may stop the
     * work and answer it with RPC_REQUEST_CANCELLED. May be NULL. */
    void (*cancelled)(struct rpc *rpc, struct rpc_req *req, void *ud);
    /* A frame or message could not be used (for the log). May be NULL. */
    void (*protocol_error)(struct rpc *rpc, const char *message, void *ud);
};

struct rpc_error {
    int code;
    const char *message;
    json_object *data; /* may be NULL; borrowed */
};

/* Called once per outgoing request: with result (err NULL; result is NULL
 * too for a JSON null result) or with err (result NULL): an error response,
 * RPC_INTERNAL_ERROR for a malformed response, RPC_REQUEST_TIMEOUT, or
 * RPC_REQUEST_CANCELLED when rpc_free/rpc_fail_outgoing ends it. Borrowed. */
typedef void (*rpc_response_cb)(void *cbud, json_object *result, const struct rpc_error *err);

/* `methods` ends with a {NULL} entry and must outlive the rpc. */
struct rpc *rpc_new(const struct rpc_method *methods, const struct rpc_callbacks *cb, void *ud,
                    size_t max_message_bytes);

/* How messages are framed on the wire. */
enum rpc_framing {
    RPC_FRAMING_LSP = 0, /* Content-Length headers (the editor, ipc/framer.h) */
    RPC_FRAMING_LINES,   /* one message per line (ACP agents, ipc/lines.h) */
};
/* rpc_new with another framing. */
struct rpc *rpc_new_framed(const struct rpc_method *methods, const struct rpc_callbacks *cb,
                           void *ud, size_t max_message_bytes, enum rpc_framing framing);
/* Fails every outgoing request (callbacks run; they cannot send new ones) and
 * frees incoming requests still unanswered. Not from inside a handler or
 * callback of this rpc. */
void rpc_free(struct rpc *rpc);

/* Bytes read from stdin. Dispatches every complete message. Not from inside
 * a handler or callback (such input is dropped and reported). */
void rpc_feed(struct rpc *rpc, const char *data, size_t len);

/* Lifecycle, set by the owner's `initialize` / `shutdown` handlers. */
void rpc_set_initialized(struct rpc *rpc, int on);
void rpc_set_shutdown(struct rpc *rpc, int on);
int rpc_is_shutdown(const struct rpc *rpc);

/* Answers; take ownership of result/data (NULL result sends JSON null). */
void rpc_respond(struct rpc_req *req, json_object *result);
void rpc_respond_error(struct rpc_req *req, int code, const char *message, json_object *data);
const char *rpc_req_method(const struct rpc_req *req);
/* Owner data attached to a pending request (for async work). */
void rpc_req_set_data(struct rpc_req *req, void *data);
void *rpc_req_data(const struct rpc_req *req);

/* Sends a notification; takes ownership of params (may be NULL). */
void rpc_notify(struct rpc *rpc, const char *method, json_object *params);

/* Sends a request to the editor; takes ownership of params (NULL, an object
 * or an array). Its answer, an error, or a timeout at now_ms + timeout_ms
 * reaches cb exactly once. Never dropped at the soft cap. Returns the id
 * (> 0), or -1 (bad arguments, timeout_ms < 0, inside rpc_free, no memory):
 * cb is then never called. */
int64_t rpc_request(struct rpc *rpc, const char *method, json_object *params, int64_t now_ms,
                    int64_t timeout_ms, rpc_response_cb cb, void *cbud);
/* Drops interest in an outgoing request (sends $/cancelRequest); its callback
 * is never called. Returns 0, or -1 when the id is unknown. */
int rpc_forget(struct rpc *rpc, int64_t id);
/* Earliest deadline of the outgoing requests in ms, or -1 when none. */
int64_t rpc_next_deadline(const struct rpc *rpc);
/* Times out every outgoing request whose deadline is <= now_ms. */
void rpc_expire(struct rpc *rpc, int64_t now_ms);
/* Ends every outgoing request with `code` (the editor is gone). */
void rpc_fail_outgoing(struct rpc *rpc, int code, const char *message);

/* The outbound queue: peek, write what the fd takes, consume that much. */
const char *rpc_out_peek(const struct rpc *rpc, size_t *len);
void rpc_out_consume(struct rpc *rpc, size_t n);
size_t rpc_out_pending(const struct rpc *rpc);
uint64_t rpc_out_dropped(const struct rpc *rpc); /* notifications dropped at the soft cap */

#endif
