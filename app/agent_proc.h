/*
 * agent_proc: one Agent Client Protocol agent process and the JSON-RPC
 * connection to it (the helper is the client).
 *
 * The agent is started with workspace/spawn.c (argv, its own process
 * group, the workspace folder as cwd, stdin a pipe), told to the reaper so
 * it never outlives the helper, and spoken to with ipc/rpc.c over newline
 * framing. agent_proc_start sends `initialize` (protocol version 1, client
 * capabilities: none, neither fs nor terminal: the agent works with its own
 * tools, which its permission requests put before the user) and reports
 * ready or failed once; after that the owner sends session requests and
 * answers the agent's session/request_permission through the struct
 * rpc_req it is handed. Anything that ends the process or the protocol (exit, crash,
 * hang-up, a message over the size cap, no answer to initialize in time) reaches `gone` once, with
 * a message for the user.
 *
 * Ownership: the owner frees the agent with agent_proc_free (from anywhere
 * but its own callbacks: use a zero-delay timer there), which kills the
 * group at once; json passed to callbacks is borrowed.
 */
#ifndef COMPANION_AGENT_PROC_H
#define COMPANION_AGENT_PROC_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc/rpc.h"

struct loop;
struct agent_proc;

#define AGENT_PROTOCOL_VERSION 1

struct agent_proc_spec {
    const char *command;
    const char *const *args;
    size_t n_args;
    const char *cwd;        /* absolute: the workspace folder */
    const char *const *env; /* "NAME=value" added to the helper's */
    size_t n_env;
    size_t max_message_bytes; /* one JSON-RPC message from the agent */
    int64_t start_timeout_ms; /* spawn to the initialize answer */
};

struct agent_proc_events {
    /* initialize answered (ok 1: capabilities are known) or not (ok 0:
     * message says why; `gone` follows). */
    void (*ready)(void *ud, int ok, const char *message);
    /* session/update: params {sessionId, update}. */
    void (*update)(void *ud, json_object *params);
    /* A request from the agent the owner must answer with rpc_respond or
     * rpc_respond_error: session/request_permission. The req stays valid
     * until answered or until `gone` has returned. */
    void (*request)(void *ud, struct rpc_req *req, const char *method, json_object *params);
    /* The process or the protocol ended; message is for the user ("the
     * agent exited with code 3", "... killed by signal 9"). Called once;
     * outgoing requests fail right after it returns. */
    void (*gone)(void *ud, const char *message);
};

/* NULL with err set when the program cannot be started. */
struct agent_proc *agent_proc_start(struct loop *l, const int *reaper_fd,
                                    const struct agent_proc_spec *spec,
                                    const struct agent_proc_events *ev, void *ud, char *err,
                                    size_t errlen);
/* Kills the group (SIGKILL) and frees; pending request callbacks run with
 * RPC_REQUEST_CANCELLED first. Not from inside one of a's callbacks. */
void agent_proc_free(struct agent_proc *a);

/* A request to the agent (params owned); cb once, as rpc_request. timeout_ms
 * 0: none. Returns the id or -1. */
int64_t agent_proc_request(struct agent_proc *a, const char *method, json_object *params,
                           int64_t timeout_ms, rpc_response_cb cb, void *cbud);
/* A notification to the agent (params owned): session/cancel. */
void agent_proc_notify(struct agent_proc *a, const char *method, json_object *params);
/* From initialize's answer (borrowed; NULL before ready). */
json_object *agent_proc_capabilities(const struct agent_proc *a);
int agent_proc_can_load(const struct agent_proc *a); /* agentCapabilities.loadSession */
/* Lines from the agent that were not JSON-RPC messages (ignored, counted). */
uint64_t agent_proc_bad_lines(const struct agent_proc *a);
/* The last bytes the agent wrote to stderr, for an error message. */
const char *agent_proc_stderr_tail(const struct agent_proc *a);

#endif
