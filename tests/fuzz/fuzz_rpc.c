/*
 * The control plane's input: LSP framing and JSON-RPC dispatch, fed in
 * pieces split where the input says, with requests answered now and later,
 * notifications, cancels, and responses to a request of our own.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ipc/rpc.h"

static struct rpc_req *later;

static void h_echo(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    rpc_respond(req, params ? json_object_get(params) : NULL);
}

static void h_init(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    rpc_set_initialized(rpc, 1);
    rpc_respond(req, json_object_new_object());
}

static void h_later(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    if (later)
        rpc_respond_error(req, RPC_INVALID_REQUEST, "busy", NULL);
    else
        later = req;
}

static void h_shutdown(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    rpc_set_shutdown(rpc, 1);
    rpc_respond(req, NULL);
}

static void h_note(struct rpc *rpc, struct rpc_req *req, json_object *params, void *ud)
{
    rpc_notify(rpc, "window/logMessage", json_object_new_object());
}

static const struct rpc_method methods[] = {
    {"initialize", RPC_BEFORE_INIT, h_init},
    {"echo", 0, h_echo},
    {"later", 0, h_later},
    {"shutdown", 0, h_shutdown},
    {"note", RPC_NOTIFICATION, h_note},
    {NULL, 0, NULL},
};

static void want_write(struct rpc *rpc, void *ud)
{
}

static void cancelled(struct rpc *rpc, struct rpc_req *req, void *ud)
{
    if (req == later) {
        later = NULL;
        rpc_respond_error(req, RPC_REQUEST_CANCELLED, "cancelled", NULL);
    }
}

static void response(void *cbud, json_object *result, const struct rpc_error *err)
{
}

static const struct rpc_callbacks callbacks = {want_write, cancelled, NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    later = NULL;
    struct rpc *rpc = rpc_new(methods, &callbacks, NULL, 4096);
    if (!rpc)
        return 0;
    rpc_request(rpc, "editor/open", json_object_new_object(), 0, 1000, response, NULL);
    size_t split = size ? data[0] % (size + 1) : 0;
    rpc_feed(rpc, (const char *)data, split);
    rpc_feed(rpc, (const char *)data + split, size - split);
    if (later)
        rpc_respond(later, json_object_new_int(1));
    rpc_expire(rpc, 5000);
    size_t n;
    while (rpc_out_peek(rpc, &n) && n)
        rpc_out_consume(rpc, n);
    rpc_free(rpc);
    return 0;
}
