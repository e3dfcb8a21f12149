/*
 * test_rpc: JSON-RPC 2.0 over the framer as the editor sees it: framed
 * requests go in, and what comes out of the outbound queue is framed,
 * parsed and checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ipc/framer.h"
#include "ipc/rpc.h"

#define MAX_HELD 8

struct ctx {
    struct rpc *rpc;
    int want_write;
    int protocol_errors;
    int cancelled;
    struct rpc_req *cancelled_req;
    int answer_on_cancel;
    struct rpc_req *held[MAX_HELD];
    size_t nheld;
    int requests; /* request handler calls */
    int notes;
    char note_params[256];
    int exits;
};

/* ---- handlers ---- */

static void h_initialize(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct ctx *c = ud;
    json_object *r = json_object_new_object();

    c->requests++;
    json_object_object_add(r, "ok", json_object_new_boolean(1));
    rpc_respond(req, r);
}

static void h_echo(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct ctx *c = ud;

    c->requests++;
    assert_string_equal(rpc_req_method(req), "echo");
    rpc_respond(req, json_object_get(params));
}

static void h_null(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct ctx *c = ud;

    c->requests++;
    rpc_respond(req, NULL);
}

static void h_fail(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct ctx *c = ud;
    json_object *data = json_object_new_object();

    c->requests++;
    json_object_object_add(data, "key", json_object_new_string("server.port"));
    rpc_respond_error(req, RPC_INVALID_PARAMS, "bad setting", data);
}

/* Answers later: the request stays pending. */
static void h_async(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct ctx *c = ud;

    c->requests++;
    assert_true(c->nheld < MAX_HELD);
    rpc_req_set_data(req, c);
    c->held[c->nheld++] = req;
}

static void h_note(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct ctx *c = ud;

    assert_null(req);
    c->notes++;
    snprintf(c->note_params, sizeof(c->note_params), "%s",
             params ? json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN) : "(none)");
}

static void h_exit(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct ctx *c = ud;

    assert_null(req);
    c->exits++;
}

/* Feeds input from inside a handler: refused, the framer is mid-frame. */
static void h_reenter(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    struct ctx *c = ud;
    const char *inner =
        "Content-Length: 41\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"null\"}";

    c->requests++;
    rpc_feed(rpc, inner, strlen(inner));
    rpc_respond(req, NULL);
}

static const struct rpc_method METHODS[] = {
    {"reenter", 0, h_reenter},
    {"initialize", RPC_BEFORE_INIT, h_initialize},
    {"echo", 0, h_echo},
    {"null", 0, h_null},
    {"fail", 0, h_fail},
    {"async", 0, h_async},
    {"note", RPC_NOTIFICATION, h_note},
    {"exit", RPC_NOTIFICATION | RPC_BEFORE_INIT, h_exit},
    {NULL, 0, NULL},
};

/* ---- callbacks ---- */

static void cb_want_write(struct rpc *rpc, void *ud)
{
    struct ctx *c = ud;
    size_t len;

    c->want_write++;
    /* Called once the bytes are there to be written. */
    rpc_out_peek(rpc, &len);
    assert_true(len > 0);
}

static void cb_protocol_error(struct rpc *rpc, const char *message, void *ud)
{
    struct ctx *c = ud;

    assert_non_null(message);
    c->protocol_errors++;
}

static void forget_held(struct ctx *c, struct rpc_req *req)
{
    size_t i;

    for (i = 0; i < c->nheld; i++) {
        if (c->held[i] == req) {
            c->held[i] = c->held[--c->nheld];
            return;
        }
    }
    fail_msg("request not held");
}

static void cb_cancelled(struct rpc *rpc, struct rpc_req *req, void *ud)
{
    struct ctx *c = ud;

    c->cancelled++;
    c->cancelled_req = req;
    assert_ptr_equal(rpc_req_data(req), c);
    if (c->answer_on_cancel) {
        forget_held(c, req);
        rpc_respond_error(req, RPC_REQUEST_CANCELLED, "cancelled", NULL);
    }
}

static const struct rpc_callbacks CALLBACKS = {cb_want_write, cb_cancelled, cb_protocol_error};

static void ctx_init(struct ctx *c, int initialized, size_t max)
{
    memset(c, 0, sizeof(*c));
    c->rpc = rpc_new(METHODS, &CALLBACKS, c, max);
    assert_non_null(c->rpc);
    rpc_set_initialized(c->rpc, initialized);
}

/* ---- wire helpers ---- */

static void send_raw(struct ctx *c, const char *body, size_t len)
{
    char *buf = NULL;
    size_t blen = 0, cap = 0;

    assert_int_equal(rpc_frame_encode(&buf, &blen, &cap, body, len), 0);
    rpc_feed(c->rpc, buf, blen);
    free(buf);
}

static void send_msg(struct ctx *c, const char *body)
{
    send_raw(c, body, strlen(body));
}

struct out_sink {
    json_object *msgs;
    int frame_errors;
};

static void out_frame(void *ud, const char *body, size_t len)
{
    struct out_sink *s = ud;
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *o;

    assert_non_null(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, body, (int)len);
    assert_int_equal(json_tokener_get_error(tok), json_tokener_success);
    assert_int_equal(json_tokener_get_parse_end(tok), len);
    json_tokener_free(tok);
    assert_true(json_object_is_type(o, json_type_object));
    json_object_array_add(s->msgs, o);
}

static void out_error(void *ud, enum rpc_frame_error code, const char *message)
{
    struct out_sink *s = ud;

    s->frame_errors++;
}

/* Everything queued so far, parsed; the queue is emptied. */
static json_object *drain(struct ctx *c)
{
    struct out_sink s = {json_object_new_array(), 0};
    struct rpc_framer f;
    const char *p;
    size_t len;

    rpc_framer_init(&f, 64u * 1024 * 1024);
    p = rpc_out_peek(c->rpc, &len);
    assert_int_equal(rpc_framer_feed(&f, p, len, out_frame, out_error, &s), 0);
    assert_int_equal(s.frame_errors, 0);
    /* Nothing half-framed left behind. */
    assert_int_equal(f.len, 0);
    rpc_framer_free(&f);
    rpc_out_consume(c->rpc, len);
    assert_int_equal(rpc_out_pending(c->rpc), 0);
    return s.msgs;
}

