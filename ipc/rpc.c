/*
 * rpc: owns JSON-RPC 2.0 on the control plane: parsing and checking each
 * framed message, dispatch through the method table under the LSP lifecycle,
 * the incoming requests still waiting for an answer, the requests this side
 * sent (ids, callbacks, deadlines) and the outbound byte queue.
 *
 * Every callback may call back into this rpc (answer, notify, send or forget
 * a request), so no list is walked across a callback without protection: an
 * entry is unlinked before its callback runs, and walks over the outgoing
 * list go through cursors that unlinking keeps valid.
 */
#include "ipc/rpc.h"

#include "ipc/framer.h"
#include "ipc/lines.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARSE_DEPTH 64
/* The editor is JavaScript: an integer id outside +-(2^53 - 1) cannot have
 * been meant exactly, and json-c clamps larger ones silently. */
#define MAX_SAFE_ID 9007199254740991LL
/* A drained queue keeps at most this much memory. */
#define OUT_KEEP_CAP  (1024u * 1024)
#define CANCEL_METHOD "$/cancelRequest"

struct rpc_req {
    struct rpc *rpc;
    struct rpc_req *prev, *next;
    json_object *id;    /* own copy: the message it came in is freed after dispatch */
    const char *method; /* the table's name, which outlives the rpc */
    void *data;
    int cancelled;
};

/* A request we sent to the editor. */
struct rpc_call {
    struct rpc_call *prev, *next;
    int64_t id, deadline;
    rpc_response_cb cb;
    void *cbud;
};

/* Position of a walk over the outgoing list, advanced by call_unlink when a
 * callback removes the entry it points at. Cursors nest like the walks. */
struct rpc_cursor {
    struct rpc_call *next;
    struct rpc_cursor *up;
};

struct rpc {
    const struct rpc_method *methods;
    struct rpc_callbacks cb;
    void *ud;
    enum rpc_framing framing;
    struct rpc_framer framer; /* RPC_FRAMING_LSP */
    struct rpc_lines lines;   /* RPC_FRAMING_LINES */
    json_tokener *tok;
    int initialized, shutdown;
    int closing; /* rpc_free is failing the outgoing requests: send no new ones */
    int feeding;
    struct rpc_req *reqs;
    struct rpc_call *calls_head, *calls_tail; /* ascending ids */
    struct rpc_cursor *cursors;
    int64_t next_id;
    char *out;
    size_t out_off, out_len, out_cap;
    uint64_t dropped;
};

static void protocol_error(struct rpc *rpc, const char *message)
{
    if (rpc->cb.protocol_error)
        rpc->cb.protocol_error(rpc, message, rpc->ud);
}

/* ---- outbound queue ---- */

