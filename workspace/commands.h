/*
 * commands: the table of data-plane commands (`{"type":"command"}`): name,
 * scope, how each one runs (its kind) and its hooks. The helper looks a
 * name up, checks the scope and runs it the way its kind and hooks say; it
 * knows nothing of what a command does, and never compares command names.
 * Handlers know nothing of sockets.
 */
#ifndef COMPANION_COMMANDS_H
#define COMPANION_COMMANDS_H

#include <json-c/json.h>

#include "workspace/result.h"
#include "workspace/workspace.h"

struct worker_thread;

/* Same bits as the token scopes (auth.h); the helper asserts they agree. */
enum cmd_scope {
    CMD_SCOPE_READ = 1u << 0,
    CMD_SCOPE_RUN = 1u << 1,
    CMD_SCOPE_EDITOR = 1u << 2,
    CMD_SCOPE_APPROVE = 1u << 3,
    CMD_SCOPE_AGENT = 1u << 4, /* prompt and stop the agents (token scope "agent") */
    CMD_SCOPE_WRITE = 1u << 5, /* change files in the workspace (token scope "write") */
};

/* What a synchronous handler may use. Filled by the helper for each call. */
struct cmd_ctx {
    const struct workspace *ws;
    const char *version;
    const char *session_id;
    const char *user_id;
    unsigned scopes;
};

enum cmd_kind {
    CMD_KIND_SYNC,     /* fn, on the loop: cheap and never blocks */
    CMD_KIND_WORKER,   /* wfn, on a worker thread with copies of args and folders */
    CMD_KIND_TASK,     /* the helper's task runner (task_op) */
    CMD_KIND_EDITOR,   /* forwarded to the editor (workspace/editor_cmd.h) */
    CMD_KIND_APPROVAL, /* the helper's approvals (approval_op) */
    CMD_KIND_AGENT,    /* the helper's coding agents (agent_op) */
};

/* What a CMD_KIND_AGENT command asks of the agents. */
enum cmd_agent_op {
    CMD_AGENT_NONE = 0,
    CMD_AGENT_PROMPT,
    CMD_AGENT_CANCEL,
    CMD_AGENT_LIST,
    CMD_AGENT_CONVERSATIONS,
    CMD_AGENT_NEW,
    CMD_AGENT_FOLLOW,
    CMD_AGENT_UNFOLLOW,
};

/* What a CMD_KIND_APPROVAL command asks of the approvals. */
enum cmd_approval_op { CMD_APPROVAL_NONE = 0, CMD_APPROVAL_LIST, CMD_APPROVAL_DECIDE };

/* What a CMD_KIND_TASK command asks of the task runner. */
enum cmd_task_op { CMD_TASK_NONE = 0, CMD_TASK_LIST, CMD_TASK_RUN, CMD_TASK_CANCEL };

/* What a worker handler sees besides its arguments: copies owned by the job. */
struct cmd_job_env {
    const struct workspace_folder *folders;
    size_t n_folders;
    size_t reply_max; /* the largest reply the client can be sent, in bytes */
    size_t write_max; /* limits.maxWriteBytes */
};

typedef enum cmd_status (*cmd_fn)(const struct cmd_ctx *ctx, json_object *args,
                                  struct cmd_result *res);
typedef enum cmd_status (*cmd_worker_fn)(struct worker_thread *t, const char *name,
                                         const struct cmd_job_env *env, json_object *args,
                                         struct cmd_result *res);

struct cmd_def {
    const char *name;
    unsigned scope; /* every bit must be granted */
    enum cmd_kind kind;
    cmd_fn fn;
    cmd_worker_fn wfn;
    int coalesce;      /* worker: identical concurrent calls share one run */
    int watched;       /* worker: a watched folder's answer may come from the
                        * helper's cache (args.folder names the folder) */
    int changes_files; /* worker: a success changed the file named by args.path
                        * in args.folder; the result says how: `created` or
                        * `deleted` (the helper announces file.changed) */
    enum cmd_task_op task_op;
    enum cmd_approval_op approval_op;
    enum cmd_agent_op agent_op;
};

/* NULL for an unknown name. */
const struct cmd_def *cmd_lookup(const char *name);
/* ["workspace.info", ...] for initialize's capabilities. */
json_object *cmd_names_json(void);

#endif