static void assert_silent(struct ctx *c)
{
    assert_int_equal(rpc_out_pending(c->rpc), 0);
}

/* The only message queued. */
static json_object *one(struct ctx *c)
{
    json_object *all = drain(c), *m;

    assert_int_equal(json_object_array_length(all), 1);
    m = json_object_get(json_object_array_get_idx(all, 0));
    json_object_put(all);
    return m;
}

static json_object *field(json_object *o, const char *key)
{
    json_object *v = NULL;

    assert_true(json_object_object_get_ex(o, key, &v));
    return v;
}

static int has(json_object *o, const char *key)
{
    return json_object_object_get_ex(o, key, NULL);
}

static void assert_v2(json_object *m)
{
    assert_string_equal(json_object_get_string(field(m, "jsonrpc")), "2.0");
}

static void assert_id_int(json_object *m, int64_t id)
{
    json_object *v = field(m, "id");

    assert_true(json_object_is_type(v, json_type_int));
    assert_int_equal(json_object_get_int64(v), id);
}

static void assert_id_null(json_object *m)
{
    assert_null(field(m, "id"));
}

static void assert_id_str(json_object *m, const char *id)
{
    json_object *v = field(m, "id");

    assert_true(json_object_is_type(v, json_type_string));
    assert_string_equal(json_object_get_string(v), id);
}

static void assert_error_code(json_object *m, int code)
{
    json_object *e = field(m, "error");

    assert_v2(m);
    assert_false(has(m, "result"));
    assert_true(json_object_is_type(e, json_type_object));
    assert_int_equal(json_object_get_int(field(e, "code")), code);
    assert_true(json_object_is_type(field(e, "message"), json_type_string));
}

static const char *error_message(json_object *m)
{
    return json_object_get_string(field(field(m, "error"), "message"));
}

/* ---- outgoing request callbacks ---- */

struct reply {
    int calls;
    int ok;
    char result[256];
    int code;
    char message[128];
    char data[128];
};

static void on_reply(void *cbud, json_object *result, const struct rpc_error *err)
{
    struct reply *r = cbud;

    r->calls++;
    if (err) {
        assert_null(result);
        r->ok = 0;
        r->code = err->code;
        snprintf(r->message, sizeof(r->message), "%s", err->message ? err->message : "");
        snprintf(r->data, sizeof(r->data), "%s",
                 err->data ? json_object_to_json_string_ext(err->data, JSON_C_TO_STRING_PLAIN)
                           : "");
    } else {
        r->ok = 1;
        snprintf(r->result, sizeof(r->result), "%s",
                 json_object_to_json_string_ext(result, JSON_C_TO_STRING_PLAIN));
    }
}

/* ---- tests: requests ---- */

static void test_request_int_id(void **state)
{
    struct ctx c;
    const char *p;
    size_t len;
    const char *want = "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"x\":[1,\"a/b\",\"\xc3\xa9\"]}}";
    char frame[128];

    ctx_init(&c, 1, 1 << 20);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"echo\",\"params\":{\"x\":[1,\"a/"
                 "b\",\"\xc3\xa9\"]}}");
    /* The exact wire bytes: plain, '/' not escaped, UTF-8 kept. */
    snprintf(frame, sizeof(frame), "Content-Length: %zu\r\n\r\n%s", strlen(want), want);
    p = rpc_out_peek(c.rpc, &len);
    assert_int_equal(len, strlen(frame));
    assert_memory_equal(p, frame, len);
    rpc_out_consume(c.rpc, len);
    assert_int_equal(c.requests, 1);
    assert_int_equal(c.protocol_errors, 0);
    rpc_free(c.rpc);
}

static void test_request_ids_echoed(void **state)
{
    struct ctx c;
    json_object *m;

    ctx_init(&c, 1, 1 << 20);
    send_msg(&c,
             "{\"jsonrpc\":\"2.0\",\"id\":\"req-\xc3\xa9-1\",\"method\":\"echo\",\"params\":[]}");
    m = one(&c);
    assert_id_str(m, "req-\xc3\xa9-1");
    assert_true(json_object_is_type(field(m, "result"), json_type_array));
    json_object_put(m);

    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":\"\",\"method\":\"echo\",\"params\":[]}");
    m = one(&c);
    assert_id_str(m, "");
    json_object_put(m);

    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"echo\",\"params\":[]}");
    m = one(&c);
    assert_id_int(m, 0);
    json_object_put(m);

    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":-5,\"method\":\"echo\",\"params\":[]}");
    m = one(&c);
    assert_id_int(m, -5);
    json_object_put(m);

    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":9007199254740991,\"method\":\"echo\"}");
    m = one(&c);
    assert_id_int(m, 9007199254740991LL);
    /* No params: the handler got NULL and answered null. */
    assert_null(field(m, "result"));
    json_object_put(m);
    assert_int_equal(c.requests, 5);
    rpc_free(c.rpc);
}

static void test_null_result_and_error_data(void **state)
{
    struct ctx c;
    json_object *m, *e;

    ctx_init(&c, 1, 1 << 20);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"null\"}");
    m = one(&c);
    assert_v2(m);
    assert_id_int(m, 1);
    assert_true(has(m, "result"));
    assert_null(field(m, "result"));
    assert_false(has(m, "error"));
    json_object_put(m);

    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"fail\",\"params\":{}}");
    m = one(&c);
    assert_id_int(m, 2);
    assert_error_code(m, RPC_INVALID_PARAMS);
    assert_string_equal(error_message(m), "bad setting");
    e = field(m, "error");
    assert_string_equal(json_object_get_string(field(field(e, "data"), "key")), "server.port");
    json_object_put(m);
    rpc_free(c.rpc);
}