static int out_push(struct rpc *rpc, json_object *msg)
{
    size_t before = rpc->out_len - rpc->out_off, len = 0;
    const char *s = json_object_to_json_string_length(
        msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

    int rc = !s ? -1
             : rpc->framing == RPC_FRAMING_LINES
                 ? rpc_line_encode(&rpc->out, &rpc->out_len, &rpc->out_cap, s, len)
                 : rpc_frame_encode(&rpc->out, &rpc->out_len, &rpc->out_cap, s, len);
    if (rc < 0) {
        protocol_error(rpc, "out of memory queueing a message");
        return -1;
    }
    if (before == 0 && rpc->cb.want_write)
        rpc->cb.want_write(rpc, rpc->ud);
    return 0;
}

/* Adds val under key, taking ownership of val either way. */
static int add(json_object *o, const char *key, json_object *val)
{
    if (json_object_object_add(o, key, val) != 0) {
        json_object_put(val);
        return -1;
    }
    return 0;
}

/* {"jsonrpc":"2.0"}, plus "id" (JSON null when id_owned is NULL) if with_id. */
static json_object *envelope(json_object *id_owned, int with_id)
{
    json_object *o = json_object_new_object();

    if (!o || add(o, "jsonrpc", json_object_new_string("2.0")) < 0) {
        json_object_put(id_owned);
        json_object_put(o);
        return NULL;
    }
    if (with_id && add(o, "id", id_owned) < 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* A request (with_id) or a notification; takes ownership of id and params. */
static json_object *build_call(json_object *id_owned, int with_id, const char *method,
                               json_object *params)
{
    json_object *msg = envelope(id_owned, with_id);

    if (!msg || add(msg, "method", json_object_new_string(method)) < 0) {
        json_object_put(params);
        json_object_put(msg);
        return NULL;
    }
    if (params && add(msg, "params", params) < 0) {
        json_object_put(msg);
        return NULL;
    }
    return msg;
}

static void send_result(struct rpc *rpc, json_object *id_owned, json_object *result)
{
    json_object *msg = envelope(id_owned, 1);

    if (!msg)
        json_object_put(result);
    if (msg && add(msg, "result", result) == 0)
        out_push(rpc, msg);
    else
        protocol_error(rpc, "out of memory building a response");
    json_object_put(msg);
}

static json_object *error_object(int code, const char *message, json_object *data)
{
    json_object *err = json_object_new_object();

    if (!err || add(err, "code", json_object_new_int(code)) < 0 ||
        add(err, "message", json_object_new_string(message ? message : "")) < 0) {
        json_object_put(err);
        json_object_put(data);
        return NULL;
    }
    if (data && add(err, "data", data) < 0) {
        json_object_put(err);
        return NULL;
    }
    return err;
}

static void send_error(struct rpc *rpc, json_object *id_owned, int code, const char *message,
                       json_object *data)
{
    json_object *err = error_object(code, message, data);
    json_object *msg = NULL;

    if (err)
        msg = envelope(id_owned, 1);
    else
        json_object_put(id_owned);
    if (!msg)
        json_object_put(err);
    if (msg && add(msg, "error", err) == 0)
        out_push(rpc, msg);
    else
        protocol_error(rpc, "out of memory building an error response");
    json_object_put(msg);
}

/* ---- ids ---- */

static int valid_id(json_object *id)
{
    int64_t v;

    if (json_object_is_type(id, json_type_string))
        return 1;
    if (!json_object_is_type(id, json_type_int))
        return 0;
    v = json_object_get_int64(id);
    return v >= -MAX_SAFE_ID && v <= MAX_SAFE_ID;
}

static json_object *copy_id(json_object *id)
{
    if (json_object_is_type(id, json_type_string))
        return json_object_new_string_len(json_object_get_string(id),
                                          json_object_get_string_len(id));
    return json_object_new_int64(json_object_get_int64(id));
}

static int same_id(json_object *a, json_object *b)
{
    if (json_object_is_type(a, json_type_string) && json_object_is_type(b, json_type_string))
        return json_object_get_string_len(a) == json_object_get_string_len(b) &&
               memcmp(json_object_get_string(a), json_object_get_string(b),
                      (size_t)json_object_get_string_len(a)) == 0;
    if (json_object_is_type(a, json_type_int) && json_object_is_type(b, json_type_int))
        return json_object_get_int64(a) == json_object_get_int64(b);
    return 0;
}

/* Compares a JSON string (which may hold NULs) with a C string. */
static int str_is(json_object *s, const char *lit)
{
    size_t n = strlen(lit);

    return json_object_is_type(s, json_type_string) && (size_t)json_object_get_string_len(s) == n &&
           memcmp(json_object_get_string(s), lit, n) == 0;
}

/* ---- incoming requests ---- */

static void req_unlink(struct rpc_req *req)
{
    struct rpc *rpc = req->rpc;

    if (req->prev)
        req->prev->next = req->next;
    else
        rpc->reqs = req->next;
    if (req->next)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
}

static void req_free(struct rpc_req *req)
{
    json_object_put(req->id);
    free(req);
}

void rpc_respond(struct rpc_req *req, json_object *result)
{
    struct rpc *rpc;

    if (!req) {
        json_object_put(result);
        return;
    }
    rpc = req->rpc;
    req_unlink(req);
    send_result(rpc, req->id, result);
    req->id = NULL;
    req_free(req);
}

void rpc_respond_error(struct rpc_req *req, int code, const char *message, json_object *data)
{
    struct rpc *rpc;

    if (!req) {
        json_object_put(data);
        return;
    }
    rpc = req->rpc;
    req_unlink(req);
    send_error(rpc, req->id, code, message, data);
    req->id = NULL;
    req_free(req);
}

const char *rpc_req_method(const struct rpc_req *req)
{
    return req ? req->method : NULL;
}

void rpc_req_set_data(struct rpc_req *req, void *data)
{
    if (req)
        req->data = data;
}

void *rpc_req_data(const struct rpc_req *req)
{
    return req ? req->data : NULL;
}

/* ---- outgoing requests ---- */

static void call_unlink(struct rpc *rpc, struct rpc_call *c)
{
    struct rpc_cursor *cur;

    for (cur = rpc->cursors; cur; cur = cur->up)
        if (cur->next == c)
            cur->next = c->next;
    if (c->prev)
        c->prev->next = c->next;
    else
        rpc->calls_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        rpc->calls_tail = c->prev;
}

static struct rpc_call *call_find(struct rpc *rpc, int64_t id)
{
    struct rpc_call *c;

    for (c = rpc->calls_head; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

/* Unlinks and frees before the callback, which may then do anything. */
static void call_finish(struct rpc *rpc, struct rpc_call *c, json_object *result,
                        const struct rpc_error *err)
{
    rpc_response_cb cb = c->cb;
    void *cbud = c->cbud;

    call_unlink(rpc, c);
    free(c);
    if (cb)
        cb(cbud, result, err);
}

/* Ends, with `code`, every request sent so far whose deadline is <= before;
 * those the callbacks send are left alone (higher ids, at the tail). */
static void calls_end(struct rpc *rpc, int64_t before, int code, const char *message)
{
    int64_t last = rpc->next_id - 1;
    struct rpc_error err = {code, message, NULL};
    struct rpc_cursor cur = {rpc->calls_head, rpc->cursors};

    rpc->cursors = &cur;
    while (cur.next && cur.next->id <= last) {
        struct rpc_call *c = cur.next;

        cur.next = c->next;
        if (c->deadline <= before)
            call_finish(rpc, c, NULL, &err);
    }
    rpc->cursors = cur.up;
}

int64_t rpc_request(struct rpc *rpc, const char *method, json_object *params, int64_t now_ms,
                    int64_t timeout_ms, rpc_response_cb cb, void *cbud)
{
    struct rpc_call *c;
    json_object *msg;
    int64_t id;
    int rc;

    if (!rpc || !method || rpc->closing || timeout_ms < 0 ||
        (params && !json_object_is_type(params, json_type_object) &&
         !json_object_is_type(params, json_type_array))) {
        json_object_put(params);
        return -1;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        json_object_put(params);
        return -1;
    }
    id = rpc->next_id;
    msg = build_call(json_object_new_int64(id), 1, method, params);
    if (!msg) {
        free(c);
        return -1;
    }
    /* Registered before queueing: want_write may already act on it. */
    rpc->next_id++;
    c->id = id;
    c->deadline = now_ms > INT64_MAX - timeout_ms ? INT64_MAX : now_ms + timeout_ms;
    c->cb = cb;
    c->cbud = cbud;
    c->prev = rpc->calls_tail;
    if (rpc->calls_tail)
        rpc->calls_tail->next = c;
    else
        rpc->calls_head = c;
    rpc->calls_tail = c;
    rc = out_push(rpc, msg);
    json_object_put(msg);
    if (rc < 0) {
        /* Looked up again: the protocol_error callback may have ended it. */
        c = call_find(rpc, id);
        if (c) {
            call_unlink(rpc, c);
            free(c);
        }
        return -1;
    }
    return id;
}

int rpc_forget(struct rpc *rpc, int64_t id)
{
    struct rpc_call *c = call_find(rpc, id);
    json_object *params;

    if (!c)
        return -1;
    call_unlink(rpc, c);
    free(c);
    params = json_object_new_object();
    if (params && add(params, "id", json_object_new_int64(id)) == 0)
        rpc_notify(rpc, CANCEL_METHOD, params);
    else
        json_object_put(params);
    return 0;
}

int64_t rpc_next_deadline(const struct rpc *rpc)
{
    const struct rpc_call *c;
    int64_t best = -1;

    for (c = rpc->calls_head; c; c = c->next)
        if (best < 0 || c->deadline < best)
            best = c->deadline;
    return best;
}

void rpc_expire(struct rpc *rpc, int64_t now_ms)
{
    calls_end(rpc, now_ms, RPC_REQUEST_TIMEOUT, "the editor did not answer in time");
}

void rpc_fail_outgoing(struct rpc *rpc, int code, const char *message)
{
    calls_end(rpc, INT64_MAX, code, message ? message : "request failed");
}

/* A response from the editor to one of our requests. Nothing is ever sent
 * back: ids name requests per direction, so echoing this one would answer
 * an unrelated request of the editor's. */
static void handle_response(struct rpc *rpc, json_object *msg)
{
    json_object *id = NULL, *result = NULL, *error = NULL, *v = NULL, *code = NULL, *text = NULL;
    int has_result = json_object_object_get_ex(msg, "result", &result);
    int has_error = json_object_object_get_ex(msg, "error", &error);
    struct rpc_error err = {RPC_INTERNAL_ERROR, "malformed response from the editor", NULL};
    struct rpc_call *c;
    int64_t n;

    if (!json_object_object_get_ex(msg, "id", &id) || !json_object_is_type(id, json_type_int)) {
        protocol_error(rpc, "response without an integer id");
        return;
    }
    c = call_find(rpc, json_object_get_int64(id));
    if (!c) {
        protocol_error(rpc, "response to an unknown request id");
        return;
    }
    if (!json_object_object_get_ex(msg, "jsonrpc", &v) || !str_is(v, "2.0") ||
        (has_result && has_error)) {
        protocol_error(rpc, err.message);
        call_finish(rpc, c, NULL, &err);
        return;
    }
    if (!has_error) {
        call_finish(rpc, c, result, NULL);
        return;
    }
    if (!json_object_is_type(error, json_type_object) ||
        !json_object_object_get_ex(error, "code", &code) ||
        !json_object_is_type(code, json_type_int) ||
        !json_object_object_get_ex(error, "message", &text) ||
        !json_object_is_type(text, json_type_string)) {
        protocol_error(rpc, err.message);
        call_finish(rpc, c, NULL, &err);
        return;
    }
    n = json_object_get_int64(code);
    if (n < INT_MIN || n > INT_MAX) {
        protocol_error(rpc, err.message);
        call_finish(rpc, c, NULL, &err);
        return;
    }
    err.code = (int)n;
    err.message = json_object_get_string(text);
    err.data = NULL;
    json_object_object_get_ex(error, "data", &err.data);
    call_finish(rpc, c, NULL, &err);
}

/* ---- dispatch ---- */

static const struct rpc_method *lookup(const struct rpc *rpc, const char *name, size_t len)
{
    const struct rpc_method *m;

    for (m = rpc->methods; m && m->name; m++)
        if (strlen(m->name) == len && memcmp(m->name, name, len) == 0)
            return m;
    return NULL;
}

/* -32600 (or -32700), answered with the id when it could be read. */
static void reject(struct rpc *rpc, json_object *id, int code, const char *message)
{
    protocol_error(rpc, message);
    send_error(rpc, id ? copy_id(id) : NULL, code, message, NULL);
}

static void handle_cancel(struct rpc *rpc, json_object *params)
{
    json_object *id = NULL;

    if (!json_object_is_type(params, json_type_object) ||
        !json_object_object_get_ex(params, "id", &id) || !valid_id(id)) {
        protocol_error(rpc, CANCEL_METHOD " without a usable id");
        return;
    }
    /* Rescan after each callback: it may have answered any request. The
     * mark keeps one request from being cancelled twice. */
    for (;;) {
        struct rpc_req *r;

        for (r = rpc->reqs; r; r = r->next)
            if (!r->cancelled && same_id(r->id, id))
                break;
        if (!r)
            return;
        r->cancelled = 1;
        if (rpc->cb.cancelled)
            rpc->cb.cancelled(rpc, r, rpc->ud);
    }
}

static void method_not_found(struct rpc *rpc, json_object *id, const char *name, size_t len)
{
    char msg[160];

    /* The name came through the UTF-8 check whole; cutting it could break
     * a character, so it is quoted entirely or not at all. */
    if (len <= 100 && !memchr(name, '\0', len))
        snprintf(msg, sizeof(msg), "method not found: %.*s", (int)len, name);
    else
        snprintf(msg, sizeof(msg), "method not found");
    send_error(rpc, copy_id(id), RPC_METHOD_NOT_FOUND, msg, NULL);
}

static void dispatch_request(struct rpc *rpc, json_object *id, const char *name, size_t len,
                             json_object *params)
{
    const struct rpc_method *m = lookup(rpc, name, len);
    struct rpc_req *req;

    if (rpc->shutdown) {
        send_error(rpc, copy_id(id), RPC_INVALID_REQUEST, "shutdown in progress", NULL);
        return;
    }
    if (!rpc->initialized && !(m && (m->flags & RPC_BEFORE_INIT))) {
        send_error(rpc, copy_id(id), RPC_SERVER_NOT_INITIALIZED, "server not initialized", NULL);
        return;
    }
    if (!m || !m->fn) {
        method_not_found(rpc, id, name, len);
        return;
    }
    if (m->flags & RPC_NOTIFICATION) {
        reject(rpc, id, RPC_INVALID_REQUEST, "notification method sent as a request");
        return;
    }
    req = calloc(1, sizeof(*req));
    if (req)
        req->id = copy_id(id);
    if (!req || !req->id) {
        free(req);
        send_error(rpc, copy_id(id), RPC_INTERNAL_ERROR, "out of memory", NULL);
        return;
    }
    req->rpc = rpc;
    req->method = m->name;
    req->next = rpc->reqs;
    if (rpc->reqs)
        rpc->reqs->prev = req;
    rpc->reqs = req;
    /* req may be answered, and freed, before this returns. */
    m->fn(rpc, req, params, rpc->ud);
}

static void dispatch_notification(struct rpc *rpc, const char *name, size_t len,
                                  json_object *params)
{
    const struct rpc_method *m = lookup(rpc, name, len);

    /* Unknown ones ($/ or not) are optional by LSP rules: silence. */
    if (!m || !m->fn)
        return;
    if (!(m->flags & RPC_NOTIFICATION)) {
        protocol_error(rpc, "request method sent as a notification: ignored");
        return;
    }
    if (!rpc->initialized && !(m->flags & RPC_BEFORE_INIT))
        return;
    m->fn(rpc, NULL, params, rpc->ud);
}

static void handle_message(struct rpc *rpc, json_object *msg)
{
    json_object *id = NULL, *method = NULL, *params = NULL, *v = NULL;
    int has_id, has_method, has_params;
    json_object *reply_id;
    const char *name;
    size_t len;

    if (json_object_is_type(msg, json_type_array)) {
        reject(rpc, NULL, RPC_INVALID_REQUEST, "batches are not supported");
        return;
    }
    if (!json_object_is_type(msg, json_type_object)) {
        reject(rpc, NULL, RPC_INVALID_REQUEST, "message is not an object");
        return;
    }
    has_id = json_object_object_get_ex(msg, "id", &id);
    has_method = json_object_object_get_ex(msg, "method", &method);
    has_params = json_object_object_get_ex(msg, "params", &params);
    if (!has_method && (json_object_object_get_ex(msg, "result", NULL) ||
                        json_object_object_get_ex(msg, "error", NULL))) {
        handle_response(rpc, msg);
        return;
    }
    reply_id = has_id && valid_id(id) ? id : NULL;
    if (!json_object_object_get_ex(msg, "jsonrpc", &v) || !str_is(v, "2.0")) {
        reject(rpc, reply_id, RPC_INVALID_REQUEST, "jsonrpc must be \"2.0\"");
        return;
    }
    if (has_id && !reply_id) {
        reject(rpc, NULL, RPC_INVALID_REQUEST, "id must be an integer or a string");
        return;
    }
    if (!json_object_is_type(method, json_type_string)) {
        reject(rpc, reply_id, RPC_INVALID_REQUEST, "method must be a string");
        return;
    }
    if (has_params && !json_object_is_type(params, json_type_object) &&
        !json_object_is_type(params, json_type_array)) {
        reject(rpc, reply_id, RPC_INVALID_REQUEST, "params must be an object or an array");
        return;
    }
    name = json_object_get_string(method);
    len = (size_t)json_object_get_string_len(method);
    if (str_is(method, CANCEL_METHOD)) {
        if (has_id)
            reject(rpc, id, RPC_INVALID_REQUEST, CANCEL_METHOD " is a notification");
        else
            handle_cancel(rpc, params);
        return;
    }
    if (has_id)
        dispatch_request(rpc, id, name, len, params);
    else
        dispatch_notification(rpc, name, len, params);
}

/* Parses exactly len bytes. Returns 0 with *out set (NULL for JSON null),
 * or -1 with *why set. */
static int parse_body(struct rpc *rpc, const char *body, size_t len, json_object **out,
                      const char **why)
{
    json_tokener *tok = rpc->tok;
    enum json_tokener_error e;
    json_object *o;

    *out = NULL;
    if (len > INT_MAX) {
        *why = "message too large to parse";
        return -1;
    }
    json_tokener_reset(tok);
    o = json_tokener_parse_ex(tok, body, (int)len);
    e = json_tokener_get_error(tok);
    if (e == json_tokener_continue) {
        /* A bare scalar ("1", "null") is only complete once something
         * follows it; all len bytes were consumed to get here. */
        o = json_tokener_parse_ex(tok, " ", 1);
        e = json_tokener_get_error(tok);
        if (e == json_tokener_continue) {
            *why = "unexpected end of data";
            return -1;
        }
    } else if (e == json_tokener_success && json_tokener_get_parse_end(tok) != len) {
        /* json-c stops at a NUL and calls what came before a success. */
        json_object_put(o);
        *why = "unexpected data after the JSON value";
        return -1;
    }
    if (e != json_tokener_success) {
        json_object_put(o);
        *why = json_tokener_error_desc(e);
        return -1;
    }
    *out = o;
    return 0;
}

static void on_frame(void *ud, const char *body, size_t len)
{
    struct rpc *rpc = ud;
    json_object *msg;
    const char *why = NULL;
    char text[128];

    if (parse_body(rpc, body, len, &msg, &why) < 0) {
        snprintf(text, sizeof(text), "parse error: %s", why);
        reject(rpc, NULL, RPC_PARSE_ERROR, text);
        return;
    }
    handle_message(rpc, msg);
    json_object_put(msg);
}

static void on_frame_error(void *ud, enum rpc_frame_error code, const char *message)
{
    struct rpc *rpc = ud;

    reject(rpc, NULL, RPC_INVALID_REQUEST, message);
}

static void on_line_error(void *ud, const char *message)
{
    struct rpc *rpc = ud;

    reject(rpc, NULL, RPC_INVALID_REQUEST, message);
}

/* ---- lifetime and the rest of the API ---- */

struct rpc *rpc_new(const struct rpc_method *methods, const struct rpc_callbacks *cb, void *ud,
                    size_t max_message_bytes)
{
    struct rpc *rpc = calloc(1, sizeof(*rpc));

    if (!rpc)
        return NULL;
    rpc->tok = json_tokener_new_ex(PARSE_DEPTH);
    if (!rpc->tok) {
        free(rpc);
        return NULL;
    }
    json_tokener_set_flags(rpc->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    rpc->methods = methods;
    if (cb)
        rpc->cb = *cb;
    rpc->ud = ud;
    rpc->next_id = 1;
    rpc_framer_init(&rpc->framer, max_message_bytes);
    rpc_lines_init(&rpc->lines, max_message_bytes);
    return rpc;
}

struct rpc *rpc_new_framed(const struct rpc_method *methods, const struct rpc_callbacks *cb,
                           void *ud, size_t max_message_bytes, enum rpc_framing framing)
{
    struct rpc *rpc = rpc_new(methods, cb, ud, max_message_bytes);
    if (rpc)
        rpc->framing = framing;
    return rpc;
}

void rpc_free(struct rpc *rpc)
{
    if (!rpc)
        return;
    rpc->closing = 1;
    rpc_fail_outgoing(rpc, RPC_REQUEST_CANCELLED, "the connection is closing");
    while (rpc->reqs) {
        struct rpc_req *r = rpc->reqs;

        req_unlink(r);
        req_free(r);
    }
    json_tokener_free(rpc->tok);
    rpc_framer_free(&rpc->framer);
    rpc_lines_free(&rpc->lines);
    free(rpc->out);
    free(rpc);
}

void rpc_feed(struct rpc *rpc, const char *data, size_t len)
{
    if (rpc->feeding) {
        /* The framer is in the middle of a frame: nesting would corrupt it. */
        protocol_error(rpc, "rpc_feed called from inside a handler: input dropped");
        return;
    }
    rpc->feeding = 1;
    int rc = rpc->framing == RPC_FRAMING_LINES
                 ? rpc_lines_feed(&rpc->lines, data, len, on_frame, on_line_error, rpc)
                 : rpc_framer_feed(&rpc->framer, data, len, on_frame, on_frame_error, rpc);
    if (rc < 0)
        reject(rpc, NULL, RPC_INTERNAL_ERROR, "out of memory reading a message");
    rpc->feeding = 0;
}

void rpc_set_initialized(struct rpc *rpc, int on)
{
    rpc->initialized = on != 0;
}

void rpc_set_shutdown(struct rpc *rpc, int on)
{
    rpc->shutdown = on != 0;
}

int rpc_is_shutdown(const struct rpc *rpc)
{
    return rpc->shutdown;
}

void rpc_notify(struct rpc *rpc, const char *method, json_object *params)
{
    json_object *msg;

    if (!method) {
        json_object_put(params);
        return;
    }
    if (rpc_out_pending(rpc) >= RPC_OUT_SOFT_CAP) {
        /* The editor is not reading: drop news, never answers. */
        rpc->dropped++;
        json_object_put(params);
        return;
    }
    msg = build_call(NULL, 0, method, params);
    if (msg)
        out_push(rpc, msg);
    else
        protocol_error(rpc, "out of memory building a notification");
    json_object_put(msg);
}

const char *rpc_out_peek(const struct rpc *rpc, size_t *len)
{
    *len = rpc->out_len - rpc->out_off;
    return *len ? rpc->out + rpc->out_off : "";
}

void rpc_out_consume(struct rpc *rpc, size_t n)
{
    size_t pending = rpc->out_len - rpc->out_off;

    if (n > pending)
        n = pending;
    rpc->out_off += n;
    if (rpc->out_off == rpc->out_len) {
        rpc->out_off = rpc->out_len = 0;
        if (rpc->out_cap > OUT_KEEP_CAP) {
            free(rpc->out);
            rpc->out = NULL;
            rpc->out_cap = 0;
        }
    } else if (rpc->out_off > rpc->out_len / 2) {
        /* Less than what was consumed is moved: amortised O(1) per byte. */
        memmove(rpc->out, rpc->out + rpc->out_off, rpc->out_len - rpc->out_off);
        rpc->out_len -= rpc->out_off;
        rpc->out_off = 0;
    }
}

size_t rpc_out_pending(const struct rpc *rpc)
{
    return rpc->out_len - rpc->out_off;
}

uint64_t rpc_out_dropped(const struct rpc *rpc)
{
    return rpc->dropped;
}
