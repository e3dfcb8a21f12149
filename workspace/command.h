/*
 * command: the table of data-plane commands (`{"type":"command"}`), their
 * scopes, how each one runs, and their handlers. The helper looks a name up,
 * checks the scope and runs it the way its kind says; it knows nothing of
 * what a command does. Handlers know nothing of sockets.
 */
#ifndef COMPANION_COMMAND_H
#define COMPANION_COMMAND_H

#include <json-c/json.h>

#include "workspace/workspace.h"

struct worker_thread;

/* Same bits as the token scopes (auth.h); the helper asserts they agree. */
enum cmd_scope {
    CMD_SCOPE_READ = 1u << 0,
    CMD_SCOPE_RUN = 1u << 1,
    CMD_SCOPE_EDITOR = 1u << 2,
};

/* What a synchronous handler may use. Filled by the helper for each call. */
struct cmd_ctx {
    const struct workspace *ws;
    const char *version;
    const char *session_id;
    const char *user_id;
    unsigned scopes;
};

enum cmd_status { CMD_OK = 0, CMD_ERROR };

struct cmd_result {
    json_object *result; /* on CMD_OK; the caller takes it */
    const char *code;    /* on CMD_ERROR: a contract code such as "INVALID_ARGS" */
    char message[256];
};

enum cmd_kind {
    CMD_KIND_SYNC,   /* fn, on the loop: cheap and never blocks */
    CMD_KIND_WORKER, /* wfn, on a worker thread with copies of args and folders */
    CMD_KIND_TASK,   /* the helper's task runner (streamed) */
    CMD_KIND_EDITOR, /* forwarded to the editor as an editor/... request */
};

typedef enum cmd_status (*cmd_fn)(const struct cmd_ctx *ctx, json_object *args,
                                  struct cmd_result *res);
/* What a worker handler sees besides its arguments: copies owned by the job. */
struct cmd_job_env {
    const struct workspace_folder *folders;
    size_t n_folders;
    size_t reply_max; /* the largest reply the client can be sent, in bytes */
};

typedef enum cmd_status (*cmd_worker_fn)(struct worker_thread *t, const char *name,
                                         const struct cmd_job_env *env, json_object *args,
                                         struct cmd_result *res);

struct cmd_def {
    const char *name;
    unsigned scope; /* every bit must be granted */
    enum cmd_kind kind;
    cmd_fn fn;
    cmd_worker_fn wfn;
    int coalesce; /* worker: identical concurrent calls share one run */
};

/* NULL for an unknown name. */
const struct cmd_def *cmd_lookup(const char *name);
/* ["workspace.info", ...] for initialize's capabilities. */
json_object *cmd_names_json(void);
/* args[key], or NULL when args is NULL, the key is absent or its value is
 * JSON null (clients often send null for "unset"). Borrowed. */
json_object *cmd_arg(json_object *args, const char *key);
/* Sets code and a formatted message; returns CMD_ERROR. */
enum cmd_status cmd_fail(struct cmd_result *res, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