static void test_unknown_method(void **state)
{
    struct ctx c;
    json_object *m;

    ctx_init(&c, 1, 1 << 20);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"no/such\",\"params\":{}}");
    m = one(&c);
    assert_id_int(m, 3);
    assert_error_code(m, RPC_METHOD_NOT_FOUND);
    assert_non_null(strstr(error_message(m), "no/such"));
    json_object_put(m);

    /* $/ requests are method-not-found too (LSP). */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"$/whatever\"}");
    m = one(&c);
    assert_error_code(m, RPC_METHOD_NOT_FOUND);
    json_object_put(m);

    /* A NUL inside the name must not make it match "echo". */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"echo\\u0000x\"}");
    m = one(&c);
    assert_id_int(m, 5);
    assert_error_code(m, RPC_METHOD_NOT_FOUND);
    json_object_put(m);
    assert_int_equal(c.requests, 0);
    rpc_free(c.rpc);
}

static void test_parse_errors(void **state)
{
    static const char *const bodies[] = {
        "{",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}x",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}{}",
        "",
        "   ",
        "nul",
        "{\"a\":1,}",
        "[1,2",
        "{\"a\":\"\xff\"}",
        "{\"a\":\"\xc3\"}",
        "\xef\xbb\xbf{}",
        "{\"a\":01}",
        "/* c */{}",
    };
    struct ctx c;
    json_object *m;
    size_t i;
    char deep[200];

    ctx_init(&c, 1, 1 << 20);
    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        send_msg(&c, bodies[i]);
        m = one(&c);
        assert_id_null(m);
        assert_error_code(m, RPC_PARSE_ERROR);
        json_object_put(m);
    }
    assert_int_equal(c.protocol_errors, (int)i);

    /* json-c stops at a NUL; the bytes after it are still trailing data. */
    send_raw(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\0junk", 45);
    m = one(&c);
    assert_id_null(m);
    assert_error_code(m, RPC_PARSE_ERROR);
    json_object_put(m);

    /* Depth 64 parses, 65 does not. */
    memset(deep, '[', 64);
    memset(deep + 64, ']', 64);
    deep[128] = '\0';
    send_msg(&c, deep);
    m = one(&c);
    assert_error_code(m, RPC_INVALID_REQUEST);
    json_object_put(m);
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    deep[130] = '\0';
    send_msg(&c, deep);
    m = one(&c);
    assert_error_code(m, RPC_PARSE_ERROR);
    json_object_put(m);
    assert_int_equal(c.requests, 0);
    rpc_free(c.rpc);
}

struct invalid_case {
    const char *body;
    const char *id; /* expected id as JSON text: "null", "3", "\"s\"" */
};

static void test_invalid_envelopes(void **state)
{
    static const struct invalid_case cases[] = {
        {"1", "null"},
        {"\"str\"", "null"},
        {"null", "null"},
        {"true", "null"},
        {"[]", "null"},
        {"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}]", "null"},
        {"{}", "null"},
        {"{\"id\":3,\"method\":\"echo\"}", "3"},
        {"{\"jsonrpc\":\"1.0\",\"id\":3,\"method\":\"echo\"}", "3"},
        {"{\"jsonrpc\":2.0,\"id\":3,\"method\":\"echo\"}", "3"},
        {"{\"jsonrpc\":\"2.0 \",\"id\":\"s\",\"method\":\"echo\"}", "\"s\""},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":5}", "3"},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":null}", "3"},
        {"{\"jsonrpc\":\"2.0\",\"id\":3}", "3"},
        {"{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"params\":{}}", "\"s\""},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\",\"params\":\"x\"}", "3"},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\",\"params\":5}", "3"},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\",\"params\":null}", "3"},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\",\"params\":true}", "3"},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"echo\"}", "null"},
        {"{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"echo\"}", "null"},
        {"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"echo\"}", "null"},
        {"{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"echo\"}", "null"},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"note\",\"params\":3}", "null"},
        {"{\"jsonrpc\":\"1.0\",\"method\":\"note\",\"params\":{}}", "null"},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"$/cancelRequest\",\"params\":{\"id\":1}}",
         "3"},
        {"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"note\",\"params\":{}}", "4"},
        {"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"exit\"}", "4"},
    };
    struct ctx c;
    size_t i;

    ctx_init(&c, 1, 1 << 20);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *m;
        const char *got;

        send_msg(&c, cases[i].body);
        m = one(&c);
        assert_error_code(m, RPC_INVALID_REQUEST);
        got = json_object_to_json_string_ext(field(m, "id"), JSON_C_TO_STRING_PLAIN);
        if (cases[i].body[0] == '[')
            assert_non_null(strstr(error_message(m), "batch"));
        if (strcmp(got, cases[i].id) != 0)
            fail_msg("case %zu (%s): id %s, want %s", i, cases[i].body, got, cases[i].id);
        json_object_put(m);
    }
    assert_int_equal(c.requests, 0);
    assert_int_equal(c.notes, 0);
    assert_int_equal(c.exits, 0);
    assert_int_equal(c.protocol_errors, (int)i);
    rpc_free(c.rpc);
}

static void test_big_ids_rejected(void **state)
{
    static const char *const ids[] = {
        "1.5",
        "1.0",
        "1e300",
        "-1e300",
        "9223372036854775808",
        "-9223372036854775808",
        "9223372036854775807",
        "18446744073709551615",
        "99999999999999999999999",
        "9007199254740992",
        "-9007199254740992",
        "NaN",
    };
    struct ctx c;
    size_t i;

    ctx_init(&c, 1, 1 << 20);
    for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char body[128];
        json_object *m;

        snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"echo\"}", ids[i]);
        send_msg(&c, body);
        m = one(&c);
        assert_id_null(m);
        assert_error_code(m, RPC_INVALID_REQUEST);
        json_object_put(m);
    }
    assert_int_equal(c.requests, 0);
    rpc_free(c.rpc);
}

/* ---- lifecycle ---- */

static void test_before_init(void **state)
{
    struct ctx c;
    json_object *m;

    ctx_init(&c, 0, 1 << 20);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{}}");
    m = one(&c);
    assert_id_int(m, 1);
    assert_error_code(m, RPC_SERVER_NOT_INITIALIZED);
    assert_string_equal(error_message(m), "server not initialized");
    json_object_put(m);

    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"no/such\"}");
    m = one(&c);
    assert_error_code(m, RPC_SERVER_NOT_INITIALIZED);
    json_object_put(m);

    /* Notifications before init are dropped, except the flagged ones. */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"note\",\"params\":{}}");
    assert_silent(&c);
    assert_int_equal(c.notes, 0);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"exit\"}");
    assert_silent(&c);
    assert_int_equal(c.exits, 1);

    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"initialize\",\"params\":{}}");
    m = one(&c);
    assert_id_int(m, 3);
    assert_true(json_object_get_boolean(field(field(m, "result"), "ok")));
    json_object_put(m);
    assert_int_equal(c.requests, 1);

    rpc_set_initialized(c.rpc, 1);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"echo\",\"params\":{\"a\":1}}");
    m = one(&c);
    assert_id_int(m, 4);
    assert_int_equal(json_object_get_int(field(field(m, "result"), "a")), 1);
    json_object_put(m);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"note\",\"params\":{}}");
    assert_int_equal(c.notes, 1);
    assert_silent(&c);
    rpc_free(c.rpc);
}

static void test_shutdown(void **state)
{
    struct ctx c;
    json_object *m;

    ctx_init(&c, 1, 1 << 20);
    assert_int_equal(rpc_is_shutdown(c.rpc), 0);
    rpc_set_shutdown(c.rpc, 1);
    assert_int_equal(rpc_is_shutdown(c.rpc), 1);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{}}");
    m = one(&c);
    assert_id_int(m, 1);
    assert_error_code(m, RPC_INVALID_REQUEST);
    assert_string_equal(error_message(m), "shutdown in progress");
    json_object_put(m);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"initialize\",\"params\":{}}");
    m = one(&c);
    assert_error_code(m, RPC_INVALID_REQUEST);
    json_object_put(m);
    assert_int_equal(c.requests, 0);

    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"note\",\"params\":[1]}");
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"exit\"}");
    assert_silent(&c);
    assert_int_equal(c.notes, 1);
    assert_string_equal(c.note_params, "[1]");
    assert_int_equal(c.exits, 1);
    rpc_free(c.rpc);
}

static void test_notifications(void **state)
{
    struct ctx c;

    ctx_init(&c, 1, 1 << 20);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"note\",\"params\":{\"uri\":\"file:///a\"}}");
    assert_int_equal(c.notes, 1);
    assert_string_equal(c.note_params, "{\"uri\":\"file:\\/\\/\\/a\"}");
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"note\"}");
    assert_int_equal(c.notes, 2);
    assert_string_equal(c.note_params, "(none)");

    /* Unknown notifications, $/ or not: no output, not even an error. */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"no/such\",\"params\":{}}");
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"$/setTrace\",\"params\":{\"value\":\"off\"}}");
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"$/progress\",\"params\":{}}");
    assert_silent(&c);
    assert_int_equal(c.protocol_errors, 0);

    /* A request method sent as a notification is not run. */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{}}");
    assert_silent(&c);
    assert_int_equal(c.requests, 0);
    rpc_free(c.rpc);
}

static void test_cancel(void **state)
{
    struct ctx c;
    struct rpc_req *req;
    json_object *m;

    ctx_init(&c, 1, 1 << 20);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"async\",\"params\":{}}");
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":\"5\",\"method\":\"async\",\"params\":{}}");
    assert_silent(&c);
    assert_int_equal(c.nheld, 2);

    /* Unknown id, wrong type of id, bad params: nothing happens. */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":6}}");
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":5.0}}");
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{}}");
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\"}");
    assert_int_equal(c.cancelled, 0);
    assert_silent(&c);

    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":5}}");
    assert_int_equal(c.cancelled, 1);
    assert_ptr_equal(c.cancelled_req, c.held[0]);
    assert_string_equal(rpc_req_method(c.cancelled_req), "async");
    /* Cancelling again while it is still pending does not repeat. */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":5}}");
    assert_int_equal(c.cancelled, 1);
    assert_silent(&c);

    req = c.held[0];
    forget_held(&c, req);
    rpc_respond_error(req, RPC_REQUEST_CANCELLED, "cancelled", NULL);
    m = one(&c);
    assert_id_int(m, 5);
    assert_error_code(m, RPC_REQUEST_CANCELLED);
    json_object_put(m);
    /* Answered: a late cancel finds nothing. */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":5}}");
    assert_int_equal(c.cancelled, 1);

    /* The string id "5" is a different request; answered from the callback. */
    c.answer_on_cancel = 1;
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":\"5\"}}");
    assert_int_equal(c.cancelled, 2);
    assert_int_equal(c.nheld, 0);
    m = one(&c);
    assert_id_str(m, "5");
    assert_error_code(m, RPC_REQUEST_CANCELLED);
    json_object_put(m);
    rpc_free(c.rpc);
}

/* Pending incoming requests are freed, unanswered, with the rpc. */
static void test_free_with_pending_incoming(void **state)
{
    struct ctx c;

    ctx_init(&c, 1, 1 << 20);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"async\",\"params\":{}}");
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":\"two\",\"method\":\"async\",\"params\":{}}");
    assert_int_equal(c.nheld, 2);
    assert_silent(&c);
    rpc_free(c.rpc);
}

/* ---- outgoing requests ---- */

static void test_outgoing_result(void **state)
{
    struct ctx c;
    struct reply r1 = {0}, r2 = {0};
    json_object *m, *params = json_object_new_object();
    int64_t id1, id2;

    ctx_init(&c, 1, 1 << 20);
    json_object_object_add(params, "title", json_object_new_string("Run tests?"));
    id1 = rpc_request(c.rpc, "editor/confirm", params, 1000, 5000, on_reply, &r1);
    id2 = rpc_request(c.rpc, "editor/open", NULL, 1000, 5000, on_reply, &r2);
    assert_int_equal(id1, 1);
    assert_int_equal(id2, 2);
    assert_int_equal(rpc_next_deadline(c.rpc), 6000);

    m = drain(&c);
    assert_int_equal(json_object_array_length(m), 2);
    assert_id_int(json_object_array_get_idx(m, 0), 1);
    assert_string_equal(json_object_get_string(field(json_object_array_get_idx(m, 0), "method")),
                        "editor/confirm");
    assert_string_equal(
        json_object_get_string(field(field(json_object_array_get_idx(m, 0), "params"), "title")),
        "Run tests?");
    assert_v2(json_object_array_get_idx(m, 1));
    assert_false(has(json_object_array_get_idx(m, 1), "params"));
    json_object_put(m);

    /* Answered out of order. */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":null}");
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r2.ok, 1);
    assert_string_equal(r2.result, "null");
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"approved\":true}}");
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r1.ok, 1);
    assert_string_equal(r1.result, "{\"approved\":true}");
    assert_int_equal(rpc_next_deadline(c.rpc), -1);
    assert_silent(&c);

    /* A second answer to the same id is unknown now. */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"approved\":false}}");
    assert_int_equal(r1.calls, 1);
    assert_int_equal(c.protocol_errors, 1);
    assert_silent(&c);
    rpc_free(c.rpc);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r2.calls, 1);
}

static void test_outgoing_error(void **state)
{
    struct ctx c;
    struct reply r = {0};

    ctx_init(&c, 1, 1 << 20);
    assert_int_equal(rpc_request(c.rpc, "editor/open", NULL, 0, 1000, on_reply, &r), 1);
    json_object_put(drain(&c));
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32601,\"message\":\"nope\","
                 "\"data\":{\"why\":7}}}");
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.ok, 0);
    assert_int_equal(r.code, RPC_METHOD_NOT_FOUND);
    assert_string_equal(r.message, "nope");
    assert_string_equal(r.data, "{\"why\":7}");
    /* Nothing is ever sent back for a response. */
    assert_silent(&c);
    rpc_free(c.rpc);
}

static void test_outgoing_malformed_response(void **state)
{
    static const char *const bodies[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{\"code\":1,\"message\":\"x\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"message\":\"no code\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":1.5,\"message\":\"x\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":99999999999,\"message\":\"x\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":5,\"error\":\"boom\"}",
        "{\"id\":6,\"result\":{}}",
    };
    struct ctx c;
    struct reply r[6];
    size_t i;

    memset(r, 0, sizeof(r));
    ctx_init(&c, 1, 1 << 20);
    for (i = 0; i < 6; i++)
        assert_int_equal(rpc_request(c.rpc, "x", NULL, 0, 1000, on_reply, &r[i]), (int64_t)i + 1);
    json_object_put(drain(&c));
    for (i = 0; i < 6; i++) {
        send_msg(&c, bodies[i]);
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].ok, 0);
        assert_int_equal(r[i].code, RPC_INTERNAL_ERROR);
    }
    /* Responses whose id cannot be ours: logged, nothing sent. */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"x\"}}");
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":\"1\",\"result\":{}}");
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"result\":{}}");
    assert_int_equal(c.protocol_errors, 6 + 3);
    assert_silent(&c);
    rpc_free(c.rpc);
}

static void test_outgoing_timeout(void **state)
{
    struct ctx c;
    struct reply r1 = {0}, r2 = {0};

    ctx_init(&c, 1, 1 << 20);
    assert_int_equal(rpc_next_deadline(c.rpc), -1);
    assert_int_equal(rpc_request(c.rpc, "a", NULL, 1000, 300, on_reply, &r1), 1);
    assert_int_equal(rpc_request(c.rpc, "b", NULL, 1000, 100, on_reply, &r2), 2);
    assert_int_equal(rpc_next_deadline(c.rpc), 1100);
    rpc_expire(c.rpc, 1099);
    assert_int_equal(r1.calls + r2.calls, 0);
    rpc_expire(c.rpc, 1100);
    assert_int_equal(r1.calls, 0);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r2.code, RPC_REQUEST_TIMEOUT);
    assert_int_equal(rpc_next_deadline(c.rpc), 1300);
    rpc_expire(c.rpc, 5000);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r1.code, RPC_REQUEST_TIMEOUT);
    assert_int_equal(rpc_next_deadline(c.rpc), -1);

    /* A late answer finds nothing. */
    json_object_put(drain(&c));
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}");
    assert_int_equal(r2.calls, 1);
    assert_int_equal(c.protocol_errors, 1);

    /* Bad arguments are refused (and params still freed). */
    assert_int_equal(rpc_request(c.rpc, "a", json_object_new_object(), 0, -1, on_reply, &r1), -1);
    assert_int_equal(rpc_request(c.rpc, "a", json_object_new_int(3), 0, 10, on_reply, &r1), -1);
    assert_int_equal(rpc_request(c.rpc, NULL, NULL, 0, 10, on_reply, &r1), -1);
    /* A far deadline saturates instead of wrapping. */
    assert_int_equal(rpc_request(c.rpc, "a", NULL, INT64_MAX - 5, 100, on_reply, &r1), 3);
    assert_int_equal(rpc_next_deadline(c.rpc), INT64_MAX);
    rpc_free(c.rpc);
    assert_int_equal(r1.calls, 2);
    assert_int_equal(r1.code, RPC_REQUEST_CANCELLED);
}

static void test_forget(void **state)
{
    struct ctx c;
    struct reply r = {0};
    json_object *all, *m;

    ctx_init(&c, 1, 1 << 20);
    assert_int_equal(rpc_request(c.rpc, "editor/confirm", NULL, 0, 1000, on_reply, &r), 1);
    json_object_put(drain(&c));
    assert_int_equal(rpc_forget(c.rpc, 1), 0);
    assert_int_equal(rpc_forget(c.rpc, 1), -1);
    assert_int_equal(rpc_forget(c.rpc, 42), -1);
    all = drain(&c);
    assert_int_equal(json_object_array_length(all), 1);
    m = json_object_array_get_idx(all, 0);
    assert_v2(m);
    assert_false(has(m, "id"));
    assert_string_equal(json_object_get_string(field(m, "method")), "$/cancelRequest");
    assert_int_equal(json_object_get_int(field(field(m, "params"), "id")), 1);
    json_object_put(all);
    assert_int_equal(rpc_next_deadline(c.rpc), -1);

    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}");
    rpc_expire(c.rpc, 10000);
    rpc_free(c.rpc);
    assert_int_equal(r.calls, 0);
}

static void test_fail_outgoing(void **state)
{
    struct ctx c;
    struct reply r1 = {0}, r2 = {0};

    ctx_init(&c, 1, 1 << 20);
    rpc_request(c.rpc, "a", NULL, 0, 1000, on_reply, &r1);
    rpc_request(c.rpc, "b", NULL, 0, 1000, on_reply, &r2);
    rpc_fail_outgoing(c.rpc, RPC_SERVER_ERROR, "editor gone");
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r1.code, RPC_SERVER_ERROR);
    assert_string_equal(r2.message, "editor gone");
    assert_int_equal(rpc_next_deadline(c.rpc), -1);
    /* Ids keep increasing afterwards. */
    assert_int_equal(rpc_request(c.rpc, "c", NULL, 0, 1000, on_reply, &r1), 3);
    rpc_free(c.rpc);
    assert_int_equal(r1.calls, 2);
    assert_int_equal(r1.code, RPC_REQUEST_CANCELLED);
}

/* Callbacks that call back in while the outgoing list is being walked. */
struct reentry {
    struct ctx *c;
    int calls;
    int64_t forget_id;
    int64_t new_id;
    int64_t now;
    struct reply *new_reply;
    int respond_held;
};

static void on_reentry(void *cbud, json_object *result, const struct rpc_error *err)
{
    struct reentry *e = cbud;

    e->calls++;
    if (e->forget_id > 0) {
        assert_int_equal(rpc_forget(e->c->rpc, e->forget_id), 0);
        e->forget_id = 0;
    }
    if (e->new_reply) {
        /* Due at once: still not expired by the pass that made it. */
        e->new_id = rpc_request(e->c->rpc, "again", NULL, e->now, 0, on_reply, e->new_reply);
        e->new_reply = NULL;
    }
    if (e->respond_held && e->c->nheld > 0) {
        struct rpc_req *req = e->c->held[0];

        forget_held(e->c, req);
        rpc_respond(req, json_object_new_string("late"));
    }
}

static void test_reentrant_callbacks(void **state)
{
    struct ctx c;
    struct reply victim = {0}, fresh = {0}, last = {0};
    struct reentry e = {0};
    json_object *all;

    ctx_init(&c, 1, 1 << 20);
    e.c = &c;
    e.now = 100;
    e.forget_id = 2;
    e.new_reply = &fresh;
    e.respond_held = 1;
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"async\",\"params\":{}}");
    assert_int_equal(rpc_request(c.rpc, "a", NULL, 0, 10, on_reentry, &e), 1);
    assert_int_equal(rpc_request(c.rpc, "b", NULL, 0, 10, on_reply, &victim), 2);
    assert_int_equal(rpc_request(c.rpc, "c", NULL, 0, 10, on_reply, &last), 3);
    json_object_put(drain(&c));

    rpc_expire(c.rpc, 100);
    assert_int_equal(e.calls, 1);
    assert_int_equal(victim.calls, 0); /* forgotten by the first callback */
    assert_int_equal(last.calls, 1);   /* the walk went on past the removed entry */
    assert_int_equal(e.new_id, 4);
    assert_int_equal(fresh.calls, 0);
    assert_int_equal(rpc_next_deadline(c.rpc), 100);
    rpc_expire(c.rpc, 100);
    assert_int_equal(fresh.calls, 1);
    assert_int_equal(fresh.code, RPC_REQUEST_TIMEOUT);

    /* Output: the request "again", the answer to 9, the $/cancelRequest. */
    all = drain(&c);
    assert_int_equal(json_object_array_length(all), 3);
    assert_string_equal(json_object_get_string(field(json_object_array_get_idx(all, 0), "method")),
                        "$/cancelRequest");
    assert_string_equal(json_object_get_string(field(json_object_array_get_idx(all, 1), "method")),
                        "again");
    assert_id_int(json_object_array_get_idx(all, 2), 9);
    assert_string_equal(json_object_get_string(field(json_object_array_get_idx(all, 2), "result")),
                        "late");
    json_object_put(all);

    /* rpc_free's callbacks may not start new requests. */
    e.new_reply = &fresh;
    e.forget_id = 0;
    assert_int_equal(rpc_request(c.rpc, "d", NULL, 0, 10, on_reentry, &e), 5);
    rpc_free(c.rpc);
    assert_int_equal(e.calls, 2);
    assert_int_equal(e.new_id, -1);
    assert_int_equal(fresh.calls, 1);
}

/* ---- outbound queue ---- */

static void test_want_write_transitions(void **state)
{
    struct ctx c;
    const char *p;
    size_t len, first_len;
    char *copy;

    ctx_init(&c, 1, 1 << 20);
    assert_int_equal(c.want_write, 0);
    /* Two answers from one read: one wake-up. */
    {
        const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"null\"}";
        char *in = NULL;
        size_t in_len = 0, in_cap = 0;

        assert_int_equal(rpc_frame_encode(&in, &in_len, &in_cap, req, strlen(req)), 0);
        assert_int_equal(rpc_frame_encode(&in, &in_len, &in_cap, req, strlen(req)), 0);
        rpc_feed(c.rpc, in, in_len);
        free(in);
    }
    assert_int_equal(c.requests, 2);
    assert_int_equal(c.want_write, 1);
    rpc_notify(c.rpc, "window/logMessage", NULL);
    assert_int_equal(c.want_write, 1);

    /* Partly written: still non-empty, so no new wake-up, and what is left
     * is exactly the unwritten rest followed by the new message. */
    p = rpc_out_peek(c.rpc, &first_len);
    copy = malloc(first_len);
    assert_non_null(copy);
    memcpy(copy, p, first_len);
    rpc_out_consume(c.rpc, 10);
    rpc_notify(c.rpc, "window/logMessage", NULL);
    assert_int_equal(c.want_write, 1);
    p = rpc_out_peek(c.rpc, &len);
    assert_true(len > first_len - 10);
    assert_memory_equal(p, copy + 10, first_len - 10);
    free(copy);
    /* The 10 bytes already written are gone, so finish framing by hand. */
    rpc_out_consume(c.rpc, first_len - 10);
    json_object_put(drain(&c));
    assert_int_equal(c.want_write, 1);

    rpc_notify(c.rpc, "window/logMessage", NULL);
    assert_int_equal(c.want_write, 2);
    assert_int_equal(rpc_request(c.rpc, "x", NULL, 0, 10, NULL, NULL), 1);
    assert_int_equal(c.want_write, 2);
    rpc_out_consume(c.rpc, rpc_out_pending(c.rpc));
    assert_int_equal(rpc_out_pending(c.rpc), 0);
    assert_int_equal(rpc_forget(c.rpc, 1), 0);
    assert_int_equal(c.want_write, 3);
    rpc_free(c.rpc);
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
    *buf = realloc(*buf, *len + n + 1);
    assert_non_null(*buf);
    memcpy(*buf + *len, data, n);
    *len += n;
}

/* Consuming in odd pieces (so the queue compacts under the hood) yields
 * exactly the bytes queued, in order. */
static void test_out_queue_bytes(void **state)
{
    struct ctx c;
    char *queued = NULL, *written = NULL;
    size_t queued_len = 0, written_len = 0, i, step = 1;
    struct out_sink sink;
    struct rpc_framer f;
    const char *p;
    size_t n;

    ctx_init(&c, 1, 1 << 20);
    for (i = 0; i < 200; i++) {
        json_object *params = json_object_new_object();
        size_t before = rpc_out_pending(c.rpc);

        json_object_object_add(params, "i", json_object_new_int((int)i));
        rpc_notify(c.rpc, "tick", params);
        p = rpc_out_peek(c.rpc, &n);
        assert_true(n > before);
        append(&queued, &queued_len, p + before, n - before);
        if (i % 3 == 0) {
            size_t take = step % (n + 1);

            append(&written, &written_len, p, take);
            rpc_out_consume(c.rpc, take);
            step = step * 7 + 3;
        }
    }
    p = rpc_out_peek(c.rpc, &n);
    append(&written, &written_len, p, n);
    rpc_out_consume(c.rpc, n + 100); /* over-consuming is clamped */
    assert_int_equal(rpc_out_pending(c.rpc), 0);
    assert_int_equal(written_len, queued_len);
    assert_memory_equal(written, queued, queued_len);

    sink.msgs = json_object_new_array();
    sink.frame_errors = 0;
    rpc_framer_init(&f, 1 << 20);
    assert_int_equal(rpc_framer_feed(&f, written, written_len, out_frame, out_error, &sink), 0);
    rpc_framer_free(&f);
    assert_int_equal(json_object_array_length(sink.msgs), 200);
    for (i = 0; i < 200; i++)
        assert_int_equal(json_object_get_int(
                             field(field(json_object_array_get_idx(sink.msgs, i), "params"), "i")),
                         (int)i);
    json_object_put(sink.msgs);
    free(queued);
    free(written);
    rpc_free(c.rpc);
}

static void test_soft_cap(void **state)
{
    struct ctx c;
    size_t big = 1024 * 1024, queued = 0;
    char *text = malloc(big);
    json_object *all;
    uint64_t before;

    assert_non_null(text);
    memset(text, 'a', big);
    ctx_init(&c, 1, 1 << 20);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"async\",\"params\":{}}");
    while (rpc_out_pending(c.rpc) < RPC_OUT_SOFT_CAP) {
        json_object *p = json_object_new_object();

        json_object_object_add(p, "message", json_object_new_string_len(text, (int)big));
        rpc_notify(c.rpc, "window/logMessage", p);
        queued++;
    }
    assert_int_equal(rpc_out_dropped(c.rpc), 0);
    before = rpc_out_pending(c.rpc);
    rpc_notify(c.rpc, "window/logMessage", json_object_new_object());
    rpc_notify(c.rpc, "window/logMessage", NULL);
    assert_int_equal(rpc_out_dropped(c.rpc), 2);
    assert_int_equal(rpc_out_pending(c.rpc), before);

    /* Answers and requests still go out. */
    rpc_respond(c.held[0], json_object_new_boolean(1));
    c.nheld = 0;
    assert_true(rpc_out_pending(c.rpc) > before);
    before = rpc_out_pending(c.rpc);
    assert_int_equal(rpc_request(c.rpc, "editor/confirm", NULL, 0, 10, NULL, NULL), 1);
    assert_true(rpc_out_pending(c.rpc) > before);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"no/such\"}");

    all = drain(&c);
    assert_int_equal(json_object_array_length(all), queued + 3);
    assert_id_int(json_object_array_get_idx(all, queued), 1);
    assert_true(json_object_get_boolean(field(json_object_array_get_idx(all, queued), "result")));
    assert_error_code(json_object_array_get_idx(all, queued + 2), RPC_METHOD_NOT_FOUND);
    json_object_put(all);

    /* Drained: notifications flow again; the count stays. */
    rpc_notify(c.rpc, "window/logMessage", NULL);
    assert_int_equal(rpc_out_dropped(c.rpc), 2);
    all = drain(&c);
    assert_int_equal(json_object_array_length(all), 1);
    json_object_put(all);
    rpc_free(c.rpc);
    free(text);
}

/* ---- odd input ---- */

static void test_framer_errors_answered(void **state)
{
    struct ctx c;
    json_object *all;
    char hdr[128];

    ctx_init(&c, 1, 64);
    rpc_feed(c.rpc, "Content-Length: x\r\n\r\n{}", 24);
    snprintf(hdr, sizeof(hdr), "Content-Length: 65\r\n\r\n%65s", "");
    rpc_feed(c.rpc, hdr, strlen(hdr));
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"null\"}");
    all = drain(&c);
    assert_int_equal(json_object_array_length(all), 3);
    assert_error_code(json_object_array_get_idx(all, 0), RPC_INVALID_REQUEST);
    assert_id_null(json_object_array_get_idx(all, 0));
    assert_error_code(json_object_array_get_idx(all, 1), RPC_INVALID_REQUEST);
    assert_id_null(json_object_array_get_idx(all, 1));
    assert_id_int(json_object_array_get_idx(all, 2), 1);
    assert_true(has(json_object_array_get_idx(all, 2), "result"));
    json_object_put(all);
    assert_int_equal(c.protocol_errors, 2);
    rpc_free(c.rpc);
}

static void test_odd_messages(void **state)
{
    struct ctx c;
    json_object *m;

    ctx_init(&c, 1, 1 << 20);
    /* Duplicate keys: the last one wins, as json-c parses them. */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"note\",\"method\":\"echo\"}");
    m = one(&c);
    assert_id_int(m, 2);
    assert_true(has(m, "result"));
    json_object_put(m);
    /* "method" makes it a request even with a "result" beside it. */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"null\",\"result\":5}");
    m = one(&c);
    assert_id_int(m, 3);
    json_object_put(m);
    /* Strings with escapes and control characters survive the round trip. */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":\"\\u0000\\n\\\"\",\"method\":\"echo\",\"params\":"
                 "[\"\\ud83d\\ude00\"]}");
    m = one(&c);
    assert_int_equal(json_object_get_string_len(field(m, "id")), 3);
    assert_memory_equal(json_object_get_string(field(m, "id")), "\0\n\"", 3);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(field(m, "result"), 0)),
                        "\xf0\x9f\x98\x80");
    json_object_put(m);
    rpc_free(c.rpc);
}

static void test_feed_from_handler(void **state)
{
    struct ctx c;
    json_object *m;

    ctx_init(&c, 1, 1 << 20);
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"reenter\"}");
    m = one(&c);
    assert_id_int(m, 1);
    assert_true(has(m, "result"));
    json_object_put(m);
    assert_int_equal(c.requests, 1);
    assert_int_equal(c.protocol_errors, 1);
    /* The outer stream is intact. */
    send_msg(&c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"null\"}");
    m = one(&c);
    assert_id_int(m, 2);
    json_object_put(m);
    rpc_free(c.rpc);
}

static uint64_t next_rand(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* Mutated messages never crash, and every answer is well formed. */
static void test_mutations(void **state)
{
    static const char *const seeds[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{\"a\":[1,2,{\"b\":null}]}}",
        "{\"jsonrpc\":\"2.0\",\"method\":\"$/cancelRequest\",\"params\":{\"id\":1}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"approved\":true}}",
        "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"async\",\"params\":[]}",
    };
    static const char alphabet[] = "{}[]\":,0123456789.eE-+ \\u\xc3\xa9\xff\nnulltrue";
    uint64_t seed = 0xc0ffee;
    struct ctx c;
    struct reply r = {0};
    int iter;

    ctx_init(&c, 1, 4096);
    c.answer_on_cancel = 1;
    for (iter = 0; iter < 5000; iter++) {
        const char *s = seeds[next_rand(&seed) % 4];
        char buf[256];
        size_t len = strlen(s), k, edits = next_rand(&seed) % 4 + 1;

        memcpy(buf, s, len);
        for (k = 0; k < edits; k++) {
            size_t at = (size_t)(next_rand(&seed) % len);

            switch (next_rand(&seed) % 3) {
            case 0:
                buf[at] = alphabet[next_rand(&seed) % (sizeof(alphabet) - 1)];
                break;
            case 1:
                if (len > 1) {
                    memmove(buf + at, buf + at + 1, len - at - 1);
                    len--;
                }
                break;
            default:
                if (len < sizeof(buf) - 1) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = alphabet[next_rand(&seed) % (sizeof(alphabet) - 1)];
                    len++;
                }
                break;
            }
        }
        if (iter % 50 == 0)
            rpc_request(c.rpc, "x", NULL, iter, 100, on_reply, &r);
        send_raw(&c, buf, len);
        json_object_put(drain(&c));
        /* Answer whatever async requests slipped through. */
        while (c.nheld > 0)
            rpc_respond(c.held[--c.nheld], NULL);
        rpc_expire(c.rpc, iter);
    }
    json_object_put(drain(&c));
    rpc_free(c.rpc);
    assert_int_equal(r.calls, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_int_id),
        cmocka_unit_test(test_request_ids_echoed),
        cmocka_unit_test(test_null_result_and_error_data),
        cmocka_unit_test(test_unknown_method),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_invalid_envelopes),
        cmocka_unit_test(test_big_ids_rejected),
        cmocka_unit_test(test_before_init),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_notifications),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_free_with_pending_incoming),
        cmocka_unit_test(test_outgoing_result),
        cmocka_unit_test(test_outgoing_error),
        cmocka_unit_test(test_outgoing_malformed_response),
        cmocka_unit_test(test_outgoing_timeout),
        cmocka_unit_test(test_forget),
        cmocka_unit_test(test_fail_outgoing),
        cmocka_unit_test(test_reentrant_callbacks),
        cmocka_unit_test(test_want_write_transitions),
        cmocka_unit_test(test_out_queue_bytes),
        cmocka_unit_test(test_soft_cap),
        cmocka_unit_test(test_framer_errors_answered),
        cmocka_unit_test(test_odd_messages),
        cmocka_unit_test(test_feed_from_handler),
        cmocka_unit_test(test_mutations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
